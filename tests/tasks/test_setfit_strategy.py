"""`train.strategy: setfit` on any warmstart text encoder, and the SetFit baseline through the setfit library."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from card_snippet import run_card_snippet
from conftest import requires

from warmstart.config import FinetuneConfig, load_config
from warmstart.errors import WarmstartError
from warmstart.prediction import run_predict
from warmstart.studies import baselines
from warmstart.tasks.registry import get, run_task

pytestmark = pytest.mark.slow


def _cfg(sentiment_csv, pretrained, out, *overrides) -> FinetuneConfig:
    return load_config(FinetuneConfig, None, [
        f"output_dir={out}", f"init={pretrained}", f"data.path={sentiment_csv}", "data.labels=12",
        "data.balanced=true", "train.strategy=setfit", "train.pooling=mean", "train.precision=fp32",
        "train.setfit.num_iterations=2", "train.setfit.batch_size=4", "train.setfit.lr=1e-3", *overrides])


@pytest.fixture(scope="module")
def setfit_run(pretrained, sentiment_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("setfit") / "run"
    return out, run_task(_cfg(sentiment_csv, pretrained, out))


def test_setfit_trains_the_body_on_pairs_then_fits_the_head(setfit_run, pretrained):
    from transformers import AutoModel, AutoModelForSequenceClassification

    out, metrics = setfit_run
    assert metrics["setfit_pairs"] == 2 * 2 * 12 and metrics["steps"] == 12  # 48 pairs, 4 a step, one epoch
    assert metrics["train_labels"] == 12 and metrics["held_out_labels"] == 0  # one fit on all N: nothing to stop
    assert "SetFit's pairs" in metrics["protocol"] and metrics["probe_C"] is not None
    trained = AutoModelForSequenceClassification.from_pretrained(out)
    before = AutoModel.from_pretrained(pretrained)
    moved = [not torch.equal(a, b) for (name, a), (_, b) in zip(trained.base_model.named_parameters(),
                                                               before.named_parameters(), strict=False)
             if "pooler" not in name]
    assert any(moved)  # the encoder trained (every weight may)
    log = (out / "training_log_refit.jsonl").read_text(encoding="utf-8").splitlines()
    assert log and '"loss"' in log[-1]


def test_its_folder_reproduces_its_test_predictions(setfit_run, sentiment_csv, tmp_path):
    out, _ = setfit_run
    test = pd.read_csv(sentiment_csv).query("split == 'test'")
    test.to_csv(tmp_path / "in.csv", index=False)
    got = pd.read_csv(run_predict(str(out), str(tmp_path / "in.csv")))
    want = pd.read_csv(out / "predictions.csv")
    assert list(got["prediction"].astype(str)) == list(want["prediction"].astype(str))
    assert np.allclose(got["prob_1"], want["prob_1"], atol=1e-4)
    # and its card's transformers-only lines give the same (the head reads mean-pooled features)
    card = (out / "README.md").read_text(encoding="utf-8")
    probs = run_card_snippet(card, out, test["text"].tolist()).numpy()
    assert "accuracy" in card and np.allclose(probs[:, 1], want["prob_1"], atol=1e-4)


def test_setfit_needs_mean_pooling_and_text(sentiment_csv, pretrained, tmp_path):
    with pytest.raises(WarmstartError, match="not the HF pooler; set train.pooling=mean, cls_token or auto"):
        _cfg(sentiment_csv, pretrained, tmp_path / "r", "train.pooling=cls")
    assert "setfit" not in get("image_classification").strategies


def test_the_baseline_sees_exactly_the_runs_labels(sentiment_csv, pretrained, tmp_path, monkeypatch):
    seen = {}

    def spy(train_texts, y_train, test_texts, seed, settings, body=None, balanced=False):
        seen.update(train=list(train_texts), test=list(test_texts), settings=settings, balanced=balanced)
        return np.zeros(len(test_texts), dtype=int)

    monkeypatch.setattr(baselines, "setfit_predict", spy)
    cfg = _cfg(sentiment_csv, pretrained, tmp_path / "r", "data.validation_labels=6", "train.setfit.max_steps=3")
    m = baselines.run_baseline(cfg, "setfit")
    sample = get("classification").resolve("sample")(cfg)
    assert seen["train"] == sample.labelled["text"].tolist() and seen["test"] == sample.test["text"].tolist()
    assert (m["train_labels"], m["validation_labels"]) == (12, 0)  # SetFit leaves the dev set unused
    assert "at most 3 steps" in m["protocol"] and m["baseline"] == "setfit"
    assert m["accuracy"] == pytest.approx(float((sample.test["label"] == 0).mean()), abs=1e-4)
    assert seen["balanced"] is False  # the recipe does not balance its classes: neither does its rival


@requires("setfit", "setfit")
def test_the_baseline_runs_the_setfit_library(sentiment_csv, pretrained, tmp_path, monkeypatch):
    monkeypatch.setattr("warmstart.models.common.minilm_folder", lambda: pretrained)  # a tiny body, not MiniLM
    monkeypatch.chdir(tmp_path)  # whatever the library might write lands here, not in the repository
    cfg = _cfg(sentiment_csv, pretrained, tmp_path / "r", "train.setfit.num_iterations=1")
    m = baselines.run_baseline(cfg, "setfit")
    assert 0 <= m["accuracy"] <= 1 and m["train_labels"] == 12 and m["seconds"] > 0
    assert list(tmp_path.iterdir()) == []  # its checkpoints went to a temporary folder, removed
