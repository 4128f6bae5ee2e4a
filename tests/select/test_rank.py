import math
from pathlib import Path

import pandas as pd
import pytest

from warmstart.cli import main
from warmstart.errors import WarmstartError


@pytest.fixture(scope="module")
def random_twin(pretrained, tmp_path_factory):
    """The pretrained fixture's architecture and tokenizer with random weights: a worse candidate."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = tmp_path_factory.mktemp("twin")
    AutoModel.from_config(AutoConfig.from_pretrained(pretrained)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(folder)
    return folder


def test_rank_scores_every_candidate_and_orders_by_the_default_score(pretrained, random_twin, sentiment_csv, tmp_path, capsys):
    recipe = tmp_path / "task.yaml"
    recipe.write_text(f"data:\n  path: {sentiment_csv}\n  labels: 60\ntrain:\n  max_length: 32\n  precision: fp32\n")
    out = tmp_path / "rank.csv"
    assert main(["rank", "--task", str(recipe), "--candidates", str(pretrained), str(random_twin),
                 "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["rank"]) == [1, 2] and set(table["candidate"]) == {str(pretrained), str(random_twin)}
    assert list(table["knn"]) == sorted(table["knn"], reverse=True)
    for col in ("logme", "hscore", "knn", "probe", "seconds"):
        assert all(math.isfinite(v) for v in table[col])
    assert all(0 <= v <= 1 for v in table["knn"]) and all(0 <= v <= 1 for v in table["probe"])
    assert set(table["metric"]) == {"accuracy"}
    printed = capsys.readouterr().out
    assert "ranked by knn" in printed and "60 labels, cross-validated" in printed  # all N score, none beyond
    assert f"rank: 1/2 {pretrained}: encoding 60 texts" in printed  # before each candidate's minutes of encoding
    assert f"rank: 2/2 {random_twin}: encoding 60 texts" in printed
    again = pd.read_csv(out) if main(["rank", "--task", str(recipe), "--candidates", str(pretrained),
                                       "--output", str(out), "--scores", "knn", "logme"]) == 0 else None
    assert again["logme"][0] == table.set_index("candidate")["logme"][str(pretrained)]  # deterministic
    assert "probe" not in again.columns and again["knn"][0] == table.set_index("candidate")["knn"][str(pretrained)]
    assert main(["rank", "--task", str(recipe), "--candidates", str(pretrained), "--scores", "leep"]) == 2


def test_a_recipe_that_balances_its_classes_is_ranked_by_balanced_accuracy(pretrained, sentiment_csv, tmp_path,
                                                                            monkeypatch):
    """`train.class_balance` in the recipe: the candidates are scored as its runs will be (balanced kNN votes, a
    logit-adjusted probe, balanced accuracy), and the table says so."""
    import warmstart.select.rank as rank

    asked = []
    real = rank.score_cross_validated
    monkeypatch.setattr(rank, "score_cross_validated", lambda *a, **k: asked.append(k.get("balanced")) or real(*a, **k))
    recipe = tmp_path / "task.yaml"
    recipe.write_text(f"data:\n  path: {sentiment_csv}\n  labels: 40\ntrain:\n  max_length: 32\n  precision: fp32\n"
                      "  class_balance: adjusted\n")
    assert main(["rank", str(recipe), "--candidates", str(pretrained), "--output", str(tmp_path / "r.csv"),
                 "--scores", "knn", "probe"]) == 0
    table = pd.read_csv(tmp_path / "r.csv")
    assert asked == [True] and set(table["metric"]) == {"balanced_accuracy"}


def test_rank_refuses_tasks_it_cannot_score_and_missing_candidates(pretrained, sentiment_csv, tmp_path):
    from warmstart.select.rank import run_rank

    recipe = tmp_path / "task.yaml"
    recipe.write_text(f"task: summarization\ndata:\n  path: {sentiment_csv}\n")
    with pytest.raises(WarmstartError, match="task 'summarization' is not supported"):
        run_rank(str(recipe), [str(pretrained)])
    recipe.write_text(f"data:\n  path: {sentiment_csv}\n")
    with pytest.raises(WarmstartError, match="not found"):
        run_rank(str(recipe), [str(tmp_path / "nowhere")])



def test_a_candidate_shorter_than_max_length_is_refused_before_any_is_scored(pretrained, sentiment_csv, tmp_path,
                                                                             capsys):
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from warmstart.select.rank import run_rank

    short = tmp_path / "short"
    AutoModel.from_config(AutoConfig.from_pretrained(pretrained, max_position_embeddings=16)).save_pretrained(short)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(short)
    recipe = tmp_path / "task.yaml"
    recipe.write_text(f"data:\n  path: {sentiment_csv}\n  labels: 20\ntrain:\n  max_length: 32\n")
    with pytest.raises(WarmstartError, match=f"train.max_length=32: {short} has position embeddings for 16 tokens"):
        run_rank(str(recipe), [str(pretrained), str(short)], output=str(tmp_path / "rank.csv"))
    assert "rank:" not in capsys.readouterr().out and not (tmp_path / "rank.csv").exists()

def test_rank_token_task_scores_one_feature_per_word(pretrained, random_twin, tmp_path):
    """NER candidates are scored on word features: one example per word of the sample, the first piece's
    hidden state, so the pretrained encoder (which has seen these words in context) should tag better."""
    from tests.tasks.test_token_classification import write_ner_folder
    from warmstart.config import FinetuneConfig, load_config
    from warmstart.select.rank import _word_data, _word_features, run_rank
    from warmstart.tasks.token_classification import labelled_sample

    data = write_ner_folder(tmp_path / "ner")
    recipe = tmp_path / "ner.yaml"
    recipe.write_text(f"task: token_classification\ndata:\n  path: {data}\ntrain:\n  max_length: 32\n"
                      "  precision: fp32\n")
    cfg = load_config(FinetuneConfig, str(recipe))
    sample = labelled_sample(cfg)
    (train, val), (y_train, y_val), metric, name = _word_data(sample.train, sample.validation)
    assert name == "entity_f1" and metric(y_val, y_val) == 1.0 and metric(y_val, 0 * y_val) < 1.0
    assert len(y_train) == sum(len(s) for s in train) and len(y_val) == sum(len(s) for s in val)
    from transformers import AutoModel, AutoTokenizer

    from warmstart.engine.runtime import place

    feats = _word_features(place(AutoModel.from_pretrained(pretrained)), AutoTokenizer.from_pretrained(pretrained),
                           train, 32, False)
    assert feats.shape[0] == len(y_train) and feats.ndim == 2
    short = _word_features(place(AutoModel.from_pretrained(pretrained)), AutoTokenizer.from_pretrained(pretrained),
                           [["ann", "met", "bob", "in", "paris", "rome"]], 4, False)
    assert short.shape[0] == 6 and (short != 0).any(axis=1).all()  # words past max_length: read in windows
    table = run_rank(str(recipe), [str(pretrained), str(random_twin)], str(tmp_path / "rank.csv"))
    assert len(table) == 2 and all(0 <= v <= 1 for v in table["probe"]) and set(table["metric"]) == {"entity_f1"}
    assert table.set_index("candidate")["probe"][str(pretrained)] > 0.3  # entities found (all 'O' scores 0)


@pytest.mark.parametrize("labels, expected", [
    ([0] * 10 + [1] * 10, "scored"),  # two classes of 10: 5 folds, every example predicted once
    ([0] * 19 + [1], None),  # a class with one example: no fold possible, the caller falls back
])
def test_cross_validated_scores_predict_every_label_once(labels, expected, monkeypatch):
    import numpy as np
    import torch

    import warmstart.select.rank as rank

    queried = []
    real = rank.knn_predict

    def recording(train, y, query, k=20, **kw):
        queried.append(len(query))
        return real(train, y, query, k=k, **kw)

    monkeypatch.setattr(rank, "knn_predict", recording)
    y = np.array(labels)
    x = np.random.default_rng(0).normal(size=(len(y), 8)) + 4.0 * (y[:, None] - 0.5)  # separable classes, also by cosine
    values = rank.score_cross_validated(x, y, seed=0, scores=("knn", "probe", "logme"))
    if expected is None:
        assert values is None and not queried
        return
    assert sum(queried) == len(y) and len(queried) == 5
    assert values["knn"] == 1.0 and values["probe"] == 1.0 and math.isfinite(values["logme"])
    assert torch.is_tensor(real(torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(1, 3)))


def test_balanced_knn_lets_a_rare_class_outvote_a_common_one_and_is_scored_balanced():
    """9 training points of class 0 and 1 of class 1, the query nearest the rare one: the plain vote (k = 10) goes
    to the many, the balanced one (each vote times N / (C * n_c): 0.56 and 5) to the rare neighbour; the
    cross-validated kNN score is then a balanced accuracy."""
    import numpy as np
    import torch

    import warmstart.select.rank as rank
    from warmstart.models.probe import knn_predict

    train = torch.tensor([[1.0, 0.1 * i] for i in range(9)] + [[0.0, 1.0]])
    y = torch.tensor([0] * 9 + [1])
    query = torch.tensor([[0.35, 1.0]])
    assert knn_predict(train, y, query, k=10, temperature=1.0).tolist() == [0]
    assert knn_predict(train, y, query, k=10, temperature=1.0, balanced=True).tolist() == [1]
    labels = np.array([0] * 30 + [1] * 6)
    x = np.random.default_rng(0).normal(size=(36, 8))  # noise: the plain scores ride the 5:1 skew, not the features
    plain = rank.score_cross_validated(x, labels, 0, ("knn", "probe"))
    balanced = rank.score_cross_validated(x, labels, 0, ("knn", "probe"), balanced=True)
    assert plain["knn"] >= 0.7 and plain["probe"] >= 0.8  # near the 83% of always answering 0
    assert balanced["knn"] < 0.6 and balanced["probe"] < 0.6  # near the 50% that noise earns


def test_rank_says_how_many_different_texts_its_folds_were_drawn_over(pretrained, tmp_path, capsys):
    rows = [f"word{i} other{i}" for i in range(12)]
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": rows + rows[:4], "label": [i % 2 for i in range(12)] + [0, 1, 0, 1]}).to_csv(path,
                                                                                                   index=False)
    recipe = tmp_path / "task.yaml"
    recipe.write_text(f"data:\n  path: {path}\n  test_size: 0\ntrain:\n  max_length: 16\n  precision: fp32\n")
    assert main(["rank", str(recipe), "--candidates", str(pretrained), "--output", str(tmp_path / "r.csv"),
                 "--scores", "knn"]) == 0
    assert "16 labels (12 different texts: a text's copies share a fold), cross-validated" in capsys.readouterr().out


def test_copies_of_a_text_do_not_score_the_candidate_on_what_it_memorised():
    """Labels that carry nothing (random), each text 3 times: with copies split across folds kNN finds each held
    text's twin and scores far above chance; with them grouped (data/sample.text_groups) it scores chance."""
    import numpy as np

    import warmstart.select.rank as rank

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 3)
    x, y = rng.normal(size=(40, 16))[groups], rng.integers(0, 2, 40)[groups]
    split = rank.score_cross_validated(x, y, seed=0, scores=("knn", "probe"))
    grouped = rank.score_cross_validated(x, y, seed=0, scores=("knn", "probe"), groups=groups)
    assert split["knn"] > 0.9 and split["probe"] > 0.75
    assert grouped["knn"] < 0.7 and grouped["probe"] < 0.7


