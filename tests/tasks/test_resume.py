"""`finetune --resume` (issue 19.6), like `pretrain --resume`: a fine-tuning run stopped mid-way continues from the
state it saved beside its folder and ends with the weights and metrics of an uninterrupted run; another recipe
or other data is refused in one line."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from warmstart.cli import main
from warmstart.config import load_config
from warmstart.errors import WarmstartError
from warmstart.tasks.registry import get, run_task


def _cfg(pretrained, sentiment_csv, out, *extra):
    return load_config(get("classification").config, None, [
        f"init={pretrained}", f"data.path={sentiment_csv}", f"output_dir={out}", "data.labels=40",
        "train.max_steps=12", "train.eval_every=3", "train.batch_size=8", "train.lr=1e-3", "train.precision=fp32",
        "train.save_every_minutes=1e-9", "train.patience=3", *extra])  # both phases, each stopped and resumed


@pytest.mark.parametrize("strategy", ["full", "lp_ft", "gradual_unfreeze"])
def test_a_stopped_finetuning_run_resumes_to_the_uninterrupted_result(pretrained, sentiment_csv, tmp_path,
                                                                       monkeypatch, strategy):
    import torch.nn.functional as F

    full = run_task(_cfg(pretrained, sentiment_csv, tmp_path / "full", f"train.strategy={strategy}",
                         "train.dropout=0.1"))
    real, calls = F.cross_entropy, {"n": 0}

    def stops_at_step_7(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    cfg = _cfg(pretrained, sentiment_csv, tmp_path / "cut", f"train.strategy={strategy}", "train.dropout=0.1")
    monkeypatch.setattr(F, "cross_entropy", stops_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        run_task(cfg)
    monkeypatch.setattr(F, "cross_entropy", real)
    assert not (tmp_path / "cut").exists() and any(tmp_path.glob(".cut.resume-*"))
    resumed = run_task(cfg, resume=True)
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    for k in ("accuracy", "val_accuracy", "best_step", "refit_steps", "selection_steps"):
        assert resumed.get(k) == full.get(k), k
    log = [json.loads(line) for line in (tmp_path / "cut" / "training_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == sorted(set(steps))  # each logged step once
    assert not any(tmp_path.glob(".cut.resume*"))  # published: the state is gone


def test_resume_refuses_nothing_another_recipe_or_other_data(pretrained, sentiment_csv, tmp_path, monkeypatch,
                                                             capsys):
    import shutil

    import torch.nn.functional as F

    data = tmp_path / "s.csv"
    shutil.copy(sentiment_csv, data)
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", f"init={pretrained}", "data.path=s.csv", "output_dir=run", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    real, calls = F.cross_entropy, []

    def stops_at_step_5(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "cross_entropy", stops_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        run_task(_cfg(pretrained, data, tmp_path / "run"))
    monkeypatch.setattr(F, "cross_entropy", real)
    with pytest.raises(WarmstartError, match="--resume: train.lr was 0.001 when the run started, now 0.002"):
        run_task(_cfg(pretrained, data, tmp_path / "run", "train.lr=2e-3"), resume=True)
    with open(data, "a", encoding="utf-8") as f:
        f.write("an extra row,1,train\n")
    with pytest.raises(WarmstartError, match="--resume: data.path changed since the run started"):
        run_task(_cfg(pretrained, data, tmp_path / "run"), resume=True)
    more = run_task(_cfg(pretrained, data, tmp_path / "run"))  # without --resume: a new run, the old state dropped
    assert more["scored_split"] == "test" and not any(tmp_path.glob(".run.resume*"))


@pytest.mark.parametrize("legacy_score, value", [(0.75, 0.75), (float("-inf"), None)])
def test_a_state_saved_before_keepbest_still_resumes(tmp_path, legacy_score, value):
    """Fine-tuning's best-so-far moved onto engine.loop.KeepBest; a state saved as {score, step, bad} loads."""
    from safetensors.torch import save_file

    from warmstart.engine.loop import KeepBest, LoopState
    from warmstart.tasks.resume import load_resumable, save_resumable

    folder = tmp_path / "state"
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters())
    keeper = KeepBest("accuracy", "max", 3, ties_count=True, weights=model.state_dict())
    save_resumable(folder, model, optimizer, keeper, LoopState(step=4), 4, (), None)
    state = torch.load(folder / "training_state.pt", weights_only=False)
    state["best"] = {"score": legacy_score, "step": 2, "bad": 1}
    torch.save(state, folder / "training_state.pt")
    save_file({k: torch.full_like(v, 7.0) for k, v in model.state_dict().items()}, folder / "best.safetensors")
    again = KeepBest("accuracy", "max", 3, ties_count=True)
    loop, calls = load_resumable(folder, model, optimizer, again, ())
    assert (again.value, again.step, again.bad, loop.step, calls) == (value, 2, 1, 4, 4)
    assert all((w == 7.0).all() for w in again.weights.values())
