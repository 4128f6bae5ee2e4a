"""auto/crossval.py: the N labels and their folds, out-of-fold predictions that never see their own row, and the
intervals that the verdict reads."""

import json

import numpy as np
import pandas as pd
import pytest

from warmstart.autopilot.crossval import (
    fold_finetune,
    fraction_of,
    load_labelled,
    oof_probe,
    oof_tfidf,
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


def test_copies_of_a_text_share_a_fold_and_every_score_out_of_fold_respects_it(tmp_path, monkeypatch):
    """A text repeated in the table (case and spaces aside) is held out with all its copies, in auto's folds and
    in every k-fold inside a fold's training part (the probe's C, TF-IDF's C), so no pipeline is scored on a
    text it trained on. Two classes of 2 labels, each class's 2 being one text: nothing to cross-validate."""
    import warmstart.data.sample as sample

    texts = [f"w{i} x" for i in range(12)]
    rows = texts + [t.upper() for t in texts[:6]] + [f"{t}  " for t in texts[:3]]
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": rows, "label": [i % 2 for i in range(12)] + [i % 2 for i in range(6)] + [0, 1, 0]}
                 ).to_csv(path, index=False)
    data = load_labelled(str(path), "text", "label", None, None, 0, 3)
    key = [t.strip().lower() for t in data.texts]
    assert data.k == 3 and all(len({data.folds[i] for i in range(len(key)) if key[i] == k}) == 1 for k in key)
    inner = []
    real = sample.kfold
    monkeypatch.setattr(sample, "kfold", lambda y, k, seed, groups=None, *a: inner.append(groups is not None) or
                        real(y, k, seed, groups, *a))
    oof_probe(np.random.default_rng(0).normal(size=(len(key), 4)), data, 0)
    oof_tfidf(data, 0)
    assert sum(inner) == 6  # 3 folds x (the probe's C, TF-IDF's C), each inner k-fold with the copies grouped
    pd.DataFrame({"text": ["a b", "a b", "c d", "e f"], "label": ["x", "x", "y", "y"]}).to_csv(path, index=False)
    with pytest.raises(WarmstartError, match="copies of one text"):
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
    (tmp_path / "refit").mkdir()
    (tmp_path / "refit" / "labels.csv").write_text("", encoding="utf-8")  # a kill cut it: rewritten, not read
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
    monkeypatch.setattr(probe, "fit_logistic_cv",
                        lambda xs, ys, seed, **kw: fitted.append(xs.copy()) or real(xs, ys, seed, **kw))
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


