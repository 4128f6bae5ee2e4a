"""tasks/multi_label.py: a set of labels a text, from the table through every strategy to predict and the card."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
from card_snippet import run_card_snippet
from conftest import FILLER, NEGATIVE, POSITIVE, requires

from warmstart.config import FinetuneConfig, load_config
from warmstart.errors import WarmstartError
from warmstart.tasks.multi_label import label_sets, load_splits, multi_hot, set_metrics, tfidf_rival


@pytest.mark.parametrize("cells, separator, want", [
    ([["b", "a"], []], None, [("a", "b"), ()]),  # JSONL lists, an empty one: no label
    ([np.array(["x"]), np.array([], dtype=object)], None, [("x",), ()]),  # Parquet arrays
    (['["b", "a", "a"]', "[]"], None, [("a", "b"), ()]),  # JSON lists in CSV cells, duplicates dropped
    (["b|a", float("nan"), "c"], "|", [("a", "b"), (), ("c",)]),  # joined text; an empty cell
    ([" b ; a ", ""], ";", [("a", "b"), ()]),  # spaces around the separator
    ([[3, 1.0], [2]], None, [("1", "3"), ("2",)]),  # numbers as label names
    ([[0, 1, 0], [1, 0, 1]], None, [("1",), ("0", "2")]),  # 0/1 vectors (SetFit's, HF Trainer's): positions
    (["[0, 1, 0]", "[0, 0, 0]"], None, [("1",), ()]),  # ... as JSON in a CSV cell
    ([np.array([True, False]), np.array([False, False])], None, [("0",), ()]),  # ... Parquet booleans
    ([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]], None, [("1", "2"), ("0",)]),  # ... floats (BCE targets)
    ([[0, 1], [1]], None, [("0", "1"), ("1",)]),  # label ids 0 and 1, no repeat: not a vector
    ([[0, 1, 0], None, float("nan"), []], None, [("1",), (), (), ()]),  # vectors beside empty cells: no label
])
def test_label_cells_are_read_as_sets(cells, separator, want):
    assert label_sets(pd.Series(cells, dtype=object), separator, "t.csv", "labels") == want


@pytest.mark.parametrize("cells, separator, message", [
    (["sports", "politics"], None, "one label a row, not a set of labels"),
    (['["a", "b"'], None, "is not a JSON list"),  # brackets, but not JSON
    (['[a, b]'], None, "is not a JSON list"),
    ([[0, 1, 0], [1, 0, 0, 1]], None, "0/1 label vectors of different lengths \\(3 and 4\\)"),
])
def test_label_cells_that_are_not_sets_get_one_line(cells, separator, message):
    with pytest.raises(WarmstartError, match=message):
        label_sets(pd.Series(cells, dtype=object), separator, "t.csv", "labels")


def _table(path, n_train: int = 60, n_test: int = 20, seed: int = 0):
    """Texts whose words say their labels: positive words -> `pos`, negative -> `neg`, both, or neither."""
    rng = random.Random(seed)
    rows = []
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            labels = [["pos"], ["neg"], ["neg", "pos"], []][i % 4]
            words = (POSITIVE * 3 if "pos" in labels else []) + (NEGATIVE * 3 if "neg" in labels else [])
            text = " ".join(rng.choice(FILLER + words) for _ in range(8))
            rows.append({"id": f"{split}{i}", "text": text, "labels": labels, "split": split})
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    return path


def _cfg(path, pretrained, out, *overrides) -> FinetuneConfig:
    return load_config(FinetuneConfig, None, [
        "task=multi_label", f"output_dir={out}", f"init={pretrained}", f"data.path={path}", "data.label_column=labels",
        "train.pooling=mean", "train.precision=fp32", "train.max_steps=4", "train.batch_size=8", *overrides])


def test_splits_map_each_set_to_label_ids_and_refuse_a_label_unseen_in_training(tmp_path, pretrained):
    path = _table(tmp_path / "t.jsonl")
    splits, names, _ = load_splits(_cfg(path, pretrained, tmp_path / "o").data, 0)
    assert names == ["neg", "pos"] and len(splits["train"]) == 60 and len(splits["test"]) == 20
    assert list(splits["train"]["label"][:4]) == [(1,), (0,), (0, 1), ()]
    assert multi_hot(splits["train"][:4], 2).tolist() == [[0, 1], [1, 0], [1, 1], [0, 0]]
    rows = pd.read_json(path, lines=True)
    rows.loc[rows["split"] == "test", "labels"] = [["tvshow"]] * 20
    rows.to_json(tmp_path / "u.jsonl", orient="records", lines=True)
    with pytest.raises(WarmstartError, match="label 'tvshow' appears in the test split but never in train"):
        load_splits(_cfg(tmp_path / "u.jsonl", pretrained, tmp_path / "o").data, 0)


def _formats(path, root):
    """The `_table` rows written in each label format a user brings. -> {format: extra config keys}"""
    import datasets

    rows = pd.read_json(path, lines=True)
    hot = [[int("neg" in s), int("pos" in s), 0] for s in rows["labels"]]  # a third label no text has
    rows.assign(labels=hot).to_json(root / "vectors.jsonl", orient="records", lines=True)
    rows.assign(labels=[json.dumps(h) for h in hot]).to_csv(root / "vectors.csv", index=False)
    columns = rows.assign(neg=[h[0] for h in hot], pos=[h[1] for h in hot], meh=0).drop(columns="labels")
    columns.to_csv(root / "columns.csv", index=False)
    feats = datasets.Features({"text": datasets.Value("string"),
                               "labels": datasets.Sequence(datasets.ClassLabel(names=["pos", "neg", "meh"]))})
    datasets.DatasetDict({s: datasets.Dataset.from_dict(
        {"text": list(part["text"]), "labels": [[["pos", "neg", "meh"].index(n) for n in ls] for ls in part["labels"]]},
        features=feats) for s, part in rows.groupby("split")}).save_to_disk(str(root / "hf"))
    return {"lists": ([f"data.path={path}"], ["neg", "pos"]),
            "vectors": ([f"data.path={root / 'vectors.jsonl'}"], ["0", "1", "2"]),
            "vectors_csv": ([f"data.path={root / 'vectors.csv'}"], ["0", "1", "2"]),
            "columns": ([f"data.path={root / 'columns.csv'}", "data.label_columns=[neg, pos, meh]"],
                        ["neg", "pos", "meh"]),
            "class_label": ([f"data.path={root / 'hf'}"], ["pos", "neg", "meh"])}


def test_every_label_format_gives_the_same_sets_with_the_labels_it_declares(tmp_path, pretrained):
    """Lists, 0/1 vectors (SetFit's and HF Trainer's labels), one 0/1 column per label (Jigsaw) and an HF
    Sequence(ClassLabel): the same texts get the same labels, and a declared label keeps its place (output i is
    the user's label i) even when no text has it."""
    path = _table(tmp_path / "t.jsonl")
    want = None
    for name, (keys, names) in _formats(path, tmp_path).items():
        splits, got, form = load_splits(_cfg(path, pretrained, tmp_path / "o", *keys).data, 0)
        assert got == names, name
        assert form == {"vectors": "vectors", "vectors_csv": "vectors", "columns": "columns"}.get(name, "sets")
        sets = {s: [tuple(sorted(got[i] for i in ls)) for ls in splits[s]["label"]] for s in ("train", "test")}
        named = {s: [tuple(sorted({"0": "neg", "1": "pos"}.get(n, n) for n in ls)) for ls in v] for s, v in sets.items()}
        want = want or named
        assert named == want, name
    assert sum(map(len, want["train"])) == 60  # (each of the 60 rows: pos, neg, both, none)


@pytest.mark.slow
def test_a_run_on_0_1_columns_equals_the_run_on_lists(tmp_path, pretrained):
    from warmstart.tasks.registry import run_task

    path = _table(tmp_path / "t.jsonl")
    keys = _formats(path, tmp_path)["columns"][0]
    lists = run_task(_cfg(path, pretrained, tmp_path / "a", "train.strategy=linear_probe"))
    columns = run_task(_cfg(path, pretrained, tmp_path / "b", "train.strategy=linear_probe", *keys[1:],
                            keys[0]))
    for key in ("micro_f1", "exact_match", "tfidf_micro_f1"):
        assert columns[key] == lists[key], key
    assert columns["label_count"] == 3  # `meh` is a label of the model, never predicted
    config = json.loads((tmp_path / "b" / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {"0": "neg", "1": "pos", "2": "meh"}


@pytest.mark.slow
def test_a_model_trained_on_0_1_vectors_predicts_0_1_vectors(tmp_path, pretrained):
    """A SetFit / HF Trainer user's labels come back in their form: [0, 1, 0], not the position names ["1"]."""
    from warmstart.prediction import predict_rows
    from warmstart.tasks.registry import run_task

    path = _table(tmp_path / "t.jsonl")
    keys = _formats(path, tmp_path)["vectors"][0]
    run_task(_cfg(path, pretrained, tmp_path / "v", "train.strategy=linear_probe", *keys))
    saved = pd.read_csv(tmp_path / "v" / "predictions.csv")
    gold = pd.read_json(tmp_path / "vectors.jsonl", lines=True).query("split == 'test'")
    assert [json.loads(c) for c in saved["label"]] == [list(v) for v in gold["labels"]]
    assert all(len(v) == 3 and set(v) <= {0, 1} for v in map(json.loads, saved["prediction"]))
    gold.drop(columns=["labels", "split"]).to_csv(tmp_path / "in.csv", index=False)
    _, rows = predict_rows(str(tmp_path / "v"), str(tmp_path / "in.csv"), str(tmp_path / "out.jsonl"))
    assert [json.dumps(p) for p in rows["prediction"]] == list(saved["prediction"])
    assert "label i is position i" in (tmp_path / "v" / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("a, b", [
    ([1, 0, 0], [1, 1, 0]),  # CSV integers
    ([True, False, False], [True, True, False]),  # Parquet / HF booleans
    ([1.0, 0.0, 0.0], [1.0, 1.0, 0.0]),  # floats
    (["1", "0", "0"], ["1", "1", "0"]),  # text
])
def test_label_columns_read_each_spelling_of_0_and_1(a, b):
    from warmstart.tasks.multi_label import column_sets

    kept, sets = column_sets(pd.DataFrame({"text": list("xyz"), "a": a, "b": b}), ["a", "b"], "t.csv")
    assert sets == [("a", "b"), ("b",), ()] and len(kept) == 3


@pytest.mark.parametrize("columns, message", [
    ({"a": [0, 1, -1], "b": [0, 1, 0]}, "label column 'a' holds -1; data.label_columns need 0 or 1"),
    ({"a": [0, 1, "yes"], "b": [0, 1, 0]}, "label column 'a' holds 'yes'"),
])
def test_label_columns_hold_0_or_1(tmp_path, pretrained, columns, message):
    pd.DataFrame({"text": list("xyz"), **columns}).to_csv(tmp_path / "t.csv", index=False)
    cfg = _cfg(tmp_path / "t.csv", pretrained, tmp_path / "o", "data.label_columns=[a, b]", "data.test_size=0")
    with pytest.raises(WarmstartError, match=message):
        load_splits(cfg.data, 0)


def test_rows_of_minus_one_in_every_label_column_are_unlabelled_and_left_out(tmp_path, pretrained, capsys):
    pd.DataFrame({"text": list("wxyz"), "a": [0, 1, -1, 1], "b": [1, 1, -1, 0]}).to_csv(tmp_path / "t.csv", index=False)
    cfg = _cfg(tmp_path / "t.csv", pretrained, tmp_path / "o", "data.label_columns=[a, b]", "data.test_size=0")
    splits, names, _ = load_splits(cfg.data, 0)
    assert sorted(splits["train"]["text"]) == ["w", "x", "z"] and names == ["a", "b"]
    assert "1 rows have -1 in every label column (no label); they are left out" in capsys.readouterr().err


def test_a_classification_run_on_lists_of_labels_points_to_this_task(tmp_path, pretrained):
    from warmstart.tasks.registry import run_task

    path = _table(tmp_path / "t.jsonl")
    cfg = _cfg(path, pretrained, tmp_path / "o", "task=classification")
    with pytest.raises(WarmstartError, match="holds lists of labels.*use task: multi_label"):
        run_task(cfg)
    with pytest.raises(WarmstartError, match="data.balanced: .*remove it"):
        run_task(_cfg(path, pretrained, tmp_path / "o", "data.balanced=true"))


def test_the_set_metrics():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    p = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]])
    got = set_metrics(y, p)
    # micro: 2 true positives, 1 false positive, 1 false negative -> 2 / (2 + 0.5 * 2); macro over the 3 labels
    # used (label 2 is used by a wrong prediction): (1 + 0 + 0) / 3; exact: rows 0 only
    assert got == {"micro_f1": round(2 / 3, 4), "macro_f1": round(1 / 3, 4), "exact_match": round(1 / 3, 4)}


def test_one_vs_rest_probe_reads_each_label_and_keeps_a_never_seen_one_off():
    from warmstart.models.probe import fit_one_vs_rest

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6))
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0.5, np.zeros(80, bool)], 1).astype(np.float32)
    for x_val, y_val in ((x[60:], y[60:]), (None, None)):  # C on validation, or by k-fold inside the labels
        fit = fit_one_vs_rest(x[:60], y[:60], x_val, y_val, seed=0)
        pred = (x[60:] @ fit["weight"].T + fit["bias"]) > 0
        assert fit["weight"].shape == (3, 6) and (pred == y[60:]).mean() > 0.9
        assert not pred[:, 2].any() and not fit["weight"][2].any()  # never positive: never predicted
        assert 0.8 < fit["val_accuracy"] <= 1


