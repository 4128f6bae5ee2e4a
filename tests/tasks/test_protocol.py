"""'N labels' means N labels (issue 20): with `data.labels: N` and no dev set, no row outside the N reaches
training or model selection, for every strategy and for images; the selection happens inside the N and the final
model is trained again on all of them; an explicit dev set is the user's choice and reported as such."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import warmstart
import warmstart.tasks.classification as classification
import warmstart.tasks.image_classification as image_classification
import warmstart.tasks.multi_label as multi_label
import warmstart.tasks.response_selection as response_selection
import warmstart.tasks.summarization as summarization
import warmstart.tasks.token_classification as token_classification
from warmstart.config import STRATEGIES, load_config
from warmstart.data.sample import holdout
from warmstart.tasks import protocol
from warmstart.tasks.registry import get, run_task


@pytest.fixture
def spy(monkeypatch):
    """Every set a run trains or chooses on, and every text it tokenises."""
    seen = {"phases": [], "texts": set()}
    real_select, real_encode = protocol.select_then_refit, classification.encode

    def select(sample, strategy, train_once, out, *args, **kwargs):
        def recording(train, val, steps, phase):
            seen["phases"].append((phase, train, val))
            return train_once(train, val, steps, phase)
        seen["sample"] = sample
        return real_select(sample, strategy, recording, out, *args, **kwargs)

    def encode(tokenizer, df, max_length):
        seen["texts"] |= set(df["text"])
        return real_encode(tokenizer, df, max_length)

    for module in (classification, image_classification, token_classification, summarization, response_selection):
        monkeypatch.setattr(module, "select_then_refit", select)
    monkeypatch.setattr(classification, "encode", encode)
    return seen


def _table(path) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"text": f"row{i} {'good great' if i % 2 else 'bad dull'} film {rng.integers(1000)}", "label": i % 2,
             "split": s} for s, n in (("train", 120), ("validation", 40), ("test", 30)) for i in range(n)]
    rows = [{**r, "text": f"{r['split']}-{k} {r['text']}"} for k, r in enumerate(rows)]
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False)
    return df


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_row_outside_the_n_labels_reaches_training_or_selection(pretrained, tmp_path, spy, strategy):
    table = _table(tmp_path / "t.csv")
    cfg = load_config(get("classification").config, None, [
        f"init={pretrained}", f"data.path={tmp_path / 't.csv'}", f"output_dir={tmp_path / 'run'}", "data.labels=20",
        f"train.strategy={strategy}", "train.max_steps=4", "train.eval_every=2", "train.batch_size=8",
        "train.precision=fp32", "train.lora.r=2", "train.pooling=mean", "train.setfit.num_iterations=1",
        "train.patience=3"])  # early stopping: the held-out share and the refit are what is checked
    metrics = run_task(cfg)
    n = set(spy["sample"].labelled["text"])
    assert len(n) == 20 and n <= set(table.query("split == 'train'")["text"])
    test = set(table.query("split == 'test'")["text"])
    assert spy["texts"] <= n | test, "a row outside the N labels (and the test split) was tokenised"
    for phase, train, val in spy["phases"]:
        used = set(train["text"]) | (set(val["text"]) if val is not None else set())
        assert used <= n, phase
        if val is not None:
            assert not set(train["text"]) & set(val["text"])  # chosen on rows it did not train on
    assert spy["phases"][-1][0] == "refit" and set(spy["phases"][-1][1]["text"]) == n  # the final model: all N
    assert (metrics["train_labels"], metrics["validation_labels"]) == (20, 0)
    assert metrics["protocol"].startswith("20 labels")
    if strategy not in protocol.ONE_FIT:  # the refit was checked on the held-out share (wired to a real score)
        assert 0 <= metrics["refit_check"] <= 1


def test_an_explicit_dev_set_is_reported_and_not_refitted(pretrained, tmp_path, spy):
    table = _table(tmp_path / "t.csv")
    cfg = load_config(get("classification").config, None, [
        f"init={pretrained}", f"data.path={tmp_path / 't.csv'}", f"output_dir={tmp_path / 'run'}", "data.labels=20",
        "data.validation_labels=10", "train.max_steps=4", "train.eval_every=2", "train.precision=fp32"])
    metrics = run_task(cfg)
    dev = set(spy["phases"][0][2]["text"])
    assert len(dev) == 10 and dev <= set(table.query("split == 'validation'")["text"])
    assert [p for p, _, _ in spy["phases"]] == ["select"]
    assert (metrics["train_labels"], metrics["validation_labels"]) == (20, 10)
    assert metrics["protocol"] == "20 train + 10 validation labels (an explicit dev set)"


@pytest.mark.parametrize("strategy", ["full", "lp_ft", "lora"])
def test_patience_0_trains_the_whole_budget_on_all_n_and_holds_nothing_out(pretrained, tmp_path, spy, strategy):
    """`train.patience: 0` is a fixed budget (HF Trainer's and SetFit's default): nothing to choose, so nothing is
    held out; one fit on all N runs every step of the budget (benchmarks/results/selection_rule.md: at N=100 a
    fixed budget beat stopping on 20 held-out labels)."""
    _table(tmp_path / "t.csv")
    cfg = load_config(get("classification").config, None, [
        f"init={pretrained}", f"data.path={tmp_path / 't.csv'}", f"output_dir={tmp_path / 'run'}", "data.labels=20",
        f"train.strategy={strategy}", "train.max_steps=5", "train.batch_size=8", "train.precision=fp32",
        "train.patience=0", "train.lora.r=2", "train.pooling=mean"])
    metrics = run_task(cfg)
    assert [(p, len(t), v) for p, t, v in spy["phases"]] == [("refit", 20, None)]
    assert set(spy["phases"][0][1]["text"]) == set(spy["sample"].labelled["text"])
    assert metrics["steps"] == 5 and (metrics["train_labels"], metrics["held_out_labels"]) == (20, 0)
    assert "whole budget" in metrics["protocol"] and "refit_check" not in metrics


@pytest.mark.parametrize("task", ["token_classification", "summarization", "response_selection",
                                  "image_classification"])
def test_every_task_hands_patience_0_to_the_protocol(task, pretrained, shapes_idx, tmp_path, spy):
    from tests.tasks.test_response_selection import write_dialogue
    from tests.tasks.test_summarization import write_documents
    from tests.tasks.test_token_classification import write_ner_folder

    train = {"max_steps": 3, "precision": "fp32", "patience": 0, "batch_size": 4}
    if task == "image_classification":
        metrics = warmstart.finetune(
            task=task, output_dir=str(tmp_path / "run"), init="scratch", train=train,
            data={"sources": [str(shapes_idx / "train-images-idx3-ubyte.gz")], "labels_per_class": 6,
                  "test_sources": [str(shapes_idx / "t10k-images-idx3-ubyte.gz")]},
            model={"image_size": 16, "widths": [8], "depths": [1]}).metrics
    else:
        data = {"token_classification": lambda p: write_ner_folder(p) or p,
                "summarization": lambda p: write_documents(p, 30, 0) or p,
                "response_selection": lambda p: write_dialogue(p) or p}[task](
            tmp_path / ("ner" if task == "token_classification" else f"{task}.jsonl"))
        metrics = warmstart.finetune(task=task, output_dir=str(tmp_path / "run"), init=str(pretrained),
                                     data={"path": str(data), "candidates": 4},
                                     train={**train, "negatives": 3, "max_length": 32}).metrics
    assert [p for p, _, v in spy["phases"] if v is None] == ["refit"] and len(spy["phases"]) == 1
    assert metrics["held_out_labels"] == 0 and metrics["steps"] == 3


def test_patience_0_with_a_dev_set_runs_the_whole_budget_and_keeps_its_best(pretrained, tmp_path, spy):
    _table(tmp_path / "t.csv")
    cfg = load_config(get("classification").config, None, [
        f"init={pretrained}", f"data.path={tmp_path / 't.csv'}", f"output_dir={tmp_path / 'run'}", "data.labels=20",
        "data.validation_labels=10", "train.max_steps=6", "train.eval_every=1", "train.batch_size=8",
        "train.precision=fp32", "train.patience=0"])
    metrics = run_task(cfg)
    assert [p for p, _, _ in spy["phases"]] == ["select"] and len(spy["phases"][0][2]) == 10
    assert metrics["steps"] == 6 and 0 <= metrics["best_step"] <= 6  # never stopped early; its best kept
    assert metrics["protocol"] == "20 train + 10 validation labels (an explicit dev set)"


def test_images_choose_inside_their_labels(shapes_idx, tmp_path, spy):
    from warmstart.data.images import load_images

    data = load_images([str(shapes_idx / "train-images-idx3-ubyte.gz")])
    cfg = load_config(get("image_classification").config, None, [
        "init=scratch", f"data.sources=[{shapes_idx / 'train-images-idx3-ubyte.gz'}]",
        f"data.test_sources=[{shapes_idx / 't10k-images-idx3-ubyte.gz'}]", f"output_dir={tmp_path / 'run'}",
        "data.labels_per_class=6", "model.image_size=16", "model.widths=[8]", "model.depths=[1]",
        "train.strategy=lp_ft", "train.max_steps=4", "train.eval_every=2", "train.batch_size=6", "train.precision=fp32"])
    metrics = run_task(cfg)

    def keys(images: torch.Tensor) -> set[bytes]:
        return {bytes(x.numpy().tobytes()) for x in images}

    n = keys(spy["sample"].labelled.images)
    assert len(n) == 18 and n <= keys(data.images)
    for phase, train, val in spy["phases"]:
        assert keys(train.images) | (keys(val.images) if val is not None else set()) <= n, phase
    assert keys(spy["phases"][-1][1].images) == n and metrics["train_labels"] == 18
    assert 0 <= metrics["refit_check"] <= 1


def test_the_held_out_share_is_stratified_and_inside_the_sample():
    classes = np.array([0] * 12 + [1] * 8)
    kept, held = holdout(20, 0.2, 0, classes)
    assert len(held) == 4 and not set(kept) & set(held) and set(kept) | set(held) == set(range(20))
    assert set(classes[held]) == {0, 1}
    assert holdout(1, 0.2, 0)[1].size == 0  # one label: nothing to hold out


@pytest.mark.parametrize("groups, fraction, seed, want_out", [
    (list("aabbccddee"), 0.2, 0, 2),  # whole groups: two items, one group
    (list("aaaabbcdef"), 0.2, 1, None),  # a large group may overshoot; never half a group
    (list("abcdefghij"), 0.3, 2, 3),  # singletons: as without groups
    (list("aaaaaaaaaa"), 0.2, 0, 0),  # one group: nothing can be held out without a sibling kept
    (list("aaaaaaaaab"), 0.2, 3, None),  # two groups: at least one stays kept
])
def test_grouped_holdout_keeps_every_group_on_one_side(groups, fraction, seed, want_out):
    kept, held = holdout(len(groups), fraction, seed, groups=groups)
    assert sorted([*kept, *held]) == list(range(len(groups)))
    assert not {groups[i] for i in kept} & {groups[i] for i in held}
    assert len(kept) > 0
    if want_out is not None:
        assert len(held) == want_out
    if len(set(groups)) > 1:  # enough held out, unless only the last group is left to keep
        assert len(held) >= round(fraction * len(groups)) or len({groups[i] for i in kept}) == 1
    again = holdout(len(groups), fraction, seed, groups=groups)
    assert np.array_equal(again[1], held)  # seeded


def test_grouped_holdout_varies_with_the_seed():
    groups = [i // 2 for i in range(40)]
    assert len({tuple(holdout(40, 0.2, s, groups=groups)[1]) for s in range(5)}) > 1


@pytest.mark.parametrize("refit_score, resumed, kept, calls", [
    (0.9, False, "refit", ["select", "refit"]),  # the refit fits the held-out rows it now trains on: kept
    (0.8, False, "refit", ["select", "refit"]),  # as well as the selection scored them unseen: kept
    (0.77, False, "refit", ["select", "refit"]),  # within 5% of the selection's (optimistic) best: kept
    (0.5, False, "select", ["select", "refit"]),  # below (diverged): the selection's model, not trained again
    (0.5, True, "select", ["refit", "select"]),  # resumed after the selection: its model is trained again
    (0.9, True, "refit", ["refit"]),
])
def test_a_refit_that_scores_below_the_selection_on_its_own_labels_is_rejected(
        tmp_path, monkeypatch, refit_score, resumed, kept, calls):
    from warmstart.data.sample import Sample
    from warmstart.tasks.resume import CURRENT_RUN, RunContext

    sample = Sample(labelled=list(range(10)), train=list(range(8)), validation=[8, 9], test=[], refit=True)
    selection = {"val_accuracy": 0.8, "best_step": 4, "steps": 6}
    monkeypatch.setattr(protocol, "save_selection", lambda *a: None)
    monkeypatch.setattr(protocol, "load_selection", lambda out: dict(selection))
    phases = []

    def train_once(train, val, steps, phase):
        phases.append(phase)
        return phase, dict(selection) if phase == "select" else {"steps": steps}

    def score(model, rows):
        assert rows == [8, 9]  # judged on the held-out share, which the refit trained on
        return refit_score if model == "refit" else 0.8

    token = CURRENT_RUN.set(RunContext(cfg=None, resume=resumed))
    try:
        model, metrics = protocol.select_then_refit(sample, "lp_ft", train_once, tmp_path / "run", score)
    finally:
        CURRENT_RUN.reset(token)
    assert (model, phases) == (kept, calls)
    assert metrics["refit_check"] == refit_score and metrics["refit_steps"] == 5  # 4 steps on 8 -> on 10
    assert metrics.get("refit_rejected", False) == (kept == "select")
    assert ("rejected" in metrics["protocol"]) == (kept == "select") and metrics["train_labels"] == 10


class _Stop(Exception):
    pass


@pytest.mark.parametrize("task, module, floor", [
    ("classification", "warmstart.tasks.classification", 0.5),  # the commonest class's share of the held-out 4
    ("token_classification", "warmstart.tasks.token_classification", 0.0),  # entity F1 0: no entity found yet
])
def test_early_stopping_is_told_the_score_of_a_model_that_has_learnt_nothing(pretrained, tmp_path, monkeypatch,
                                                                               task, module, floor):
    """The selection's fit gets the floor below which evaluations use no patience (engine/loop.KeepBest)."""
    import importlib

    seen = {}

    def recording(*args, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(importlib.import_module(module), "fit", recording)
    if task == "classification":
        _table(tmp_path / "t.csv")
        data = [f"data.path={tmp_path / 't.csv'}", "data.labels=20", "train.strategy=full"]
    else:
        from tests.tasks.test_token_classification import write_ner_folder

        data = [f"data.path={write_ner_folder(tmp_path / 'ner')}", "data.labels=20"]
    cfg = load_config(get(task).config, None, [f"task={task}", f"init={pretrained}", f"output_dir={tmp_path / 'run'}",
                                               "train.precision=fp32", "train.patience=3", *data])
    with pytest.raises(_Stop):
        run_task(cfg)
    assert seen["phase"] == "select" and seen["floor"] == pytest.approx(floor)


def test_response_selection_reads_no_conversation_outside_the_n(pretrained, tmp_path, spy, monkeypatch):
    """Its wrong replies (training negatives, held-out candidates) come from the N labelled conversations: the
    training negatives were drawn from the whole training split, replies the user never labelled."""
    from tests.tasks.test_response_selection import write_dialogue

    seen: set[str] = set()
    real = response_selection.encode

    def encode(tokenizer, df, max_length):
        seen.update(df["text"]) if "text_pair" not in df else seen.update(df["text_pair"])
        return real(tokenizer, df, max_length)

    monkeypatch.setattr(response_selection, "encode", encode)
    write_dialogue(tmp_path / "chat.jsonl")
    cfg = load_config(get("response_selection").config, None, [
        "task=response_selection", f"init={pretrained}", f"data.path={tmp_path / 'chat.jsonl'}",
        f"output_dir={tmp_path / 'run'}",
        "data.labels=20", "data.candidates=4", "train.negatives=3", "train.max_epochs=2", "train.batch_size=4",
        "train.max_length=32", "train.precision=fp32", "train.patience=3"])
    run_task(cfg)
    sample = spy["sample"]
    n = {e.reply for e in sample.labelled}
    assert len(sample.labelled) == 20
    assert seen <= n | {e.reply for e in sample.test}, "a reply outside the N labels (and the test split) was read"


@pytest.mark.parametrize("task, labels", [
    ("classification", lambda i: ["neg", "pos"][i % 2]),
    ("multi_label", lambda i: ["a", "b"][: 1 + i % 2]),
])
def test_a_repeated_text_is_held_out_with_all_its_copies(task, labels, tmp_path):
    """Choosing when to stop on held-out texts that the kept ones repeat rewards memorising: the hold-out takes
    a text with all its copies (case and spaces aside), for one label a text and for sets of labels."""
    from warmstart.tasks.labelled_table import sample_splits

    texts = [f"review {i} words" for i in range(30)]
    rows = texts + [t.upper() for t in texts[::2]] + [t + "  " for t in texts[::3]]
    path = tmp_path / "t.jsonl"
    order = list(range(30)) + list(range(0, 30, 2)) + list(range(0, 30, 3))
    pd.DataFrame({"text": rows, "label": [labels(i) for i in order]}).to_json(path, orient="records", lines=True)
    cfg = load_config(get(task).config, None, [f"data.path={path}", "data.test_size=0", "train.holdout=0.25"])
    splits = (classification if task == "classification" else multi_label).load_splits(cfg.data, 0)[0]
    sample = sample_splits(splits, cfg, single_label=task == "classification")

    def key(frame: pd.DataFrame) -> set[str]:
        return {" ".join(t.split()).lower() for t in frame["text"]}

    assert len(sample.train) + len(sample.validation) == len(rows)
    assert len(sample.validation) and not key(sample.train) & key(sample.validation)


@pytest.mark.parametrize("task", ["classification", "multi_label"])
def test_a_file_without_split_column_never_tests_on_a_training_text(task, tmp_path):
    """The seeded 90/10 split of a one-file dataset carves whole texts: a test row repeating a training text
    would score what the model memorised."""
    texts = [f"text number {i}" for i in range(40)]
    rows = texts + texts[:20] + [t.title() for t in texts[:10]]
    labels = [["neg", "pos"][i % 2] for i in range(40)]
    labels += labels[:20] + labels[:10]
    if task == "multi_label":
        labels = [[x] for x in labels]
    path = tmp_path / "t.jsonl"
    pd.DataFrame({"text": rows, "label": labels}).to_json(path, orient="records", lines=True)
    cfg = load_config(get(task).config, None, [f"data.path={path}", "data.test_size=0.25"])
    splits = (classification if task == "classification" else multi_label).load_splits(cfg.data, 0)[0]
    train, test = ({t.lower() for t in splits[s]["text"]} for s in ("train", "test"))
    assert len(splits["train"]) + len(splits["test"]) == len(rows) and not train & test
    assert 0.15 < len(test) / 40 < 0.35
