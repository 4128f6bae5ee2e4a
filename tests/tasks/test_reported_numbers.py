"""A reported number is what it says (issue 18.4): no test split means no test metric (never the early-stopping
split called 'test'); a single-class training sample is an error for every strategy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from warmstart.cli import main
from warmstart.config import load_config
from warmstart.errors import WarmstartError
from warmstart.tasks.registry import get, run_task


def _table(path, splits=("train", "validation"), labels=(0, 1)):
    rng = np.random.default_rng(0)
    rows = [{"text": f"{'good' if y else 'bad'} film {i} {rng.integers(99)}", "label": y, "split": s}
            for s in splits for i in range(30) for y in [labels[i % len(labels)]]]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("strategy", ["full", "linear_probe"])
def test_without_test_rows_no_test_metric_is_reported(pretrained, tmp_path, strategy, capsys):
    data = _table(tmp_path / "no_test.csv")
    cfg = load_config(get("classification").config, None, [
        f"init={pretrained}", f"data.path={data}", f"output_dir={tmp_path / 'run'}", "train.max_steps=2",
        f"train.strategy={strategy}", "train.precision=fp32"])
    metrics = run_task(cfg)
    assert "accuracy" not in metrics and metrics["scored_split"] == "none" and metrics["test_size"] == 0
    assert "no test split" in capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["scored_split"] == "none" and not (tmp_path / "run" / "predictions.csv").exists()


def test_with_test_rows_the_run_says_it_scored_them(pretrained, tmp_path):
    data = _table(tmp_path / "t.csv", splits=("train", "validation", "test"))
    cfg = load_config(get("classification").config, None, [
        f"init={pretrained}", f"data.path={data}", f"output_dir={tmp_path / 'run'}", "train.max_steps=2",
        "train.precision=fp32"])
    metrics = run_task(cfg)
    assert metrics["scored_split"] == "test" and 0 <= metrics["accuracy"] <= 1


@pytest.mark.parametrize("strategy", ["full", "linear_probe", "lp_ft", "lora"])
def test_a_single_class_sample_is_refused_for_every_strategy(pretrained, tmp_path, strategy, capsys, monkeypatch):
    data = _table(tmp_path / "one.csv", splits=("train", "validation", "test"), labels=(1,))
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", f"init={pretrained}", f"data.path={data}", "output_dir=run", "train.max_steps=2",
                 f"train.strategy={strategy}"]) == 2
    err = capsys.readouterr().err
    assert "the labelled training sample has 1 class" in err and not (tmp_path / "run").exists()


def test_a_single_class_image_sample_is_refused(tmp_path):
    from warmstart.tasks.image_classification import labelled_sample

    images = np.random.default_rng(0).integers(0, 255, (20, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "one.npz", images=images, labels=np.zeros(20, dtype=np.int64))
    cfg = load_config(get("image_classification").config, None, [f"data.sources=[{tmp_path / 'one.npz'}]",
                                                                  "init=scratch", "data.validation_per_class=2"])
    with pytest.raises(WarmstartError, match="has 1 class"):
        labelled_sample(cfg)
