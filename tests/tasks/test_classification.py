import numpy as np
import pandas as pd
import pytest

from warmstart.config import LabelledDataConfig
from warmstart.errors import WarmstartError
from warmstart.tasks.classification import load_splits, subsample


def _table(tmp_path, **columns) -> str:
    path = tmp_path / "t.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    return str(path)


def test_split_column_and_label_mapping(tmp_path):
    path = _table(tmp_path, text=list("abcdef"), label=["pos", "neg", "pos", "neg", "pos", "neg"],
                  split=["train", "train", "train", "dev", "test", "test"])
    splits, names = load_splits(LabelledDataConfig(path=path), seed=0)
    assert names == ["neg", "pos"]
    assert list(splits["train"]["label"]) == [1, 0, 1]
    assert list(splits["validation"]["text"]) == ["d"] and list(splits["test"]["label"]) == [1, 0]


def test_seeded_split_without_split_column(tmp_path):
    path = _table(tmp_path, text=[f"t{i}" for i in range(100)], label=[i % 2 for i in range(100)])
    cfg = LabelledDataConfig(path=path, split_column=None)
    a, _ = load_splits(cfg, seed=0)
    b, _ = load_splits(cfg, seed=0)
    assert [len(a[s]) for s in ("train", "validation", "test")] == [80, 10, 10]
    assert a["test"].equals(b["test"])
    assert not set(a["test"]["text"]) & set(a["train"]["text"])


@pytest.mark.parametrize("labels, message", [
    ([0, 1, 0, None], "1 rows have no value in label column 'label'"),
    ([0.5, 1.0, 0.0, 1.0], "non-integer floats"),
])
def test_bad_labels(tmp_path, labels, message):
    path = _table(tmp_path, text=list("abcd"), label=labels, split=["train"] * 4)
    with pytest.raises(WarmstartError, match=message):
        load_splits(LabelledDataConfig(path=path), seed=0)


def test_integral_float_labels_are_accepted(tmp_path):
    path = _table(tmp_path, text=list("abcd"), label=[0.0, 1.0, 0.0, 1.0], split=["train"] * 2 + ["test"] * 2)
    _, names = load_splits(LabelledDataConfig(path=path), seed=0)
    assert names == [0, 1]


def test_test_label_absent_from_training(tmp_path):
    path = _table(tmp_path, text=list("abcd"), label=["x", "y", "x", "z"], split=["train", "train", "test", "test"])
    with pytest.raises(WarmstartError, match="label 'z' appears in the test split but never in train"):
        load_splits(LabelledDataConfig(path=path), seed=0)


def test_missing_label_column(tmp_path):
    path = _table(tmp_path, text=list("ab"), sentiment=[0, 1])
    with pytest.raises(WarmstartError, match="no column 'label' \\(columns: text, sentiment\\)"):
        load_splits(LabelledDataConfig(path=path), seed=0)


def test_stratified_seeded_subsample():
    df = pd.DataFrame({"text": [str(i) for i in range(100)], "label": [0] * 70 + [1] * 30})
    a, b = subsample(df, 20, seed=3), subsample(df, 20, seed=3)
    assert a.equals(b) and len(a) == 20
    assert np.bincount(a["label"]).tolist() == [14, 6]
    assert not subsample(df, 20, seed=4).equals(a)
    assert len(subsample(df, None, 0)) == 100 and len(subsample(df, 1000, 0)) == 100
    with pytest.raises(WarmstartError, match="fewer than the 2 classes"):
        subsample(df, 1, 0)
