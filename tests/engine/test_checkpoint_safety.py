"""No code from a checkpoint (issue 18.2): no `auto_map`, no model type transformers does not ship, no pickles
unless trusted (decided from what transformers would load, not from any `*.safetensors` beside them), and a
damaged weights file named in one line, before anything reads it; through every command."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from warmstart.cli import main
from warmstart.data.text import load_tokenizer
from warmstart.engine.checkpoint import require_weights
from warmstart.errors import WarmstartError

SRC = Path(__file__).resolve().parents[2] / "src" / "warmstart"


def _copy(pretrained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pretrained, tmp_path / "ckpt"))


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _auto_map(ckpt: Path) -> None:
    _edit_json(ckpt / "config.json", auto_map={"AutoModel": "evil.EvilModel"})


def _unknown_type(ckpt: Path) -> None:
    _edit_json(ckpt / "config.json", model_type="evil_bert")


def _decoy_adapter(ckpt: Path) -> None:
    (ckpt / "model.safetensors").rename(ckpt / "adapter_model.safetensors")
    torch.save({"w": torch.zeros(1)}, ckpt / "pytorch_model.bin")


def _truncated(ckpt: Path) -> None:
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])


def _bad_header(ckpt: Path) -> None:
    (ckpt / "model.safetensors").write_bytes(b"\xff" * 8 + b"{not json")


def _missing_shard(ckpt: Path) -> None:
    (ckpt / "model.safetensors").unlink()
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}}))


def _broken_config(ckpt: Path) -> None:
    (ckpt / "config.json").write_text("{model_type: bert")


CASES = [
    ("auto_map in config.json", _auto_map, "asks to run the checkpoint's own code (auto_map)"),
    ("a model type transformers does not ship", _unknown_type, "model_type 'evil_bert' is not one transformers knows"),
    ("pickled weights beside a decoy adapter_model.safetensors", _decoy_adapter, "only pickled weights (pytorch_model.bin)"),
    ("a truncated model.safetensors", _truncated, "model.safetensors: truncated or corrupt safetensors file"),
    ("a corrupt safetensors header", _bad_header, "model.safetensors: truncated or corrupt safetensors file"),
    ("a sharded index naming a missing shard", _missing_shard, "lists model-00001-of-00002.safetensors, which is missing"),
    ("a config.json that is not JSON", _broken_config, "config.json: not valid JSON"),
]


@pytest.mark.parametrize("what,damage,message", CASES, ids=[c[0] for c in CASES])
def test_unsafe_or_damaged_checkpoints_are_refused_by_every_command(pretrained, sentiment_csv, tmp_path, what, damage,
                                                                     message, capsys, monkeypatch):
    ckpt = _copy(pretrained, tmp_path)
    damage(ckpt)
    with pytest.raises(WarmstartError, match=message.replace("(", r"\(").replace(")", r"\)")):
        require_weights(ckpt)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "task.yaml").write_text(f"data: {{path: {sentiment_csv}}}\n")
    for argv in (["finetune", "task.yaml", "init=ckpt", "output_dir=ft", "train.max_steps=1"],
                 ["pretrain", "model.init=ckpt", f"corpus.sources=[{sentiment_csv}]", "train.max_steps=1",
                  "output_dir=pre", "objective.nsp=false"],
                 ["rank", "task.yaml", "--candidates", "ckpt", "--output", "r.csv"],
                 ["predict", "ckpt", "--input", str(sentiment_csv), "--output", "p.csv"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error: ") and message.split("(")[0].strip() in err, (argv, err)
    assert not any((tmp_path / name).exists() for name in ("ft", "pre", "r.csv", "p.csv"))


def test_trusting_pickles_is_the_users_explicit_choice(pretrained, tmp_path):
    ckpt = _copy(pretrained, tmp_path)
    _decoy_adapter(ckpt)
    assert require_weights(ckpt, trust_pickled=True) == ckpt


def test_a_tokenizer_that_asks_to_run_its_own_code_is_refused(pretrained, tmp_path):
    ckpt = _copy(pretrained, tmp_path)
    _edit_json(ckpt / "tokenizer_config.json", auto_map={"AutoTokenizer": ["evil.Tok", None]})
    with pytest.raises(WarmstartError, match="tokenizer_config.json: asks to run the checkpoint's own"):
        load_tokenizer(str(ckpt))
    with pytest.raises(WarmstartError, match="auto_map"):
        require_weights(ckpt)


def test_a_sharded_safetensors_checkpoint_is_checked_shard_by_shard(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    save_file({"a": torch.zeros(3)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"b": torch.zeros(3)}, str(tmp_path / "model-00002-of-00002.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert require_weights(tmp_path) == tmp_path
    _truncated_shard = tmp_path / "model-00002-of-00002.safetensors"
    _truncated_shard.write_bytes(_truncated_shard.read_bytes()[:-4])
    with pytest.raises(WarmstartError, match="model-00002-of-00002.safetensors: truncated"):
        require_weights(tmp_path)


def _from_pretrained_calls() -> list[tuple[str, int, ast.Call]]:
    calls = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained":
                calls.append((str(path.relative_to(SRC)), node.lineno, node))
    return calls


def test_every_from_pretrained_in_the_package_passes_trust_remote_code_false():
    calls = _from_pretrained_calls()
    assert calls, "the scan found no calls: it is broken"
    unsafe = [f"{where}:{line}" for where, line, call in calls
              if not any(k.arg == "trust_remote_code" and isinstance(k.value, ast.Constant) and k.value.value is False
                         for k in call.keywords)]
    assert not unsafe, f"pass trust_remote_code=False (or go through models.common.load_pretrained): {unsafe}"
    # and they live in the loaders, so that the checks before them cannot be skipped
    assert {where for where, _, _ in calls} <= {"models/common.py", "data/text.py", "models/sentence.py"}
