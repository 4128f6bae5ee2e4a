"""`warmstart auto` end to end on tiny fixtures (a 2-layer BERT as the one candidate, MiniLM left out): the
decisions use only the N labels, the budget is kept, the deliverable loads three ways, a killed run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from card_snippet import run_card_snippet

import warmstart
from warmstart.errors import WarmstartError

pytestmark = pytest.mark.slow
NO_MINILM = "warmstart.models.common.minilm_folder"


def _no_minilm():
    raise WarmstartError("not installed (the tests use a tiny candidate)")


@pytest.fixture(scope="module")
def auto_run(pretrained, sentiment_csv, corpus_file, tmp_path_factory):
    """One auto run with 20 of the table's 120 training labels; every text that reaches an encoder, TF-IDF or a
    fine-tuning table is recorded."""
    import warmstart.autopilot.crossval as crossval
    import warmstart.select.rank as rank
    import warmstart.studies.baselines as baselines

    seen: dict[str, list[str]] = {"features": [], "tfidf": [], "tables": []}
    real_features, real_tfidf, real_table = rank.sentence_features, baselines.tfidf_predict_cv, crossval.Labelled.table

    def features(folder, texts, *a, **k):
        seen["features"] += list(texts)
        return real_features(folder, texts, *a, **k)

    def tfidf(train, y, test, *a, **k):
        seen["tfidf"] += list(train) + list(test)
        return real_tfidf(train, y, test, *a, **k)

    def table(self, *a, **k):
        out = real_table(self, *a, **k)
        seen["tables"].append(out)
        return out

    out = tmp_path_factory.mktemp("auto") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(NO_MINILM, _no_minilm)
        mp.setattr(rank, "sentence_features", features)
        mp.setattr(baselines, "tfidf_predict_cv", tfidf)
        mp.setattr(crossval.Labelled, "table", table)
        t0 = time.perf_counter()
        result = warmstart.auto(sentiment_csv, unlabelled=[corpus_file], candidates=[pretrained], budget="5m",
                                output_dir=out, labels=20, seed=0)
        wall = time.perf_counter() - t0
    return result, seen, wall, out


def test_decisions_use_only_the_n_labels(auto_run, sentiment_csv):
    result, seen, _, out = auto_run
    table = pd.read_csv(sentiment_csv)
    used = pd.read_csv(out / "labels.csv")
    n = set(used.text)
    assert len(used) == 20 and n <= set(table[table.split == "train"].text)
    assert seen["features"] and set(seen["features"]) <= n  # ranking and the probes: the N only
    assert seen["tfidf"] and set(seen["tfidf"]) <= n
    test = set(table[table.split == "test"].text)
    for t in seen["tables"]:  # every fine-tuning table: the N, and the file's test rows only in the final refit's
        assert set(t[t.split == "train"].text) <= n
        assert set(t[t.split == "test"].text) <= n or set(t[t.split == "test"].text) == test
    refit = pd.read_csv(out / "refit" / "labels.csv")
    assert set(refit[refit.split == "train"].text) == n
    assert result.verdict["labels"] == 20 and result.verdict["unused_rows"] == 140


def test_the_budget_is_kept_and_every_stage_reported(auto_run):
    result, _, wall, out = auto_run
    assert wall <= 1.1 * 300
    state = json.loads((out / "auto_state.json").read_text())
    assert state["steps"]["done"]["wall_s"] <= 1.1 * 300
    assert {"folds", "tfidf", "unlabelled", "refit", "curve"} <= set(state["steps"])
    assert any(k.startswith("cv:") for k in state["steps"])


def test_the_verdict_names_the_choice_rivals_and_adaptation(auto_run):
    v = auto_run[0].verdict
    assert v["chosen"]["pipeline"] in {r["pipeline"] for r in v["pipelines"]}
    best = max(r["score"] for r in v["pipelines"] if r["pipeline"] not in ("tfidf", "setfit_library"))
    c = v["comparisons"]
    # the default (SetFit on the top encoder), unless another pipeline was clearly better out of fold
    assert v["default"].startswith("setfit:")
    assert v["chosen"]["pipeline"] == v["default"] or c["default"]["verdict"] == "better"
    if v["chosen"]["score"] < best:  # the default kept its place: the lead over it is named, and it is not clear
        assert c["leader"]["gap"] > 0 and c["leader"]["verdict"] != "better"
        assert any(s.endswith("so the default is kept.") for s in v["sentences"])
    else:
        runner = c["runner_up"]  # the next pipeline, and how far behind it is
        assert runner["b"] != v["chosen"]["name"] and runner["gap"] >= 0 and runner["labels"] >= 0
        assert any(s.startswith(f"The runner-up, {runner['b']}") for s in v["sentences"])
    assert v["chosen"]["low"] <= v["chosen"]["score"] <= v["chosen"]["high"]
    assert "tfidf" in c and v["unlabelled"]["adapted"]
    assert "adaptation" in v["comparisons"]
    # the most-frequent-class rival, paired on the same folds, and the class balance it is read against
    assert c["majority"]["b"] == f"always {v['majority']['class']!r}" and v["majority"]["count"] <= v["labels"]
    assert 0 <= v["majority"]["rare_found"] <= v["majority"]["rare_count"]
    assert len(v["curve"]) == 3 and v["curve"][0]["labels"] < v["curve"][-1]["labels"]
    assert 0 <= v["chosen"]["test_score"] <= 1 and v["test_rows"] == 40


def test_the_model_folder_predicts_loads_in_transformers_and_sentence_transformers(auto_run, sentiment_csv, tmp_path):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModelForSequenceClassification

    model = auto_run[0].model_dir
    card = (model / "README.md").read_text()
    assert "## Protocol" in card and "20 labels" in card and "## Limits" in card
    assert AutoModelForSequenceClassification.from_pretrained(model).config.num_labels == 2
    st = SentenceTransformer(str(model), device="cpu")
    assert st.encode(["a good film", "a dull film"]).shape == (2, 32)
    rows = warmstart.predict(model, sentiment_csv, tmp_path / "p.csv").rows
    test = pd.read_csv(model / "predictions.csv")
    table = pd.read_csv(sentiment_csv)
    again = rows[table.split == "test"].reset_index(drop=True)
    assert (again["prediction"].astype(str) == test["prediction"].astype(str)).all()
    in_memory = auto_run[0].predictor().predict(list(table.text[table.split == "test"]))
    assert (in_memory["prediction"].astype(str) == test["prediction"].astype(str)).all()
    # the sentence layout pools as the head was fitted, and the card's transformers-only lines give predict's
    # probabilities (predict may run bf16 where auto measured it faster: within 3e-2)
    fitted = yaml.safe_load((model / "warmstart_config.yaml").read_text(encoding="utf-8"))["train"]["pooling"]
    pool = json.loads((model / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    assert pool["pooling_mode_mean_tokens"] == (fitted == "mean") and pool["pooling_mode_cls_token"] == (fitted != "mean")
    texts = table.text[:8].tolist()
    probs = run_card_snippet(card, model, texts).numpy()
    labels = AutoModelForSequenceClassification.from_pretrained(model).config.id2label
    want = rows[[f"prob_{labels[i]}" for i in range(len(labels))]].to_numpy()[:8]
    assert np.abs(probs - want).max() < 3e-2


def test_a_finished_run_reports_again_without_fitting(auto_run, pretrained, sentiment_csv, corpus_file, monkeypatch):
    import warmstart.tasks.registry as registry

    monkeypatch.setattr(NO_MINILM, _no_minilm)
    monkeypatch.setattr(registry, "run_task", lambda *a, **k: pytest.fail("refitted a finished run"))
    again = warmstart.auto(sentiment_csv, unlabelled=[corpus_file], candidates=[pretrained], budget="5m",
                           output_dir=auto_run[3], labels=20, seed=0)
    assert again.verdict["chosen"] == auto_run[0].verdict["chosen"]


def test_a_second_run_with_other_labels_is_refused(auto_run, pretrained, sentiment_csv, monkeypatch):
    monkeypatch.setattr(NO_MINILM, _no_minilm)
    with pytest.raises(WarmstartError, match="other labels"):
        warmstart.auto(sentiment_csv, candidates=[pretrained], budget="3m", output_dir=auto_run[3], labels=30)


def test_pipelines_that_cannot_fit_the_budget_are_not_run(pretrained, sentiment_csv, tmp_path, monkeypatch):
    """With fine-tuning estimated at hours, only the probes and TF-IDF run; the verdict says what was left out."""
    import warmstart.autopilot.run as run

    monkeypatch.setattr(NO_MINILM, _no_minilm)
    monkeypatch.setattr(run, "fit_seconds", lambda *a: 1e9)
    v = warmstart.auto(sentiment_csv, candidates=[pretrained], budget="1m", output_dir=tmp_path / "a",
                       labels=16).verdict
    assert v["chosen"]["strategy"] == "probe"
    assert v["skipped"] and all(s["status"].startswith("not run") for s in v["skipped"])


def test_the_report_opens_in_chromium_without_errors(auto_run, browser):
    browser.get(auto_run[0].report.resolve().as_uri())
    assert browser.title == "warmstart auto"
    widths = browser.execute_script("return [...document.querySelectorAll('img.plot')].map(i => i.naturalWidth)")
    assert widths and all(w > 300 for w in widths)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


KILLABLE = """
import sys
import warmstart.models.common as common
from warmstart.errors import WarmstartError
def none():
    raise WarmstartError("not installed")
