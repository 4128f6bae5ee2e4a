import json
import random

import pytest
import torch

from warmstart.config import FinetuneConfig, LabelledDataConfig, load_config
from warmstart.data.text import load_tokenizer
from warmstart.errors import WarmstartError
from warmstart.tasks.tag_schemes import decode, from_bio
from warmstart.tasks.token_classification import (
    IGNORE,
    encode,
    load_token_splits,
    read_conll,
)


def test_read_conll_sentences_docstart_and_space_columns(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("-DOCSTART- O\n\nJohn\tB-PER\nlives\tO\n\n\nParis NNP B-LOC\n", encoding="utf-8")
    assert read_conll(path) == [(["John", "lives"], ["B-PER", "O"]), (["Paris"], ["B-LOC"])]


def test_read_conll_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("John\tB-PER\nlonely\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match=r"a.conll:2: expected 'token<TAB>tag'"):
        read_conll(path)


@pytest.mark.parametrize("keys, sizes", [({}, [45, 0, 5]), ({"validation_labels": 3}, [40, 5, 5])])
def test_one_conll_file_carves_validation_only_for_an_explicit_dev_set(tmp_path, keys, sizes):
    path = tmp_path / "mine.conll"
    path.write_text("".join(f"w{i}\tO\nx{i}\tB-PER\n\n" for i in range(50)), encoding="utf-8")
    splits = load_token_splits(LabelledDataConfig(path=str(path), **keys), seed=0)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == sizes


@pytest.mark.parametrize("entity_tags", ["iob1", "as_written"])
@pytest.mark.parametrize("scheme, tags", [("BIOES", {"B-LOC", "E-LOC", "S-PER"}), ("BILOU", {"B-LOC", "L-LOC", "U-PER"})])
def test_bioes_and_bilou_sets_are_scored_by_entity_f1_and_tagged_in_their_own_scheme(pretrained, tmp_path, scheme,
                                                                                      tags, entity_tags):
    """Until 2026-12-06 only BIO was read as entities: a Flair (BIOES) or spaCy (BILOU) set got token accuracy.
    The model learns the IOB1 reading (train.entity_tags=iob1) or the tags as written; either way predictions and
    `warmstart predict` come back in the data's scheme."""
    from warmstart.prediction import run_predict
    from warmstart.tasks.registry import run_task
    from warmstart.tasks.tag_schemes import entity_scheme

    data = write_ner_folder(tmp_path / "ner", scheme=scheme)
    assert tags <= {t for _, ts in read_conll(data / "train.conll") for t in ts}
    cfg = load_config(FinetuneConfig, None, [
        "task=token_classification", f"init={pretrained}", f"output_dir={tmp_path / 'run'}", f"data.path={data}",
        "train.lr=0.005", "train.batch_size=8", "train.max_epochs=6", "train.max_length=32", "train.precision=fp32",
        f"train.entity_tags={entity_tags}"])
    metrics = run_task(cfg)
    assert metrics["entity_f1"] > 0.5 and metrics["commonest_tag_entity_f1"] > 0.5
    saved = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    for r in saved:  # well-formed in the scheme: the same after decoding again
        assert decode(r["prediction"], scheme) == r["prediction"] and entity_scheme(r["prediction"]) in ("BIO", scheme)
    assert entity_scheme({t for r in saved for t in r["prediction"]}) == scheme  # E-/S- (L-/U-) come back
    config = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    prefixes = "BI" if entity_tags == "iob1" else scheme.replace("O", "")
    assert set(config["id2label"].values()) == {"O", *(f"{p}-{t}" for p in prefixes for t in ("LOC", "PER"))}
    assert config["tag_scheme"] == scheme and config["entity_tags"] == entity_tags
    card = (tmp_path / "run" / "README.md").read_text(encoding="utf-8")
    assert (f"writes them back in {scheme}" if entity_tags == "iob1" else f"repairs the {scheme} tags") in card
    again = run_predict(str(tmp_path / "run"), str(data / "test.conll"), str(tmp_path / "p.jsonl"))
    assert [json.loads(line)["prediction"] for line in again.read_text().splitlines()] == \
        [r["prediction"] for r in saved]


@pytest.mark.parametrize("pred, want", [
    ([["B-PER", "B-PER", "B-PER", "B-PER"]], 0.0),  # finds the entity by tagging every word: below all-'O' (75%)
    ([["O", "O", "B-PER", "B-PER"]], 0.6667),  # 3 of 4 words right, as many as all-'O': its F1 counts
    ([["O", "O", "O", "B-PER"]], 1.0),
    ([["O", "O", "O", "O"]], 0.0),
])
def test_a_model_below_tagging_every_word_o_has_learnt_nothing_when_choosing(pred, want):
    """Early stopping counted a garbage first epoch (F1 0.013, token accuracy 47.6%) as a best and stopped there."""
    from warmstart.tasks.token_classification import held_out_score

    rows = [(["a", "b", "c", "Ann"], ["O", "O", "O", "B-PER"])]
    assert held_out_score(rows, pred, "BIO", "entity_f1") == pytest.approx(want, abs=1e-4)
    assert held_out_score([(["a"], ["NN"])], [["VB"]], None, "token_accuracy") == 0.0


def test_an_iob1_set_is_tagged_in_iob1(pretrained, tmp_path):
    """CoNLL-2003 as released: an entity begins with I-; predictions come back so, not as BIO."""
    from warmstart.tasks.registry import run_task
    from warmstart.tasks.tag_schemes import written_scheme

    data = write_ner_folder(tmp_path / "ner", scheme="IOB1")
    assert written_scheme([ts for _, ts in read_conll(data / "train.conll")]) == "IOB1"
    cfg = load_config(FinetuneConfig, None, [
        "task=token_classification", f"init={pretrained}", f"output_dir={tmp_path / 'run'}", f"data.path={data}",
        "train.lr=0.005", "train.batch_size=8", "train.max_epochs=6", "train.max_length=32", "train.precision=fp32"])
    metrics = run_task(cfg)
    assert metrics["entity_f1"] > 0.5
    saved = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert written_scheme([r["prediction"] for r in saved]) == "IOB1"
    assert all(decode(r["prediction"], "IOB1") == r["prediction"] for r in saved)
    config = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert config["tag_scheme"] == "IOB1"
    assert "Its tags are IOB1, as the data's are" in (tmp_path / "run" / "README.md").read_text(encoding="utf-8")


def test_only_the_first_word_piece_carries_the_label(pretrained):
    tok = load_tokenizer(str(pretrained))
    words = ["the", "storyfilm", "film"]  # the made-up word splits into several pieces
    ids, firsts, labels = encode(tok, [words], 32, [[1, 2, 3]])
    pieces = [len(tok(w, add_special_tokens=False)["input_ids"]) for w in words]
    assert pieces[1] > 1
    assert firsts[0] == [1, 2, 2 + pieces[1]]
    assert [lab for lab in labels[0] if lab != IGNORE] == [1, 2, 3]
    assert labels[0][0] == IGNORE and labels[0][-1] == IGNORE  # [CLS], [SEP]
    assert sum(lab == IGNORE for lab in labels[0]) == len(ids[0]) - 3


def test_a_sentence_beyond_max_length_is_read_in_windows_not_cut(pretrained):
    from transformers import AutoModel

    from warmstart.engine.runtime import place
    from warmstart.tasks.token_classification import per_word, word_windows

    tok = load_tokenizer(str(pretrained))
    long = ["the", "storyfilm", "film"] * 12  # 36 words, over 48 pieces: three windows of at most 14 pieces
    short = ["a", "film"]
    spans = word_windows(tok, [short, long, []], 16)
    assert spans[0] == (0, 0, 2) and spans[-1] == (2, 0, 0)
    windows = [s for s in spans if s[0] == 1]
    assert len(windows) >= 3 and windows[0][1] == 0 and windows[-1][2] == len(long)
    assert all(a == b for (_, _, b), (_, a, _) in zip(windows[:-1], windows[1:], strict=True))  # contiguous
    for _, a, b in windows:
        assert len(tok(long[a:b], is_split_into_words=True)["input_ids"]) <= 16
    model = place(AutoModel.from_pretrained(str(pretrained))).eval()
    got = list(per_word(lambda b: model(**b).last_hidden_state, tok, [short, long, []], 16, False, batch_size=2))
    assert [len(h) for h, _ in got] == [2, len(long), 0] and all(bool(k.all()) for _, k in got)
    # each window's words carry what the encoder says of that window alone
    _, a, b = windows[1]
    alone = next(per_word(lambda b: model(**b).last_hidden_state, tok, [long[a:b]], 16, False))[0]
    assert torch.allclose(got[1][0][a:b], alone, atol=1e-5)


def test_a_sentence_beyond_max_length_trains_in_windows(pretrained, tmp_path):
    """Truncation dropped a long sentence's tail from training (45% of the words of WNUT tweets joined four a
    line at 64 pieces): every word's label now reaches a window, so an epoch has more examples than sentences."""
    from warmstart.tasks.registry import run_task

    root = tmp_path / "long"
    root.mkdir()
    line = "".join(f"{w}\t{t}\n" for w, t in [("ann", "B-PER"), ("met", "O"), ("bob", "B-PER"), ("in", "O"),
                                               ("paris", "B-LOC"), ("today", "O")] * 5) + "\n"
    (root / "train.conll").write_text(line * 16, encoding="utf-8")
    (root / "test.conll").write_text(line * 2, encoding="utf-8")
    cfg = load_config(FinetuneConfig, None, [
        "task=token_classification", f"init={pretrained}", f"output_dir={tmp_path / 'run'}", f"data.path={root}",
        "train.batch_size=8", "train.max_epochs=1", "train.max_length=16", "train.precision=fp32", "train.patience=0"])
    metrics = run_task(cfg)
    tok = load_tokenizer(str(pretrained))
    from warmstart.tasks.token_classification import word_windows

    windows = len(word_windows(tok, [line.split()[::2]] * 16, 16))
    assert windows >= 3 * 16 and metrics["steps"] == -(-windows // 8)  # 30 words in windows of 14 pieces at most
    assert metrics["train_labels"] == 16  # the labels are the sentences, however many windows they make


def test_tables_and_hf_datasets_with_class_label_tags(tmp_path):
    import datasets

    feats = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                               "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))})
    rows = {"tokens": [["Ann", "sings"], ["Bo", "Li", "runs"]], "ner_tags": [[1, 0], [1, 2, 0]]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=feats),
                          "test": datasets.Dataset.from_dict(rows, features=feats)}).save_to_disk(tmp_path / "hf")
    splits = load_token_splits(LabelledDataConfig(path=str(tmp_path / "hf"), tags_column="ner_tags"), seed=0)
    assert (["Bo", "Li", "runs"], ["B-PER", "I-PER", "O"]) in splits["train"] + splits["validation"]
    with pytest.raises(WarmstartError, match="no column 'labels'"):
        load_token_splits(LabelledDataConfig(path=str(tmp_path / "hf"), tags_column="labels"), seed=0)
    table = tmp_path / "t.jsonl"
    table.write_text(json.dumps({"tokens": ["a", "b"], "tags": ["O"]}) + "\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match="row 0 has 2 tokens but 1 tags"):
        load_token_splits(LabelledDataConfig(path=str(table)), seed=0)


NAMES = ["ann", "bob", "cleo", "dan", "eve", "finn"]
PLACES = ["paris", "rome", "oslo", "lima"]
FILL = ["met", "in", "the", "at", "saw", "went", "to", "with", "today"]


def write_ner_folder(root, seed: int = 0, scheme: str = "BIO"):
    """Names are persons, city names locations (two-word cities for I- tags); tags in `scheme` (BIO, IOB1,
    BIOES, BILOU)."""
    rng = random.Random(seed)
    root.mkdir()
    for split, n in (("train", 60), ("validation", 16), ("test", 16)):
        lines = []
        for _ in range(n):
            for _ in range(rng.randint(3, 7)):
                r = rng.random()
                if r < 0.25:
                    lines.append(f"{rng.choice(NAMES)}\tB-PER")
                elif r < 0.4:
                    lines += [f"{rng.choice(PLACES)}\tB-LOC", f"{rng.choice(PLACES)}\tI-LOC"]
                else:
                    lines.append(f"{rng.choice(FILL)}\tO")
            lines.append("")
        if scheme != "BIO":  # each sentence's tags written in the scheme
            text, lines = "\n".join(lines), []
            for block in text.split("\n\n"):
                pairs = [line.split("\t") for line in block.split("\n") if line]
                tags = from_bio([t for _, t in pairs], scheme)
                lines += [f"{w}\t{t}" for (w, _), t in zip(pairs, tags, strict=True)] + [""]
        (root / f"{split}.conll").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_train_tag_and_predict_reproduces(pretrained, tmp_path, monkeypatch):
    from warmstart.prediction import run_predict
    from warmstart.tasks.registry import run_task

    data = write_ner_folder(tmp_path / "ner")
    cfg = load_config(FinetuneConfig, None, [
        "task=token_classification", f"init={pretrained}", f"output_dir={tmp_path / 'run'}", f"data.path={data}",
        "train.lr=0.005", "train.batch_size=8", "train.max_epochs=6", "train.max_length=32", "train.precision=fp32",
        "train.patience=3"])  # early stopping: the held-out share checks the refit
    metrics = run_task(cfg)
    assert metrics["test_sentences"] == 16 and 0 <= metrics["entity_f1"] <= 1
    assert metrics["token_accuracy"] > 0.6  # above "all O" (about 0.45 of the tokens are entities)
    assert 0 <= metrics["refit_check"] <= 1  # the refit checked on the held-out share (tasks/protocol.py)
    # a study's classic rival, on the same N and test split
    from warmstart.studies.baselines import run_baseline

    classic = run_baseline(cfg)
    assert classic["baseline"] == "commonest_tag" and classic["train_labels"] == metrics["train_labels"]
    assert classic["entity_f1"] > 0.5  # names and cities are the same words in test: the lookup finds them
    assert metrics["commonest_tag_entity_f1"] == classic["entity_f1"]  # every run reports its rival beside it
    run = tmp_path / "run"
    saved = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    out = run_predict(str(run), str(data / "test.conll"), str(tmp_path / "p.jsonl"))
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prediction"] for r in again] == [r["prediction"] for r in saved]
    assert [r["tokens"] for r in again] == [r["tokens"] for r in saved]
    from predict_resume import stopped_then_resumed  # killed mid-file, resumed: the same tags

    resumed = stopped_then_resumed(run, data / "test.conll", tmp_path / "r.jsonl", monkeypatch, size=5)
    assert [json.loads(line)["prediction"] for line in resumed.splitlines()] == [r["prediction"] for r in saved]
    # word lists in memory (warmstart.Predictor): the same tags, nothing written
    from warmstart.prediction import Predictor

    in_memory = Predictor(run).predict([r["tokens"] for r in saved])
    assert list(in_memory["prediction"]) == [r["prediction"] for r in saved] and "tags" not in in_memory
    # a CSV that warmstart wrote holds the lists as JSON text: read back as lists, not characters
    as_csv = run_predict(str(run), str(data / "test.conll"), str(tmp_path / "p.csv"))
    twice = [json.loads(line) for line in run_predict(str(run), str(as_csv), str(tmp_path / "p2.jsonl"))
             .read_text().splitlines()]
    assert [r["tokens"] for r in twice] == [r["tokens"] for r in saved]
    assert [r["prediction"] for r in twice] == [r["prediction"] for r in saved]
    # that CSV's gold tags (JSON text) reach a CoNLL output as its middle column
    from_csv = run_predict(str(run), str(as_csv), str(tmp_path / "from_csv.conll")).read_text(encoding="utf-8")
    assert [line.split("\t") for line in from_csv.split("\n\n")[0].splitlines()] == \
        [[w, g, p] for w, g, p in zip(saved[0]["tokens"], saved[0]["tags"], saved[0]["prediction"], strict=True)]
    # the card's transformers-only lines tag as predict does (predict then repairs BIO)
    from card_snippet import run_token_card_snippet

    card = (run / "README.md").read_text(encoding="utf-8")
    assert "pipeline_tag: token-classification" in card and f"{metrics['test_sentences']} sentences" in card
    assert f"Each word's commonest tag in the same labels, no model: entity F1 {100 * classic['entity_f1']:.1f}%" in card
    tagged = run_token_card_snippet(card, run, [r["tokens"] for r in saved])
    assert [decode(t, "BIO") for t in tagged] == [r["prediction"] for r in saved]
    # CoNLL in, CoNLL out: token, gold, prediction; finetune reads the last column, so it trains as it is
    conll = run_predict(str(run), str(data / "test.conll"), str(tmp_path / "p.conll"))
    gold = read_conll(data / "test.conll")
    lines = conll.read_text(encoding="utf-8").split("\n\n")
    assert [line.split("\t")[1] for line in lines[0].splitlines()] == gold[0][1]
    assert read_conll(conll) == [(r["tokens"], r["prediction"]) for r in saved]
    import warmstart

    rows = warmstart.predict(run, data / "test.conll", tmp_path / "api.conll").rows  # the API: rows as lists
    assert rows["prediction"].tolist() == [r["prediction"] for r in saved] and list(rows["tags"][0]) == gold[0][1]
    assert [r["tags"] for r in again] == [tags for _, tags in gold]  # the gold tags beside, in JSONL too
    # a table's own columns (ids) stay beside the predictions; its tokens column is not repeated
    table = tmp_path / "ids.jsonl"
    table.write_text("".join(json.dumps({"id": f"s{i}", "tokens": w}) + "\n" for i, (w, _) in enumerate(gold[:3])),
                     encoding="utf-8")
    rows = [json.loads(line) for line in run_predict(str(run), str(table), str(tmp_path / "ids.out.jsonl"))
            .read_text().splitlines()]
    assert [list(r) for r in rows] == [["id", "tokens", "prediction"]] * 3 and rows[2]["id"] == "s2"
    assert [r["prediction"] for r in rows] == [r["prediction"] for r in saved[:3]]
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(run)  # a plain HF folder
    assert set(model.config.id2label.values()) == {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"}
    text = tmp_path / "plain.txt"
    text.write_text("ann went to paris rome\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match="holds other columns"):  # p.csv has the CoNLL input's gold tags too
        run_predict(str(run), str(text), str(tmp_path / "p.csv"))
    csv = run_predict(str(run), str(text), str(tmp_path / "p.csv"), overwrite=True)
    assert csv.read_text().splitlines()[0] == "tokens,prediction"


@pytest.mark.parametrize("repeats", [False, True])
def test_a_repeated_sentence_stays_with_its_copies_in_every_split(repeats, tmp_path):
    """One CoNLL file split 90/10, then the hold-out inside the N: a sentence's copies (case aside) on one side
    of each; with no repeats the splits are what they were without grouping."""
    from warmstart.tasks import finetune as ft
    from warmstart.tasks.token_classification import labelled_sample, load_token_splits, read_conll

    words = [[f"w{i}", "x", "y"] for i in range(40)]
    if repeats:
        words += [[w.upper() for w in s] for s in words[:12]] + words[:6]
    path = tmp_path / "all.conll"
    path.write_text("\n\n".join("\n".join(f"{w}\t{'B-person' if j == 0 else 'O'}" for j, w in enumerate(s))
                                for s in words) + "\n", encoding="utf-8")
    cfg = load_config(FinetuneConfig, None, ["task=token_classification", f"data.path={path}", "data.test_size=0.2",
                                             "train.patience=2", "train.holdout=0.25"])
    splits = load_token_splits(cfg.data, 0)
    sample = labelled_sample(cfg)

    def keys(items) -> set[str]:
        return {" ".join(s[0]).lower() for s in items}

    assert not keys(splits["train"]) & keys(splits["test"])
    assert not keys(sample.train) & keys(sample.validation) and len(sample.validation)
    if not repeats:  # grouping singletons changes nothing
        plain = ft.split_examples(read_conll(path), 0, cfg.data.carved_validation, 0.2)
        assert keys(plain["test"]) == keys(splits["test"]) and len(plain["test"]) == 8
        kept, held = ft.holdout(len(sample.labelled), 0.25, 0)
        assert keys(sample.validation) == keys([sample.labelled[i] for i in held])