# ---------------------------------------------------------------- sets of labels
def _sets_table(path, form: str, n: int = 24):
    """A table whose texts say their labels (pos, neg, both or neither), in one of the forms multi_label reads."""
    sets = [["pos"], ["neg"], ["neg", "pos"], []] * (n // 4)
    texts = [" ".join(["good great"] * ("pos" in s) + ["bad awful"] * ("neg" in s) + [f"film {i}"])
             for i, s in enumerate(sets)]
    frame = pd.DataFrame({"text": texts, "split": ["train"] * (n - 8) + ["test"] * 8})
    if form == "lists":
        frame["labels"] = [json.dumps(s) for s in sets]
    elif form == "separator":
        frame["labels"] = ["|".join(s) for s in sets]
    elif form == "vectors":
        frame["labels"] = [json.dumps([int("neg" in s), int("pos" in s)]) for s in sets]
    else:
        frame["neg"], frame["pos"] = [int("neg" in s) for s in sets], [int("pos" in s) for s in sets]
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("form, options, names", [
    ("lists", {}, ["neg", "pos"]),  # JSON lists in the label column: told apart from one label a text
    ("separator", {"label_separator": "|"}, ["neg", "pos"]),
    ("vectors", {}, ["0", "1"]),  # 0/1 vectors: the positions are the labels
    ("columns", {"label_columns": ["neg", "pos"]}, ["neg", "pos"]),
])
def test_sets_of_labels_are_read_in_every_form_and_folded_by_label(form, options, names, tmp_path):
    data = load_labelled(str(_sets_table(tmp_path / "t.csv", form)), "text", "labels", None, None, 0, 4, **options)
    assert data.multi and data.metric == "micro-F1" and data.names == names and data.y.shape == (16, 2)
    assert data.test_y.shape == (8, 2) and data.k == 4
    for j in range(2):  # iterative stratification: each label's 8 texts, 2 in each fold
        assert np.bincount(data.folds[data.y[:, j] == 1], minlength=4).tolist() == [2, 2, 2, 2]
    train, held = data.fold(0)
    table = data.table(train, held)
    assert list(table.columns) == ["text", *names, "split"]  # one 0/1 column a label, whatever the file's form
    assert (table[names].to_numpy() == np.concatenate([data.y[train], data.y[held]])).all()
    written = pd.Series([json.dumps([names[j] for j in np.flatnonzero(r)]) for r in data.y])
    assert (data.decode(written) == data.y).all()  # predictions.csv's lists of names, back to 0/1 rows


@pytest.mark.parametrize("text, labels, columns", [
    ("text", ["text", "b"], ["_text", "b", "text", "split"]),  # a label named like the text column
    ("body", ["split", "b"], ["body", "b", "split", "_split"]),  # ... like the split column
])
def test_a_label_named_like_a_column_of_auto_tables_moves_that_column(text, labels, columns, tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({text: [f"w{i}" for i in range(8)],
                  "labels": [json.dumps([labels[i % 2]]) for i in range(8)]}).to_csv(path, index=False)
    data = load_labelled(str(path), text, "labels", None, None, 0, 2)
    assert list(data.table().columns) == columns


@pytest.mark.parametrize("flags, message", [
    ({"per_class": 2}, "--per-class spreads the N over the classes"),
    ({"labels": 2}, "needs at least 2 texts and one label"),
])
def test_sets_auto_cannot_use_are_refused_in_one_line(flags, message, tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": [f"w{i}" for i in range(6)], "labels": ["[]"] * 5 + ['["a"]']}).to_csv(path, index=False)
    with pytest.raises(WarmstartError, match=message):
        load_labelled(str(path), "text", "labels", flags.get("labels"), flags.get("per_class"), 0, 5)


def test_out_of_fold_probe_and_tfidf_predict_sets(tmp_path):
    data = load_labelled(str(_sets_table(tmp_path / "t.csv", "lists", 40)), "text", "labels", None, None, 0, 4)
    x = data.y + np.random.default_rng(0).normal(scale=0.3, size=data.y.shape)  # features that carry the labels
    probe, tfidf = oof_probe(x, data, 0), oof_tfidf(data, 0)
    assert probe.shape == tfidf.shape == data.y.shape
    assert data.score(probe) > 0.9 and data.score(tfidf) > 0.5  # the words say the labels


@pytest.mark.slow
def test_a_fold_of_sets_trains_task_multi_label_and_predicts_every_label(pretrained, tmp_path):
    """A fold's model knows every label (one 0/1 column a label), even one its training rows never show."""
    data = load_labelled(str(_sets_table(tmp_path / "t.csv", "lists")), "text", "labels", None, None, 0, 2)
    data.y[data.fold(0)[0], 0] = 0  # "neg" never among fold 0's training rows
    pred, metrics = fold_finetune(data, 0, tmp_path / "f0", str(pretrained),
                                  ["train.strategy=linear_probe", "train.precision=fp32"])
    assert pred.shape == (len(data.fold(0)[1]), 2) and not pred[:, 0].any()
    assert "micro_f1" in metrics and metrics["label_count"] == 2
    assert "tfidf_micro_f1" not in metrics  # auto scores its own TF-IDF out of fold; a fold fits none of its own


@pytest.mark.parametrize("written, same", [
    (None, False),  # not written yet
    ("", False),  # cut by a kill before its first byte (pandas: EmptyDataError): rewritten, not a crash
    ('text,label\n"a cut\n', False),  # cut inside a quoted cell (pandas: ParserError)
    ("text,label\nfine,1\n", False),  # another fold's rows
    ("text,label\nfine,1\nNA,0\n", True),  # the same rows, read as text ("NA" stays a text)
])
def test_a_folds_table_is_reused_only_when_it_reads_back_the_same(tmp_path, written, same):
    from warmstart.autopilot.crossval import same_table

    path = tmp_path / "labels.csv"
    if written is not None:
        path.write_text(written, encoding="utf-8")
    assert same_table(path, pd.DataFrame({"text": ["fine", "NA"], "label": [1, 0]})) is same


def test_the_final_score_says_which_test_rows_repeat_a_labelled_text():
    from warmstart.autopilot.crossval import Labelled, test_scores

    data = Labelled(["Good film", "bad film", "ok"], np.array([1, 0, 1]), ["neg", "pos"], np.zeros(3, dtype=int),
                    ["good  FILM", "new text", "another", "bad film"], np.array([1, 1, 0, 0]))
    assert data.test_repeats().tolist() == [True, False, False, True]
    got = test_scores(data, np.array([1, 0, 0, 0]), {"accuracy": 0.75})
    # the N's rarest class is 0 (1 label of 3): 2 test rows of it, the model found 2
    assert got == {"test_score": 0.75, "test_size": 4, "test_repeats": 2, "test_unseen_score": 0.5,
                   "test_rare": 2, "test_rare_found": 2}
    data.test_texts = ["new", "other", "third", "fourth"]
    assert test_scores(data, np.array([1, 1, 1, 0]), {"accuracy": 0.75}) == {
        "test_score": 0.75, "test_size": 4, "test_rare": 2, "test_rare_found": 1}
    assert test_scores(data, np.zeros(0, dtype=int), {}) == {"test_score": None, "test_size": 0}
