import pytest

from warmstart.engine.tracking import tracking_dir
from warmstart.errors import WarmstartError


def test_tracking_dir_sits_beside_the_run_and_rejects_unknown_trackers(tmp_path):
    assert tracking_dir("tensorboard", tmp_path / "runs" / "a") == tmp_path / "runs" / "tensorboard" / "a"
    assert tracking_dir(None, "x") is None and tracking_dir("none", "x") is None
    with pytest.raises(WarmstartError, match="unknown tracker 'wandb'"):
        tracking_dir("wandb", "x")


def test_finetune_reports_its_curves_to_tensorboard(pretrained, sentiment_csv, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from warmstart.cli import main

    out = tmp_path / "runs" / "ft"
    assert main(["finetune", f"init={pretrained}", f"output_dir={out}", f"data.path={sentiment_csv}",
                 "data.labels=40", "train.max_steps=8", "train.eval_every=4", "train.max_length=32",
                 "train.precision=fp32", "--report-to", "tensorboard"]) == 0
    events = EventAccumulator(str(tmp_path / "runs" / "tensorboard" / "ft")).Reload()
    tags = events.Tags()["scalars"]
    assert {"loss", "lr", "val_accuracy"} <= set(tags)
    assert [e.step for e in events.Scalars("val_accuracy")] == [4, 8]
    assert (out / "metrics.json").is_file()  # the run folder itself is as without tracking
