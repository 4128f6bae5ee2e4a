"""tasks/labelled_table.py: test rows that repeat a labelled text are counted and scored apart."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from warmstart.tasks.labelled_table import unseen_scores


@pytest.mark.parametrize("test_texts, pairs, want", [
    (["new a", "new b", "new c", "new d"], False, {}),
    (["Seen  ONE", "new b", "new c", "seen two"], False,
     {"test_repeats": 2, "accuracy_unseen": 0.5}),  # rows 1-2: one right of two
    (["seen one", "seen two", "SEEN ONE", "seen two"], False, {"test_repeats": 4, "accuracy_unseen": None}),
    (["seen one", "new b", "new c", "new d"], True, {}),  # a pair repeats only when both sides do
])
def test_repeated_test_rows_are_counted_and_the_rest_scored_alone(test_texts, pairs, want, capsys):
    labelled = pd.DataFrame({"text": ["seen one", "seen two", "seen three"], "label": [0, 1, 0]})
    test = pd.DataFrame({"text": test_texts, "label": [0, 1, 0, 1]})
    if pairs:
        labelled["text_pair"], test["text_pair"] = ["x", "y", "z"], ["other", "y", "z", "w"]
    got = unseen_scores(labelled, test, accuracy_score, test["label"].to_numpy(), np.array([0, 1, 1, 1]),
                        "accuracy")
    assert got == want
    err = capsys.readouterr().err
    assert (f"{want['test_repeats']} of the 4 test rows repeat a text" in err) if want else err == ""
    if want:
        assert ("its accuracy on the other 2: 0.5" if want["accuracy_unseen"] else "none is new") in err


def test_quiet_leaves_the_note_to_the_caller(capsys):
    labelled = pd.DataFrame({"text": ["a"], "label": [0]})
    got = unseen_scores(labelled, labelled, accuracy_score, np.array([0]), np.array([0]), "accuracy", quiet=True)
    assert got == {"test_repeats": 1, "accuracy_unseen": None} and capsys.readouterr().err == ""


@pytest.mark.parametrize("mask, said", [
    ([0, 0, 1], "row 3"), ([1, 0, 1, 1], "rows 1, 3 and 4"),
    ([1] * 8, "rows 1, 2, 3, 4, 5 and 3 more"), ([1] * 6, "rows 1, 2, 3, 4, 5 and 6"),
])
def test_row_numbers_count_from_the_first_row_under_the_header(mask, said):
    from warmstart.tasks.labelled_table import row_numbers

    assert row_numbers(pd.Series(mask, dtype=bool)) == said


def test_rows_without_text_are_left_out_with_a_note(tmp_path, capsys):
    """An empty cell (or spaces) carries nothing to learn from; the row is left out, said once, and a table of
    such rows only is refused in one line."""
    from warmstart.config import LabelledDataConfig
    from warmstart.errors import WarmstartError
    from warmstart.tasks.classification import load_splits
    from warmstart.tasks.labelled_table import read_labelled

    path = tmp_path / "t.csv"
    path.write_text("text,label\ngood,1\n,0\n   ,1\nbad,0\nfine,\n", encoding="utf-8")
    df, _ = read_labelled(LabelledDataConfig(path=str(path)))
    assert df["text"].tolist() == ["good", "bad", "fine"] and df["label"].tolist()[:2] == [1, 0]
    assert "rows 2 and 3 have no text in column 'text'; left out (2 of 5 rows)" in capsys.readouterr().err
    with pytest.raises(WarmstartError, match="row 5 has no value in label column"):  # the file's row, not the 3rd
        load_splits(LabelledDataConfig(path=str(path), split_column=None), seed=0)
    path.write_text("text,label\n,1\n  ,0\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match="no row has text in column 'text'"):
        read_labelled(LabelledDataConfig(path=str(path)))


@pytest.mark.parametrize("overrides, said", [
    ({"text_column": "review"}, r"data.text_column=NAME \(warmstart auto: --text-column NAME\)"),
    ({"label_column": "sentiment"}, r"data.label_column=NAME \(warmstart auto: --label-column NAME\)"),
    ({"label_columns": ["a", "b"]}, r"no column 'a'.*data.label_columns=\[A, B\] \(warmstart auto: --label-columns"),
    ({"text_pair_column": "hypothesis"}, r"data.text_pair_column=NAME$"),
])
def test_a_missing_column_says_which_key_or_flag_names_it(overrides, said, tmp_path):
    from warmstart.config import LabelledDataConfig
    from warmstart.errors import WarmstartError
    from warmstart.tasks.labelled_table import read_labelled

    path = tmp_path / "t.csv"
    path.write_text("text,label\ngood,1\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match=said):
        read_labelled(LabelledDataConfig(path=str(path), **overrides))


@pytest.mark.parametrize("texts, labels, want", [
    (["a", "b", "c"], [0, 1, 0], 0),  # nothing repeats
    (["a", "A ", "b"], [0, 0, 1], 0),  # a copy with the same label
    (["a", "A ", "b", "b", "c"], [0, 1, 1, 0, 0], 2),
    (["a", "a", "b"], [["x"], ["x", "y"], []], 1),  # sets of labels differ
    (["a", "a", "b"], [["y", "x"], ["x", "y"], []], 0),  # the same set, in another order
])
def test_texts_labelled_differently_in_different_rows_are_counted_and_named(texts, labels, want, capsys):
    from warmstart.tasks import labelled_table

    labelled_table._TOLD.clear()
    assert labelled_table.note_conflicts(pd.DataFrame({"text": texts, "label": labels}), "t.csv") == want
    err = capsys.readouterr().err
    assert (f"t.csv: {want} text(s) among the {len(texts)} labels appear in several rows with different labels (e.g. "
            f"'{texts[0]}')" in err) if want else err == ""


@pytest.mark.parametrize("inside_auto", [False, True])
def test_a_fine_tuning_run_notes_conflicts_unless_auto_runs_it(inside_auto, tmp_path, capsys):
    """auto notes the conflicts of the user's file once; its folds' own tables (fine-tuning runs inside
    `scored_by_caller`) stay quiet."""
    import contextlib

    from warmstart.config import load_config
    from warmstart.tasks import labelled_table
    from warmstart.tasks.classification import load_splits
    from warmstart.tasks.protocol import scored_by_caller
    from warmstart.tasks.registry import get

    path = tmp_path / "t.csv"
    pd.DataFrame({"text": ["a b", "a b", "c d", "e f", "g h", "i j"], "label": [0, 1, 0, 1, 0, 1]}).to_csv(path,
                                                                                                      index=False)
    cfg = load_config(get("classification").config, None, [f"data.path={path}", "data.test_size=0"])
    labelled_table._TOLD.clear()
    with scored_by_caller() if inside_auto else contextlib.nullcontext():
        labelled_table.sample_splits(load_splits(cfg.data, 0)[0], cfg)
    assert ("1 text(s) among the 6 labels appear in several rows" in capsys.readouterr().err) != inside_auto