common.minilm_folder = none
from warmstart.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_run_resumes_where_it_stopped(pretrained, sentiment_csv, tmp_path):
    """SIGKILL once the first cross-validation fold is recorded; the rerun keeps that fold (not refitted) and
    finishes."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", KILLABLE, "auto", "--labelled", str(sentiment_csv), "--candidates", str(pretrained),
           "--budget", "1m", "--labels", "20", "--output-dir", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(warmstart.__file__).parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state, deadline = out / "auto_state.json", time.monotonic() + 240
    first = None
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_file():
            try:
                steps = json.loads(state.read_text())["steps"]
            except ValueError:
                steps = {}
            first = next((k for k in steps if k.startswith("fold:")), None)
            if first:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert first, "the run ended before any fold was recorded"
    before = json.loads(state.read_text())["steps"]
    assert "done" not in before
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = json.loads(state.read_text())["steps"]
    assert after[first] == before[first]  # kept, not fitted again
    assert "done" in after and (out / "model" / "model.safetensors").is_file()
    assert np.isfinite(after["done"]["wall_s"])


def test_a_table_of_label_sets_is_chosen_by_micro_f1_and_predicted_as_the_user_wrote_it(pretrained, tmp_path,
                                                                                       monkeypatch):
    """Multi-label end to end: 0/1 vectors in, micro-F1 decides and reports against TF-IDF + LR with bootstrap
    intervals, and the delivered model predicts 0/1 vectors (its folds' tables had one column a label)."""
    import random

    from conftest import FILLER, NEGATIVE, POSITIVE

    rng, rows = random.Random(0), []
    for split, n in (("train", 40), ("test", 12)):
        for i in range(n):
            hot = [[0, 1], [1, 0], [1, 1], [0, 0]][i % 4]  # [neg, pos]
            words = NEGATIVE * 3 * hot[0] + POSITIVE * 3 * hot[1]
            rows.append({"text": " ".join(rng.choice(FILLER + words) for _ in range(8)), "labels": json.dumps(hot),
                         "split": split})
    path = tmp_path / "sets.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    monkeypatch.setattr(NO_MINILM, _no_minilm)
    v = warmstart.auto(path, candidates=[pretrained], budget="2m", output_dir=tmp_path / "a", labels=24,
                       label_column="labels").verdict
    assert v["label_sets"] and v["metric"] == "micro-F1" and v["rank_by"] == "probe" and v["classes"] == ["0", "1"]
    assert v["chosen"]["low"] <= v["chosen"]["score"] <= v["chosen"]["high"] and 0 <= v["chosen"]["test_score"] <= 1
    assert "tfidf" in v["comparisons"] and "micro-F1 cross-validated" in v["sentences"][0]
    assert "majority" not in v["comparisons"] and v["majority"] is None  # sets of labels: no such rival
    assert any(p["pipeline"].startswith("full:") for p in v["pipelines"] + v["skipped"])  # queued for sets only
    used = pd.read_csv(tmp_path / "a" / "labels.csv")
    assert list(used.columns) == ["text", "0", "1", "fold"] and len(used) == 24
    predicted = warmstart.predict(tmp_path / "a" / "model", path, tmp_path / "p.csv").rows["prediction"]
    assert all(len(p) == 2 and set(p) <= {0, 1} for p in predicted)
    written = pd.read_csv(tmp_path / "p.csv")["prediction"].map(json.loads)  # the file: 0/1 vectors, as given
    assert all(len(p) == 2 and set(p) <= {0, 1} for p in written)
    card = (tmp_path / "a" / "model" / "README.md").read_text(encoding="utf-8")
    assert "2 labels, any number a text" in card and "Cross-validated micro-F1" in card and "sigmoid" in card


def test_balanced_accuracy_weighs_every_fit_decides_and_reports(pretrained, sentiment_csv, tmp_path, monkeypatch):
    """--metric balanced_accuracy on 24 / 6 labels: every fine-tuning fold weighs the classes alike
    (train.class_balance=adjusted in its saved config), every figure is a balanced accuracy (the test score is the model's
    own on the test rows, accuracy beside it), the majority rival scores 50%; a resume under another metric, and
    the metric on sets of labels, are refused before any work."""
    from sklearn.metrics import balanced_accuracy_score

    table = pd.read_csv(sentiment_csv)
    train = table[table["split"] == "train"]
    skewed = pd.concat([train[train["label"] == 0][:24], train[train["label"] == 1][:6], table[table["split"] == "test"]])
    skewed.to_csv(path := tmp_path / "skewed.csv", index=False)
    monkeypatch.setattr(NO_MINILM, _no_minilm)
    v = warmstart.auto(path, candidates=[pretrained], budget="2m", output_dir=tmp_path / "a", seed=0,
                       metric="balanced_accuracy").verdict
    assert v["metric"] == "balanced accuracy" and "% balanced accuracy cross-validated" in v["sentences"][0]
    configs = list((tmp_path / "a" / "cv").rglob("warmstart_config.yaml")) + [tmp_path / "a" / "model" /
                                                                              "warmstart_config.yaml"]
    assert len(configs) > 1 and all(yaml.safe_load(c.read_text(encoding="utf-8"))["train"]["class_balance"] ==
                                    "adjusted" for c in configs)
    assert v["comparisons"]["majority"]["b"] == "always '0'"
    floor = v["comparisons"]["majority"]
    chosen = v["chosen"]
    assert floor["gap"] == pytest.approx(chosen["score"] - 50.0, abs=0.15)  # the rival's balanced accuracy: 1 / C
    predicted = pd.read_csv(tmp_path / "a" / "model" / "predictions.csv")
    assert chosen["test_score"] == pytest.approx(balanced_accuracy_score(predicted["label"], predicted["prediction"]),
                                                 abs=1e-4)
    assert 0 <= chosen["test_accuracy"] <= 1 and "50.0% balanced" in (tmp_path / "a" / "model" / "README.md").read_text(
        encoding="utf-8")
    with pytest.raises(WarmstartError, match="other metric"):
        warmstart.auto(path, candidates=[pretrained], budget="2m", output_dir=tmp_path / "a", seed=0)
    sets = tmp_path / "sets.csv"
    pd.DataFrame({"text": ["a b", "c d", "e f", "g h"], "label": ['["x"]', '["y"]', '["x", "y"]', '["y"]']}).to_csv(
        sets, index=False)
    with pytest.raises(WarmstartError, match="balanced_accuracy weighs the classes of one label a text"):
        warmstart.auto(sets, candidates=[pretrained], output_dir=tmp_path / "b", metric="balanced_accuracy")
    assert not (tmp_path / "b").exists()
