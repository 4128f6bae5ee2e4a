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


@pytest.mark.parametrize("keys, sizes", [
    ({}, [90, 0, 10]),                                  # nothing carved that no run reads: a tenth of the labels
    ({"validation_labels": 5}, [80, 10, 10]),           # an explicit dev set is carved, 10% by default
    ({"validation_size": 0.2}, [70, 20, 10]),
    ({"test_size": 0.0, "validation_size": 0.1}, [90, 10, 0]),
])
def test_seeded_split_without_split_column(tmp_path, keys, sizes):
    path = _table(tmp_path, text=[f"t{i}" for i in range(100)], label=[i % 2 for i in range(100)])
    cfg = LabelledDataConfig(path=path, split_column=None, **keys)
    a, _ = load_splits(cfg, seed=0)
    b, _ = load_splits(cfg, seed=0)
    assert [len(a[s]) for s in ("train", "validation", "test")] == sizes
    assert a["test"].equals(b["test"]) and a["train"].equals(b["train"])
    assert not set(a["test"]["text"]) & set(a["train"]["text"])
    assert not set(a["validation"]["text"]) & set(a["train"]["text"])


def test_the_test_split_does_not_move_with_the_validation_carve(tmp_path):
    path = _table(tmp_path, text=[f"t{i}" for i in range(100)], label=[i % 2 for i in range(100)])
    plain, _ = load_splits(LabelledDataConfig(path=path, split_column=None), seed=3)
    dev, _ = load_splits(LabelledDataConfig(path=path, split_column=None, validation_labels=5), seed=3)
    assert plain["test"].equals(dev["test"])
    assert set(plain["train"]["text"]) == set(dev["train"]["text"]) | set(dev["validation"]["text"])


@pytest.mark.parametrize("labels, message", [
    ([0, 1, 0, None], "row 4 has no value in label column 'label'"),
    ([None, 1, None, None], "rows 1, 3 and 4 have no value in label column 'label'"),
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


def test_an_hf_class_label_column_gives_its_names_in_its_order_and_unlabelled_rows_are_left_out(tmp_path, capsys):
    """As `run_glue` reads a dataset: id2label from the ClassLabel, ids kept; GLUE's test splits label -1."""
    import datasets

    feats = datasets.Features({"text": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["positive", "negative", "neutral"])})
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": list("abcd"), "label": [0, 1, 0, 1]}, features=feats),
        "test": datasets.Dataset.from_dict({"text": list("efg"), "label": [-1, 1, -1]}, features=feats),
    }).save_to_disk(str(tmp_path / "hf"))
    splits, names = load_splits(LabelledDataConfig(path=str(tmp_path / "hf")), seed=0)
    assert names == ["positive", "negative"]  # the dataset's order (not sorted), the class no row has left out
    assert list(splits["train"]["label"]) == [0, 1, 0, 1] and list(splits["test"]["text"]) == ["f"]
    assert "2 rows have no label (-1) (test: 2); they are left out" in capsys.readouterr().err


def test_label_columns_belong_to_multi_label(tmp_path):
    path = _table(tmp_path, text=list("ab"), toxic=[0, 1], obscene=[1, 1])
    with pytest.raises(WarmstartError, match="one 0/1 column per label .*task: multi_label"):
        load_splits(LabelledDataConfig(path=path, label_columns=["toxic", "obscene"]), seed=0)


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


