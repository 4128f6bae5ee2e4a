import pytest
import torch

from warmstart.engine.checkpoint import (
    atomic_folder,
    load_training_state,
    recover_folder,
    require_weights,
    rng_state,
    set_rng_state,
)
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
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(WarmstartError, match="no model weights"):
        require_weights(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(WarmstartError, match="only pickled weights"):
        require_weights(tmp_path)
    assert require_weights(tmp_path, trust_pickled=True) == tmp_path  # the user's explicit choice
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "model.safetensors"))
    assert require_weights(tmp_path) == tmp_path


def test_a_kill_between_the_two_renames_is_recovered(tmp_path):
    """atomic_folder moves the old copy aside, then the new one in; a kill in between leaves only `.old`."""
    target = tmp_path / "ckpt"
    atomic_folder(target, lambda f: (f / "model.safetensors").write_text("v1"))
    target.rename(tmp_path / ".ckpt.old123")  # the state after the first rename
    (tmp_path / ".ckpt.tmp123").mkdir()  # a half-written new copy
    recover_folder(target)
    assert (target / "model.safetensors").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_sigkill_while_saving_leaves_the_last_good_checkpoint(tmp_path):
    """A real SIGKILL in the middle of writing: the previous checkpoint is intact and loadable."""
    import os
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "ckpt"
    atomic_folder(target, lambda f: (f / "model.safetensors").write_text("v1"))
    code = f"""
import time
from pathlib import Path
from warmstart.engine.checkpoint import atomic_folder
def slow(folder):
    (folder / "model.safetensors").write_text("half")
    Path("{tmp_path}/started").touch()
    time.sleep(60)
atomic_folder(Path("{target}"), slow)
"""
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while not (tmp_path / "started").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (target / "model.safetensors").read_text() == "v1"
    recover_folder(target)  # what resuming does first: the temporary is cleared
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "started"]


def test_rng_state_round_trips_through_a_weights_only_load(tmp_path):
    import random

    import numpy as np

    state = rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    torch.save({"rng": state}, tmp_path / "training_state.pt")
    set_rng_state(load_training_state(tmp_path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_a_resumed_log_keeps_each_step_once_and_drops_a_line_the_kill_cut(tmp_path):
    from warmstart.engine.checkpoint import keep_log_until

    log = tmp_path / "training_log.jsonl"
    log.write_text('{"step": 1, "loss": 2.0}\n\n{"step": 2, "loss": 1.5}\n{"step": 3, "loss": 1.2}\n{"step": 4, "lo',
                   encoding="utf-8")
    keep_log_until(log, 2)
    assert log.read_text(encoding="utf-8") == '{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n'
