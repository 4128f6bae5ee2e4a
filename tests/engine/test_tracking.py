"""Experiment trackers (issue 19.6): TensorBoard, W&B and MLflow through accelerate's trackers, offline, their
files inside the run's own folder (OUTPUT_DIR/tracking), for fine-tuning and pretraining."""

from __future__ import annotations

import pytest
from conftest import requires

from warmstart.cli import main
from warmstart.engine.tracking import tracking_for
from warmstart.errors import WarmstartError


def test_tracking_names_its_folder_and_rejects_unknown_trackers(tmp_path):
    t = tracking_for("wandb", tmp_path / "run" / "tracking")
    assert (t.kind, t.folder, t.run_name) == ("wandb", tmp_path / "run" / "tracking", "run")
    assert tracking_for(None, "x") is None and tracking_for("none", "x") is None
    with pytest.raises(WarmstartError, match="unknown tracker 'comet'"):
        tracking_for("comet", "x")


def _finetune(pretrained, sentiment_csv, out, tracker):
    return main(["finetune", f"init={pretrained}", f"output_dir={out}", f"data.path={sentiment_csv}", "data.labels=40",
                 "train.max_steps=8", "train.eval_every=4", "train.max_length=32", "train.precision=fp32",
                 "train.patience=3", "--report-to", tracker])  # both phases: the selection's curves and the refit's


def test_finetune_reports_its_curves_to_tensorboard_inside_its_folder(pretrained, sentiment_csv, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "runs" / "ft"
    assert _finetune(pretrained, sentiment_csv, out, "tensorboard") == 0
    events = EventAccumulator(str(out / "tracking" / "ft-select")).Reload()  # the selection phase
    assert {"loss", "lr", "val_accuracy"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("val_accuracy")] == [4, 8]
    refit = EventAccumulator(str(out / "tracking" / "ft-refit")).Reload()  # then all N labels, nothing to choose
    assert "loss" in refit.Tags()["scalars"] and "val_accuracy" not in refit.Tags()["scalars"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ft"]  # nothing left beside the run


@requires("wandb", "wandb")
def test_wandb_offline_writes_its_run_inside_the_run_folder(pretrained, sentiment_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "ft"
    assert _finetune(pretrained, sentiment_csv, out, "wandb") == 0
    runs = list((out / "tracking" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(any(r.rglob("*.wandb")) for r in runs)  # the selection phase and the refit


@requires("mlflow", "mlflow")
def test_mlflow_writes_a_local_store_inside_the_run_folder(pretrained, corpus_file, tmp_path, monkeypatch):
    from conftest import tiny_pretrain_config

    from warmstart.pretraining.text import run_pretrain

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tiny_pretrain_config(corpus_file, tmp_path / "pre", tmp_path / "cache", "train.report_to=mlflow",
                               f"tokenizer.from_checkpoint={pretrained}")
    out = run_pretrain(cfg)
    metrics = list((out / "tracking" / "mlruns").rglob("metrics/mlm_loss"))
    assert len(metrics) == 1
    steps = [int(line.split()[2]) for line in metrics[0].read_text().splitlines()]
    assert steps == [2, 4, 6]  # log_every=2, 6 steps
