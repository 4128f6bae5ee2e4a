"""auto/crossval.py: the N labels and their folds, out-of-fold predictions that never see their own row, and the
intervals that the verdict reads."""

import numpy as np
import pandas as pd
import pytest

from warmstart.autopilot.crossval import (
    fold_finetune,
    fraction_of,
    load_labelled,
    oof_probe,
    oof_tfidf,
    paired_gap,
    wilson,
)
from warmstart.errors import WarmstartError


def test_the_n_labels_come_from_the_training_rows_only_and_folds_are_stratified(sentiment_csv):
    data = load_labelled(str(sentiment_csv), "text", "label", 20, None, 0, 5)
    table = pd.read_csv(sentiment_csv)
    train = set(table[table.split == "train"].text)
    assert len(data.texts) == 20 and set(data.texts) <= train
    assert len(data.test_texts) == 40 and not set(data.test_texts) & set(data.texts)
    assert data.unused == 100 + 40  # the training rows beyond the N and the validation rows: never read again
    assert data.k == 5
    for i in range(5):
        held = data.fold(i)[1]
        assert sorted(np.bincount(data.y[held], minlength=2)) == [2, 2]


def test_per_class_draws_evenly_and_folds_are_capped_by_the_smallest_class(sentiment_csv):
    data = load_labelled(str(sentiment_csv), "text", "label", None, 3, 0, 5)
    assert np.bincount(data.y).tolist() == [3, 3] and data.k == 3


@pytest.mark.parametrize("labels, message", [
    (["x", "x", "x", "y"], "class 'y' has 1 label"),
    (["x", "x", "x", "x"], r"t.csv: the labelled training sample has 1 class \(only 'x'\)"),  # was sklearn's raise
])
def test_a_sample_auto_cannot_cross_validate_is_refused_in_one_line(tmp_path, labels, message):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": ["a b", "c d", "e f", "g h"], "label": labels}).to_csv(path, index=False)
    with pytest.raises(WarmstartError, match=message):
        load_labelled(str(path), "text", "label", None, None, 0, 5)


def test_a_table_without_split_column_is_all_labels(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": [f"w{i} x" for i in range(8)], "label": [0, 1] * 4}).to_csv(path, index=False)
    data = load_labelled(str(path), "text", "label", None, None, 0, 5)
    assert len(data.texts) == 8 and len(data.test_texts) == 0 and data.k == 4



def test_the_refit_on_all_n_labels_is_scored_by_auto_and_predicts_the_users_file(pretrained, tmp_path, capsys):
    """auto's refit has no test rows (its score is the cross-validation): the run records that no split was scored,
    without printing a fine-tuning run's advice (add test rows, data.split_column) in the middle of auto's. The
    model it writes reads the user's file as it is: their text column, not auto's own table's."""
    import warmstart

    path = tmp_path / "t.csv"
    pd.DataFrame({"review": [f"{w} film {i}" for i in range(6) for w in ("good", "bad")], "y": [1, 0] * 6}
                 ).to_csv(path, index=False)
    data = load_labelled(str(path), "review", "y", None, None, 0, 2)
    pred, metrics = fold_finetune(data, None, tmp_path / "refit", str(pretrained),
                                  ["train.strategy=linear_probe", "train.precision=fp32"], save_model=True)
    assert len(pred) == 0 and metrics["scored_split"] == "none"
    assert "no test split" not in capsys.readouterr().err
    rows = warmstart.predict(tmp_path / "refit" / "run", path, tmp_path / "p.csv").rows
    assert list(rows["review"]) == list(pd.read_csv(path)["review"]) and rows["prediction"].notna().all()


@pytest.mark.parametrize("column, written", [("review", "review"), ("label", "text"), ("123", "text"),
                                             ("my text", "my text")])
def test_auto_tables_keep_the_users_text_column(column, written, tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({column: [f"w{i} x" for i in range(8)], "y": [0, 1] * 4}).to_csv(path, index=False)
    data = load_labelled(str(path), column, "y", None, None, 0, 2)
    assert data.text_column == written and list(data.table().columns) == [written, "label", "split"]

def test_out_of_fold_predictions_never_fit_on_their_own_row(sentiment_csv, monkeypatch):
    """The probe of each fold is fitted on the other folds' rows only (recorded at the fit)."""
    import warmstart.models.probe as probe

    data = load_labelled(str(sentiment_csv), "text", "label", 20, None, 0, 5)
    x = np.random.default_rng(0).normal(size=(20, 4)) + data.y[:, None]
    fitted = []
    real = probe.fit_logistic_cv
    monkeypatch.setattr(probe, "fit_logistic_cv", lambda xs, ys, seed: fitted.append(xs.copy()) or real(xs, ys, seed))
    pred = oof_probe(x, data, 0)
    assert pred.shape == (20,)
    for i, xs in enumerate(fitted):
        held = data.fold(i)[1]
        assert not any((row == x[h]).all() for row in xs for h in held)


def test_tfidf_out_of_fold_and_the_curve_use_subsets_of_the_fold(sentiment_csv):
    data = load_labelled(str(sentiment_csv), "text", "label", 40, None, 0, 5)
    assert oof_tfidf(data, 0).mean() > 0  # predicts both classes somewhere
    pick = fraction_of(0.25, data.y, 0)
    train = data.fold(0)[0]
    rows = pick(train)
    assert set(rows) <= set(train) and len(rows) < len(train)
    assert np.bincount(data.y[rows]).min() >= 2


@pytest.mark.parametrize("a,b,verdict", [
    ([1] * 40, [0] * 20 + [1] * 20, "better"),    # a right everywhere, b on half
    ([0] * 20 + [1] * 20, [1] * 40, "worse"),
    ([1, 0] * 20, [0, 1] * 20, "not clearly different"),
    ([1, 0] * 20, [1, 0] * 20, "the same"),       # no difference anywhere: no interval to read
])
def test_paired_gaps_say_what_the_interval_carries(a, b, verdict):
    y = np.ones(40, dtype=int)
    g = paired_gap(np.array(a), np.array(b), y)
    assert g["verdict"] == verdict and g["low"] <= g["gap"] <= g["high"]


def test_the_wilson_interval_stays_inside_0_and_1():
    low, high = wilson(10, 10)
    assert 0.6 < low < 1.0 and high == pytest.approx(1.0)
    low, high = wilson(0, 5)
    assert low == pytest.approx(0.0) and 0 < high < 0.6