@pytest.mark.parametrize("layout", [None, "mean", "cls"])
def test_features_are_pooled_as_the_folder_embeds(layout, pretrained, tmp_path):
    """A [CLS]-pooled sentence-transformers folder is scored on its [CLS] state (fine-tuning's cls_token), any
    other folder on mean-pooled states; the auto pipeline fine-tunes each with the same pooling."""
    import json
    import shutil

    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from warmstart.autopilot.run import AutoRun
    from warmstart.select.rank import sentence_features

    folder = tmp_path / "encoder"
    shutil.copytree(pretrained, folder)
    if layout:
        (folder / "modules.json").write_text(json.dumps([{"idx": 1, "name": "1", "path": "1_Pooling",
                                                          "type": "sentence_transformers.models.Pooling"}]))
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": layout}))
    texts = ["a good film", "a dull and long film that never ends"]
    got = sentence_features(folder, texts, 32, False)
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        batch = tok(texts, padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        want = hidden[:, 0] if layout == "cls" else (hidden * mask).sum(1) / mask.sum(1)
    assert np.allclose(got, want.numpy(), atol=1e-4)  # the features may come from a GPU, the reference from the CPU
    run = AutoRun.__new__(AutoRun)  # only what overrides() reads
    run.encoders, run.seed, run.data = {"e": str(folder)}, 0, type("D", (), {"balance": "none"})()
    run.state = type("S", (), {"get": lambda self, key: {"max_length": 32}})()
    pooling = "cls_token" if layout == "cls" else "mean"
    assert f"train.pooling={pooling}" in run.overrides("probe", "e")


@pytest.mark.parametrize("layout, seen", [
    ("finetune_on_it", True),     # `warmstart finetune data.path=labels.csv`
    ("finetune_on_other", False),
    ("auto_model", True),         # `warmstart auto --labelled labels.csv`: its model/ under the auto folder
    ("pretrain", False),          # an encoder pretrained without labels
    ("no_marker", False),         # a downloaded folder
])
def test_fitted_on_knows_a_candidate_that_saw_the_labels(tmp_path, layout, seen):
    from warmstart.engine.outputs import file_hash, write_marker
    from warmstart.select.rank import fitted_on

    labels, other = tmp_path / "labels.csv", tmp_path / "other.csv"
    labels.write_text("text,label\na,0\nb,1\n", encoding="utf-8")
    other.write_text("text,label\nc,0\nd,1\n", encoding="utf-8")
    folder = tmp_path / "auto" / "model"
    folder.mkdir(parents=True)
    if layout.startswith("finetune"):
        write_marker(folder, "finetune", {"data.path": labels if layout == "finetune_on_it" else other})
    elif layout == "auto_model":
        write_marker(folder.parent, "auto", {"labelled": labels})
        write_marker(folder, "finetune", {"data.path": tmp_path / "auto" / "copy_of_labels.csv"})
    elif layout == "pretrain":
        write_marker(folder, "pretrain", {"corpus.sources[0]": labels})
    assert fitted_on(folder, file_hash(labels)) is seen


def test_rank_flags_a_candidate_fine_tuned_on_the_labels_it_is_scored_on(pretrained, sentiment_csv, tmp_path,
                                                                           capsys):
    from warmstart.config import FinetuneConfig, load_config
    from warmstart.tasks.registry import run_task

    run_task(load_config(FinetuneConfig, None, [f"init={pretrained}", f"output_dir={tmp_path / 'ft'}",
                                                 f"data.path={sentiment_csv}", "data.labels=40", "train.max_steps=2",
                                                 "train.max_length=32", "train.precision=fp32"]))
    recipe = tmp_path / "task.yaml"
    recipe.write_text(f"data:\n  path: {sentiment_csv}\n  labels: 40\ntrain:\n  max_length: 32\n  precision: fp32\n")
    out = tmp_path / "rank.csv"
    assert main(["rank", "--task", str(recipe), "--candidates", str(pretrained), str(tmp_path / "ft"),
                 "--output", str(out), "--scores", "knn"]) == 0
    table = pd.read_csv(out).set_index("candidate")
    assert table["fitted_on_these_labels"].to_dict() == {str(pretrained): False, str(tmp_path / "ft"): True}
    assert f"{tmp_path / 'ft'} was fine-tuned on {sentiment_csv}" in capsys.readouterr().out


def test_knn_for_sets_predicts_a_label_that_half_the_neighbours_weight_holds():
    import torch

    from warmstart.models.probe import knn_predict_sets

    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 1, 0], [0, 1, 0]])
    got = knn_predict_sets(train, labels, torch.tensor([[1.0, 0.05], [0.05, 1.0]]), k=2)
    # the first query's two neighbours both have label 0, only one (the nearer) label 2: just over half the weight
    assert got.tolist() == [[1, 0, 1], [0, 1, 0]]


