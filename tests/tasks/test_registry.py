"""A task is one module plus one registry line (issue 19.1): a toy task, defined in this test alone, runs through
`finetune`, `predict` and `study`; nothing else in the package knows its name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from warmstart.cli import main
from warmstart.errors import WarmstartError
from warmstart.tasks.registry import TASKS, Task, get, register


def _toy_sample(cfg):
    from warmstart.tasks.classification import labelled_sample

    return labelled_sample(cfg)


def _toy_run(cfg) -> dict:
    """Predicts the commonest training label for everything; a real HF checkpoint so that predict can load it."""
    from transformers import AutoModelForSequenceClassification

    from warmstart.data.text import load_tokenizer
    from warmstart.tasks.finetune import build_model, write_run
    from warmstart.tasks.protocol import scored

    sample = _toy_sample(cfg)
    train, test = sample.labelled, sample.test
    majority = int(train["label"].mode()[0])
    model = build_model(AutoModelForSequenceClassification, cfg, num_labels=2)
    model.config.toy_majority = majority
    accuracy = float(np.mean(test["label"].to_numpy() == majority))
    metrics = scored({"accuracy": round(accuracy, 4), "train_labels": len(train), "seconds": 0.0}, len(test) > 0)
    write_run(cfg, model, load_tokenizer(cfg.init), metrics, {})
    return metrics


def _toy_predict(folder: Path, cfg, request) -> pd.DataFrame:
    rows = pd.read_csv(request.src)
    majority = json.loads((folder / "config.json").read_text())["toy_majority"]
    return rows.assign(prediction=majority)


@pytest.fixture
def toy():
    task = register(Task("toy_majority", _toy_run, _toy_predict, _toy_sample, description="the majority label"))
    yield task
    TASKS.pop("toy_majority")


def test_a_toy_task_runs_through_finetune_predict_and_study(toy, pretrained, sentiment_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", "task=toy_majority", f"init={pretrained}", f"data.path={sentiment_csv}",
                 "output_dir=run", "data.labels=20"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_labels"] == 20 and metrics["scored_split"] == "test"
    pd.DataFrame({"id": [1, 2], "text": ["a", "b"]}).to_csv(tmp_path / "in.csv", index=False)
    assert main(["predict", "run", "--input", "in.csv", "--output", "out.csv"]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out["id"]) == [1, 2] and out["prediction"].nunique() == 1
    (tmp_path / "toy.yaml").write_text(f"task: toy_majority\ndata: {{path: {sentiment_csv}}}\n")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({
        "output_dir": "study", "inits": [str(pretrained)], "seeds": 1, "rank": False,
        "tasks": {"toy": {"recipe": "toy.yaml", "labels": [10, 20]}}}))
    assert main(["study", "study.yaml"]) == 0
    table = pd.read_csv(tmp_path / "study" / "results.csv")
    assert list(table["labels"]) == [10, 20] and set(table["metric"]) == {"accuracy"}


def test_the_registry_names_every_task_and_refuses_unknown_ones():
    assert {"classification", "token_classification", "summarization", "response_selection",
            "image_classification"} <= set(TASKS)
    for task in TASKS.values():
        for what in ("run", "predict", "sample"):
            assert callable(task.resolve(what)), (task.name, what)
    with pytest.raises(WarmstartError, match="unknown task 'nope'; use classification"):
        get("nope")


def test_the_package_switches_on_task_names_only_in_the_registry():
    """Besides the registry (and each task module naming itself in its metrics), no module names a task."""
    src = Path(__file__).resolve().parents[2] / "src" / "warmstart"
    names = [n for n in TASKS if n != "toy_majority"]
    offenders = []
    for path in src.rglob("*.py"):
        rel = str(path.relative_to(src))
        if rel in ("tasks/registry.py", "config/finetune.py", "config/images.py") or \
                rel.removeprefix("tasks/").removesuffix(".py") in names:
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{rel}: {n}" for n in names if f'"{n}"' in text or f"'{n}'" in text]
    assert not offenders, offenders


@pytest.mark.parametrize("pooling, expected", [("auto", "cls"), ("cls", "cls"), ("mean", None), ("cls_token", None)])
def test_a_task_that_does_not_pool_records_cls_and_refuses_another_pooling(toy, pretrained, sentiment_csv, tmp_path,
                                                                          pooling, expected):
    """Only classification reads train.pooling; the others score through the HF model's own head, so their
    config says what they use, and a pooling they would ignore is one line before any folder is made."""
    from warmstart.config import FinetuneConfig, load_config
    from warmstart.tasks.registry import run_task

    cfg = load_config(FinetuneConfig, None, ["task=toy_majority", f"init={pretrained}", f"data.path={sentiment_csv}",
                                             f"output_dir={tmp_path / 'run'}", f"train.pooling={pooling}"])
    if expected is None:
        with pytest.raises(WarmstartError, match=f"train.pooling={pooling}: task toy_majority scores through"):
            run_task(cfg)
        assert not (tmp_path / "run").exists()
        return
    run_task(cfg)
    assert cfg.train.pooling == expected
    assert yaml.safe_load((tmp_path / "run" / "warmstart_config.yaml").read_text())["train"]["pooling"] == expected