@pytest.mark.parametrize("pooling", ["cls", "cls_token", "mean"])
def test_each_pooling_is_what_it_says(pooling):
    """cls: the HF classifier's pooler (and its logits are AutoModelForSequenceClassification's own); cls_token:
    the [CLS] state itself, as sentence-transformers' cls pooling; mean: over the unpadded tokens."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from warmstart.tasks.classification import logits_of, pooled

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32)).eval()
    batch = {"input_ids": torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]]),
             "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])}
    with torch.no_grad():
        out = model.bert(**batch)
        hidden = out.last_hidden_state
        want = {"cls": out.pooler_output, "cls_token": hidden[:, 0],
                "mean": torch.stack([hidden[0].mean(0), hidden[1, :3].mean(0)])}[pooling]
        assert torch.allclose(pooled(model, batch, pooling), want, atol=1e-6)
        assert not torch.allclose(want, {"cls": hidden[:, 0]}.get(pooling, out.pooler_output), atol=1e-3)
        logits = logits_of(model, batch, pooling)
        assert logits.shape == (2, 2)
        if pooling == "cls":
            assert torch.allclose(logits, model(**batch).logits, atol=1e-6)


def test_an_unknown_pooling_is_one_line():
    from warmstart.tasks.classification import pooled

    with pytest.raises(WarmstartError, match="use cls, cls_token or mean"):
        pooled(None, {}, "max")


@pytest.mark.parametrize("batch_size", [1, 2, 3, 16])
def test_inference_runs_longest_first_and_answers_in_the_rows_order(batch_size):
    """Each row's features are what the encoder says of it alone, in the order given, whatever the batch; a batch
    pads to rows of about its own length (fewer padded tokens than batching in the given order)."""
    import torch
    from transformers import BertConfig, BertModel

    from warmstart.engine.runtime import place
    from warmstart.tasks.classification import features, inference_batches, make_batches

    torch.manual_seed(0)
    model = place(BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32))).eval()
    lengths = [3, 9, 2, 7, 4, 9, 5]
    ids = [[2, *range(5, 5 + n - 2), 3] for n in lengths]
    batches = inference_batches((ids, None), batch_size, 0)
    assert [len(ids[int(i)]) for b in batches for i in b["rows"]] == sorted(lengths, reverse=True)
    got = features(model, batches, "mean", False)
    alone = np.concatenate([features(model, make_batches(([x], None), None, 1, 0), "mean", False) for x in ids])
    assert np.allclose(got, alone, atol=1e-5)
    padded = [sum(b["input_ids"].numel() for b in bs) for bs in (batches, make_batches((ids, None), None, batch_size, 0))]
    assert padded[0] <= padded[1]


@pytest.mark.parametrize("balance", ["weighted", "adjusted"])
def test_class_balance_weighs_the_loss_and_the_probe_and_reports_balanced_accuracy(
        balance, pretrained, sentiment_csv, tmp_path, monkeypatch):
    """`train.class_balance` on 40 / 8 training labels: weighted, every cross-entropy step weighs the classes by
    N / (C * n_c) = 0.6 and 3.0; adjusted, it reads logits + log(share) (log 5/6, log 1/6) unweighted; LP-FT's probe
    is fitted with the same balance; metrics.json gives the test rows' balanced accuracy (scikit-learn's, from the
    run's own predictions) beside accuracy and the majority rival."""
    import json

    import torch.nn.functional as F
    from sklearn.metrics import balanced_accuracy_score

    import warmstart.tasks.classification as classification
    from warmstart.config import FinetuneConfig, load_config
    from warmstart.tasks.registry import run_task

    table = pd.read_csv(sentiment_csv)
    train = table[table["split"] == "train"]
    skewed = pd.concat([train[train["label"] == 0][:40], train[train["label"] == 1][:8], table[table["split"] == "test"]])
    skewed.to_csv(path := tmp_path / "skewed.csv", index=False)
    weights, probes = [], []
    real_ce, real_probe = F.cross_entropy, classification.fit_logistic_cv
    shifts = []
    real_logits = classification.logits_of
    monkeypatch.setattr(F, "cross_entropy", lambda x, *a, **k: weights.append(k.get("weight")) or
                        shifts.append((x - seen[-1]).mean(0)) or real_ce(x, *a, **k))
    seen = []
    monkeypatch.setattr(classification, "logits_of", lambda *a: seen.append(real_logits(*a).float()) or seen[-1])
    monkeypatch.setattr(classification, "fit_logistic_cv",
                        lambda *a, **k: probes.append(k.get("balance")) or real_probe(*a, **k))
    cfg = load_config(FinetuneConfig, None, [f"output_dir={tmp_path / 'ft'}", f"init={pretrained}",
                                             f"data.path={path}", "train.strategy=lp_ft", "train.max_epochs=1",
                                             "train.precision=fp32", f"train.class_balance={balance}"])
    metrics = run_task(cfg)
    assert probes == [balance] and weights and shifts
    if balance == "weighted":
        assert weights[0].cpu().tolist() == pytest.approx([0.6, 3.0]) and shifts[0].abs().max() < 1e-6
    else:
        assert weights[0] is None and shifts[0].cpu().tolist() == pytest.approx(np.log([40 / 48, 8 / 48]), abs=1e-5)
    pred = pd.read_csv(tmp_path / "ft" / "predictions.csv")
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(pred["label"], pred["prediction"]),
                                                         abs=1e-4)
    assert {"accuracy", "macro_f1", "majority_accuracy"} <= set(metrics)
    saved = json.loads((tmp_path / "ft" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["balanced_accuracy"] == metrics["balanced_accuracy"]


def test_class_balance_is_refused_where_a_task_does_not_read_it(pretrained, tmp_path):
    from warmstart.config import FinetuneConfig, load_config
    from warmstart.tasks.registry import run_task

    cfg = load_config(FinetuneConfig, None, ["task=multi_label", f"init={pretrained}", f"data.path={tmp_path}",
                                             "train.class_balance=adjusted", f"output_dir={tmp_path / 'out'}"])
    with pytest.raises(WarmstartError, match="train.class_balance: adjusted .* task multi_label does not read it"):
        run_task(cfg)
    assert not (tmp_path / "out").exists()