@pytest.mark.slow
def test_rank_scores_a_multi_label_task_by_micro_f1_out_of_fold(pretrained, random_twin, tmp_path, capsys):
    import json as _json

    from warmstart.config import FinetuneConfig, load_config
    from warmstart.select.rank import rank_candidates

    rows = [{"text": f"{'good great ' * (i % 2)}{'dull awful ' * (i // 2 % 2)} the film {i}",
             "labels": [n for n, on in (("pos", i % 2), ("neg", i // 2 % 2)) if on]} for i in range(40)]
    path = tmp_path / "tags.jsonl"
    path.write_text("".join(_json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = load_config(FinetuneConfig, None, ["task=multi_label", f"data.path={path}", "data.label_column=labels",
                                             "data.test_size=0.2"])
    table = rank_candidates(cfg, [str(pretrained), str(random_twin)], tmp_path / "rank.csv")
    assert set(table["metric"]) == {"micro_f1"} and len(table) == 2
    assert table["probe"].is_monotonic_decreasing  # sets of labels: ordered by the probe, not by kNN
    assert "ranked by probe" in capsys.readouterr().out
    for score in ("knn", "probe"):
        assert table[score].between(0, 1).all()
    assert table["logme"].notna().all() and table["hscore"].notna().all()


@pytest.mark.parametrize("scheme", ["BIOES", "BILOU"])
def test_rank_reads_bioes_and_bilou_tags_as_entities(tmp_path, scheme):
    """A token task's candidates are scored by entity F1 in any entity scheme, as its fine-tuning is."""
    from tests.tasks.test_token_classification import write_ner_folder
    from warmstart.config import LabelledDataConfig
    from warmstart.select.rank import _word_data
    from warmstart.tasks.token_classification import load_token_splits

    splits = load_token_splits(LabelledDataConfig(path=str(write_ner_folder(tmp_path / "ner", scheme=scheme))), 0)
    _, (_, y_val), metric, name = _word_data(splits["train"], splits["validation"])
    assert name == "entity_f1" and metric(y_val, y_val) == 1.0 and metric(y_val, 0 * y_val) < 1.0


@pytest.mark.parametrize("reading", ["iob1", "as_written"])
def test_rank_scores_the_word_classes_fine_tuning_will_learn(pretrained, tmp_path, monkeypatch, reading):
    """With train.entity_tags=as_written a BIOES head learns S-/E- classes: rank's probe predicts those (it read
    every scheme as IOB1 before, whatever the recipe said)."""
    import numpy as np

    from tests.tasks.test_token_classification import write_ner_folder
    from warmstart.config import LabelledDataConfig
    from warmstart.select import rank
    from warmstart.tasks.tag_schemes import learnt_tags
    from warmstart.tasks.token_classification import load_token_splits

    data = write_ner_folder(tmp_path / "ner", scheme="BIOES")
    recipe = tmp_path / "ner.yaml"
    recipe.write_text(f"task: token_classification\ndata:\n  path: {data}\ntrain:\n  max_length: 32\n"
                      f"  precision: fp32\n  entity_tags: {reading}\n")
    seen = []
    score = rank.score_features
    monkeypatch.setattr(rank, "score_features", lambda *a, **k: seen.append((a[1], a[3])) or score(*a, **k))
    rank.run_rank(str(recipe), [str(pretrained)], str(tmp_path / "rank.csv"))
    splits = load_token_splits(LabelledDataConfig(path=str(data)), 0)
    every = {t for part in ("train", "validation") for _, tags in splits[part] for t in learnt_tags(tags, "BIOES",
                                                                                                   reading)}
    assert len(np.unique(np.concatenate(seen[0]))) == len(every)  # one class per tag of the reading, all present
    assert any(t[0] in "ES" for t in every) == (reading == "as_written")


@pytest.mark.parametrize("change, kept", [
    (None, True),
    ("candidate", False),  # a checkpoint retrained in place
    ("data", False),  # the labelled table edited
    ("setting", False),  # another max_length
])
def test_a_stopped_ranking_resumes_with_the_candidates_it_had_scored(pretrained, random_twin, sentiment_csv, tmp_path,
                                                                    monkeypatch, capsys, change, kept):
    """Killed while encoding its second candidate, `rank` run again scores only the rest, and its table is the
    uninterrupted run's; what a kept row depends on changing scores that candidate again."""
    import os
    import shutil

    import warmstart.select.rank as rank
    from warmstart.engine.partial import partial_path

    first, data = tmp_path / "first", tmp_path / "labels.csv"
    shutil.copytree(pretrained, first)
    shutil.copy(sentiment_csv, data)
    recipe = tmp_path / "task.yaml"
    recipe.write_text(f"data:\n  path: {data}\n  labels: 40\ntrain:\n  max_length: 32\n  precision: fp32\n")
    out, real, calls = tmp_path / "rank.csv", rank._text_features, []

    def encode(folder, *a, **k):
        calls.append(Path(folder).name)
        if len(calls) == 2 and stop:
            raise KeyboardInterrupt  # a kill while the second candidate encodes
        return real(folder, *a, **k)

    monkeypatch.setattr(rank, "_text_features", encode)
    stop = True
    with pytest.raises(KeyboardInterrupt):
        rank.run_rank(str(recipe), [str(first), str(random_twin)], output=str(out))
    assert not out.exists() and partial_path(out).is_file()
    overrides = []
    if change == "candidate":
        weights = first / "model.safetensors"
        os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    elif change == "data":
        data.write_text(data.read_text() + "", encoding="utf-8")
        os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 10**9))
    elif change == "setting":
        overrides = ["train.max_length=24"]
    stop, calls[:] = False, []
    capsys.readouterr()  # the stopped run's lines
    table = rank.run_rank(str(recipe), [str(first), str(random_twin)], output=str(out), overrides=overrides)
    assert calls == ([random_twin.name] if kept else [first.name, random_twin.name])
    printed = capsys.readouterr().out
    assert ("scored before this run was stopped, kept" in printed) == kept
    assert (f"rank: 1/2 {first}: encoding" in printed) != kept
    assert not partial_path(out).exists()  # the table written, the kept rows go
    clean = rank.run_rank(str(recipe), [str(first), str(random_twin)], output=str(tmp_path / "clean.csv"),
                          overrides=overrides)
    pd.testing.assert_frame_equal(table.drop(columns="seconds"), clean.drop(columns="seconds"))