def test_setfit_pairs_of_label_sets_are_similar_when_they_share_a_label():
    from warmstart.objectives.setfit import contrastive_pairs

    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    pairs = contrastive_pairs(y, num_iterations=3, seed=0)
    assert len(pairs) == 2 * 3 * 4
    for i, j, same in pairs:
        assert same == int(bool((y[i] & y[j]).any()))


def test_the_tfidf_rival_fits_on_the_labelled_rows_alone(tmp_path, pretrained):
    path = _table(tmp_path / "t.jsonl", n_train=80)
    splits, names, _ = load_splits(_cfg(path, pretrained, tmp_path / "o").data, 0)
    got = tfidf_rival(splits["train"], splits["test"], len(names), seed=0)
    assert got["tfidf_micro_f1"] > 0.8 and got["tfidf_C"] > 0
    # the test rows' own words decide nothing: the same rows relabelled score the same predictions worse
    flipped = splits["test"].assign(label=[tuple(1 - i for i in s) for s in splits["test"]["label"]])
    assert tfidf_rival(splits["train"], flipped, len(names), seed=0)["tfidf_micro_f1"] < 0.5


def test_the_tfidf_rival_chooses_a_decision_offset_as_the_probe_does_and_finds_a_rare_label():
    """A label on a few texts seldom reaches 0.5 after a regularised fit: at a plain 0.5 the rival predicted none
    (0.0 micro-F1 on WNUT-16's entity kinds), a rival no practitioner would stop at."""
    rng = random.Random(0)
    rows = []
    for i in range(200):
        rare = i % 12 == 0  # about 8% of the texts, each saying so with one of its words
        words = [rng.choice(FILLER) for _ in range(8)] + (["superb"] if rare else [])
        rows.append({"text": " ".join(words), "label": (0,) if rare else ()})
    table = pd.DataFrame(rows)
    got = tfidf_rival(table[:150], table[150:], 1, seed=0)
    assert got["tfidf_offset"] < 0 and got["tfidf_micro_f1"] > 0.5


