import pytest
import torch

from warmstart.checkpoint import atomic_folder, load_training_state, require_weights, rng_state, set_rng_state
from warmstart.errors import WarmstartError


def test_atomic_folder_keeps_the_old_checkpoint_when_writing_fails(tmp_path):
    target = tmp_path / "ckpt"
    atomic_folder(target, lambda f: (f / "model.safetensors").write_text("v1"))

    def broken(folder):
        (folder / "model.safetensors").write_text("half")
        raise KeyboardInterrupt  # killed while saving

    with pytest.raises(KeyboardInterrupt):
        atomic_folder(target, broken)
    assert (target / "model.safetensors").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary folder left behind
    atomic_folder(target, lambda f: (f / "model.safetensors").write_text("v2"))
    assert (target / "model.safetensors").read_text() == "v2"


def test_require_weights_errors(tmp_path):
    with pytest.raises(WarmstartError, match="checkpoint folder not found"):
        require_weights(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(WarmstartError, match="no model weights"):
        require_weights(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(WarmstartError, match="only pickled weights"):
        require_weights(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert require_weights(tmp_path) == tmp_path


def test_rng_state_round_trips_through_a_weights_only_load(tmp_path):
    import random

    import numpy as np

    state = rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    torch.save({"rng": state}, tmp_path / "training_state.pt")
    set_rng_state(load_training_state(tmp_path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