@pytest.mark.parametrize("y, cap, want", [
    ([[1, 0], [0, 0], [0, 0], [0, 0]], 10, [3, 1]),  # 3 negatives a positive; a label no row has: 1
    ([[1, 1], [0, 1], [0, 1], [0, 0]], 10, [3, 1]),  # more positives than negatives: never below 1
    ([[1, 0]] + [[0, 0]] * 99, 10, [10, 1]),  # 99 negatives a positive: capped
    ([[1, 0]] + [[0, 0]] * 99, 1, [1, 1]),  # cap 1: unweighted BCE
])
def test_positive_weights_of_the_binary_cross_entropy(y, cap, want):
    from warmstart.tasks.multi_label import pos_weights

    assert pos_weights(np.array(y, dtype=np.float32), cap).tolist() == want


def test_fine_tuning_weighs_each_labels_positives(tmp_path, pretrained, monkeypatch):
    """Unweighted, full fine-tuning predicted few rare labels (WNUT-16's entity kinds: micro-F1 28.8 against 45.3)."""
    import torch.nn.functional as F

    from warmstart.tasks.registry import run_task

    seen, real = [], F.binary_cross_entropy_with_logits

    def spy(logits, target, *args, pos_weight=None, **kwargs):
        seen.append(None if pos_weight is None else pos_weight.tolist())
        return real(logits, target, *args, pos_weight=pos_weight, **kwargs)

    monkeypatch.setattr(F, "binary_cross_entropy_with_logits", spy)
    path = _table(tmp_path / "t.jsonl")  # each label on half of the 60 texts: 30 / 30 = 1
    rows = pd.read_json(path, lines=True)
    rows["labels"] = [["pos", "rare"] if i < 60 and i % 4 == 0 else ls  # `rare`: 15 of 60, 45 / 15 = 3
                      for i, ls in enumerate(rows["labels"])]
    rows.to_json(path, orient="records", lines=True)
    run_task(_cfg(path, pretrained, tmp_path / "o", "train.max_steps=2"))
    assert seen and seen[0] == [1.0, 1.0, 3.0]
    run_task(_cfg(path, pretrained, tmp_path / "p", "train.max_steps=2", "train.pos_weight_cap=2"))
    assert seen[-1] == [1.0, 1.0, 2.0]


@pytest.fixture(scope="module")
def multi_label_runs(pretrained, tmp_path_factory):
    from warmstart.tasks.registry import run_task

    root = tmp_path_factory.mktemp("multi_label")
    path = _table(root / "t.jsonl")
    runs = {}
    for strategy in ("full", "linear_probe", "setfit", "lp_ft"):
        extra = ["train.setfit.num_iterations=1", "train.setfit.batch_size=8"] if strategy == "setfit" else []
        out = root / strategy
        runs[strategy] = (out, run_task(_cfg(path, pretrained, out, f"train.strategy={strategy}", *extra)))
    return path, runs


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["full", "linear_probe", "setfit", "lp_ft"])
def test_every_strategy_runs_and_reports_set_metrics_beside_its_rival(multi_label_runs, strategy):
    out, metrics = multi_label_runs[1][strategy]
    for key in ("micro_f1", "macro_f1", "exact_match", "tfidf_micro_f1"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["label_count"] == 2 and metrics["test_size"] == 20 and metrics["train_labels"] == 60
    assert not any("val_accuracy" in k for k in metrics)  # a probe's score is micro-F1 here, and named so
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["problem_type"] == "multi_label_classification" and config["id2label"] == {"0": "neg", "1": "pos"}
    written = pd.read_csv(out / "predictions.csv")
    assert json.loads(written["label"][3]) == [] and json.loads(written["label"][2]) == ["neg", "pos"]
    assert "TF-IDF + one logistic regression per label" in (out / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["freeze", "gradual_unfreeze", "llrd", "l2sp", "lora"])
def test_the_other_strategies_train_a_multi_label_head(tmp_path, pretrained, strategy):
    from warmstart.tasks.registry import run_task

    path = _table(tmp_path / "t.jsonl")
    metrics = run_task(_cfg(path, pretrained, tmp_path / "o", f"train.strategy={strategy}", "train.max_steps=3"))
    assert metrics["strategy"] == strategy and metrics["steps"] == 3 and 0 <= metrics["micro_f1"] <= 1
    config = json.loads((tmp_path / "o" / "config.json").read_text(encoding="utf-8"))
    assert config["problem_type"] == "multi_label_classification"


@pytest.mark.slow
def test_predict_gives_lists_of_labels_as_the_run_scored_them_and_the_card_agrees(multi_label_runs, tmp_path):
    import torch

    from warmstart.prediction import predict_rows

    path, runs = multi_label_runs
    out, _ = runs["linear_probe"]
    test = pd.read_json(path, lines=True).query("split == 'test'").drop(columns=["labels", "split"])
    test.to_csv(tmp_path / "in.csv", index=False)
    written, rows = predict_rows(str(out), str(tmp_path / "in.csv"), str(tmp_path / "out.csv"))
    want = pd.read_csv(out / "predictions.csv")
    assert list(rows["id"]) == list(test["id"])  # the input's own columns stay
    assert [json.dumps(p) for p in rows["prediction"]] == list(want["prediction"])
    assert np.allclose(rows[["prob_neg", "prob_pos"]], want[["prob_neg", "prob_pos"]], atol=1e-4)
    assert pd.read_csv(written)["prediction"][0].startswith("[")  # CSV: the list as JSON text
    card = (out / "README.md").read_text(encoding="utf-8")
    got = run_card_snippet(card, out, list(test["text"][:5]))
    assert torch.allclose(got, torch.as_tensor(want[["prob_neg", "prob_pos"]][:5].to_numpy(), dtype=got.dtype),
                          atol=1e-4)


@pytest.mark.slow
def test_the_tfidf_baseline_of_a_study_is_the_runs_own_rival(multi_label_runs, pretrained):
    from warmstart.studies.baselines import run_baseline

    path, runs = multi_label_runs
    out, metrics = runs["full"]
    got = run_baseline(_cfg(path, pretrained, out.parent / "b"))
    assert got["baseline"] == "tfidf_ovr" and got["micro_f1"] == metrics["tfidf_micro_f1"]


@pytest.mark.slow
def test_a_cls_pooled_folder_is_read_by_the_transformers_pipeline_as_predict_reads_it(pretrained, tmp_path):
    """The card says `pipeline("text-classification", top_k=None)` gives the same: HF applies a sigmoid per label
    to a folder whose `problem_type` is multi-label."""
    from transformers import pipeline

    from warmstart.prediction import predict_rows
    from warmstart.tasks.registry import run_task

    path = _table(tmp_path / "t.jsonl")
    run_task(_cfg(path, pretrained, tmp_path / "run", "train.pooling=cls"))
    texts = ["good great lovely film", "a dull and awful plot", "the cast"]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    _, rows = predict_rows(str(tmp_path / "run"), str(tmp_path / "in.csv"), str(tmp_path / "out.jsonl"))
    scored = pipeline("text-classification", model=str(tmp_path / "run"), top_k=None)(texts)
    for row, labels in zip(rows.to_dict("records"), scored, strict=True):
        assert {d["label"]: round(d["score"], 4) for d in labels} == pytest.approx(
            {"neg": round(row["prob_neg"], 4), "pos": round(row["prob_pos"], 4)}, abs=2e-4)
    assert "top_k=None" in (tmp_path / "run" / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_study_compares_an_encoder_with_the_tfidf_rival_on_micro_f1(pretrained, tmp_path, monkeypatch):
    import yaml

    from warmstart.cli import main

    monkeypatch.chdir(tmp_path)
    path = _table(tmp_path / "t.jsonl")
    (tmp_path / "ml.yaml").write_text(yaml.safe_dump({
        "task": "multi_label", "data": {"path": str(path), "label_column": "labels"},
        "train": {"pooling": "mean", "precision": "fp32", "max_steps": 2, "batch_size": 8}}))
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({
        "output_dir": "study", "inits": [str(pretrained)], "seeds": 1, "rank": False,
        "tasks": {"tags": {"recipe": "ml.yaml", "labels": [20, 40]}}}))
    assert main(["study", "study.yaml"]) == 0
    table = pd.read_csv(tmp_path / "study" / "results.csv")
    assert set(table["metric"]) == {"micro_f1"} and "tfidf_ovr" in set(table["init"])
    assert sorted(table.loc[table["init"] == "tfidf_ovr", "labels"]) == [20, 40]


@pytest.mark.slow
@requires("setfit", "setfit")
def test_the_setfit_library_rival_runs_one_vs_rest_on_the_same_labels(pretrained, tmp_path, monkeypatch):
    """What a SetFit user runs on sets of labels: `SetFitModel(..., multi_target_strategy="one-vs-rest")` on the
    run's N texts, scored as the runs are."""
    from warmstart.studies.baselines import run_baseline

    monkeypatch.setattr("warmstart.models.common.minilm_folder", lambda: pretrained)  # a tiny body, not MiniLM
    seen = {}
    real = __import__("warmstart.models.sentence", fromlist=["load_setfit_model"]).load_setfit_model

    def spy(folder, strategy=None, head_params=None):
        seen["strategy"] = strategy
        return real(folder, strategy, head_params)

    monkeypatch.setattr("warmstart.models.sentence.load_setfit_model", spy)
    monkeypatch.chdir(tmp_path)
    path = _table(tmp_path / "t.jsonl")
    cfg = _cfg(path, pretrained, tmp_path / "r", "data.labels=16", "train.setfit.num_iterations=1")
    got = run_baseline(cfg, "setfit")
    assert seen["strategy"] == "one-vs-rest" and got["train_labels"] == 16
    assert set(got) >= {"micro_f1", "macro_f1", "exact_match"} and 0 <= got["micro_f1"] <= 1


def test_the_probe_chooses_one_decision_offset_inside_the_labels_and_folds_it_into_the_bias(monkeypatch):
    """A rare label seldom reaches 0.5 after a regularised fit: the offset chosen out of fold lowers the bar, and
    lives in the bias, so the head's own 0.5 rule (predict, HF's pipeline) applies it."""
    from warmstart.models import probe

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4))
    y = np.stack([x[:, 0] > 1.6, x[:, 1] > 1.6], 1).astype(np.float32)  # each on ~5% of the rows
    fit = probe.fit_one_vs_rest(x, y, None, None, seed=0, cs=(0.001,))
    assert fit["offset"] < 0
    monkeypatch.setattr(probe, "OFFSETS", np.array([0.0]))
    plain = probe.fit_one_vs_rest(x, y, None, None, seed=0, cs=(0.001,))
    assert plain["offset"] == 0 and np.allclose(fit["bias"], plain["bias"] - fit["offset"])
    assert fit["val_accuracy"] > plain["val_accuracy"]  # the out-of-fold micro-F1 it was chosen on
    assert ((x @ fit["weight"].T + fit["bias"])[:, 0] > 0).sum() > ((x @ plain["weight"].T + plain["bias"])[:, 0] > 0).sum()
