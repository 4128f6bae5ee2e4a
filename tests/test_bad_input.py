"""Tried as a new user would (issue 18): bad input through every command ends in one `error:` line, exit status
2, and nothing written. Each case runs in-process, so a traceback anywhere fails the test."""

from __future__ import annotations

import gzip
import json
import re
import shutil

import pandas as pd
import pytest

from warmstart.cli import main


@pytest.fixture(scope="module")
def files(pretrained, sentiment_csv, corpus_file, tmp_path_factory):
    """Every bad and good input file the cases below name, in one folder."""
    root = tmp_path_factory.mktemp("inputs")
    shutil.copytree(pretrained, root / "ckpt")
    from transformers import AutoModel, AutoTokenizer

    # a plain HF encoder folder, as downloaded: no task head
    AutoModel.from_pretrained(pretrained).save_pretrained(root / "plain_encoder")
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(root / "plain_encoder")
    shutil.copy(sentiment_csv, root / "s.csv")
    shutil.copy(corpus_file, root / "corpus.txt")
    (root / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "empty.txt").write_text("")
    (root / "blank.txt").write_text("\n\n  \n")
    words = " ".join(f"w{i * 7919 % 10007}" for i in range(20_000)).encode()
    (root / "truncated.txt.gz").write_bytes(gzip.compress(words)[:2000])  # cut inside the deflate stream
    (root / "bad.yaml").write_text("train: [1, 2\n")
    (root / "list.yaml").write_text("- a\n- b\n")
    (root / "python.yaml").write_text("train: !!python/object/apply:os.system ['echo hi']\n")
    (root / "nolabel.csv").write_text("text,sentiment\ngood,1\nbad,0\n")
    (root / "labels.xlsx").write_bytes(b"PK\x03\x04 zipped sheets")
    (root / "float.csv").write_text("text,label\ngood,0.5\nbad,1.5\n")
    (root / "vectors.jsonl").write_text('{"text": "a", "label": [0, 1, 0]}\n{"text": "b", "label": [1, 0, 0, 0]}\n')
    (root / "header.csv").write_text("text,label\n")
    (root / "unseen.csv").write_text("text,label,split\na,0,train\nb,1,train\nc,2,test\n")
    (root / "nan.csv").write_text("text,label\ngood,\nbad,1\n")
    (root / "tags.csv").write_text('text,label\ngood,"[""a"", ""b""]"\nbad,[]\nok,"[""a""]"\n')
    (root / "notext.csv").write_text("review\nx\n")
    (root / "broken.jsonl").write_text('{"sentences": ["a"]}\n[1, 2]\n')
    (root / "bad.conll").write_text("John\tB-PER\nbroken-line-without-tag\n")
    (root / "dialogue.jsonl").write_text('{"turns": ["only one"]}\n')
    (root / "folder_of_nothing").mkdir()
    (root / "not_a_ckpt").mkdir()
    (root / "not_a_ckpt" / "readme.txt").write_text("hi")
    (root / "a_file").write_text("x")
    (root / "results_bad").mkdir()
    (root / "results_bad" / "results.csv").write_text("a,b\n1,2\n")
    (root / "images_bad").mkdir()
    (root / "images_bad" / "x.png").write_bytes(b"not a png")
    (root / "ft.yaml").write_text("data: {path: s.csv}\n")
    (root / "summ.yaml").write_text("task: summarization\ndata: {path: broken.jsonl}\n")
    (root / "study_notasks.yaml").write_text("inits: [ckpt]\n")
    (root / "study_missing.yaml").write_text("inits: [ckpt]\ntasks: {t: {recipe: nope.yaml, labels: [10]}}\n")
    (root / "study_badinit.yaml").write_text("inits: [nowhere]\ntasks: {t: {recipe: ft.yaml, labels: [10]}}\n")
    (root / "study_nolabels.yaml").write_text("inits: [ckpt]\ntasks: {t: {recipe: ft.yaml}}\n")
    pd.DataFrame({"text": ["x"]}).to_json(root / "in.jsonl", orient="records", lines=True)
    from warmstart.api import finetune

    finetune(None, init=str(root / "ckpt"), data={"path": str(root / "s.csv")}, output_dir=str(root / "ft"),
             train={"max_steps": 2, "precision": "fp32"})
    return root


FT = ["finetune", "init=ckpt", "output_dir=out", "train.max_steps=1"]
PT = ["pretrain", "output_dir=out", "train.max_steps=1"]
CASES = [
    # pretrain
    (["pretrain"], "no training budget"),
    ([*PT], "corpus.sources is empty"),
    ([*PT, "corpus.sources=[missing.txt]"], "missing.txt: file not found"),
    ([*PT, "corpus.sources=[binary.txt]"], "binary file"),
    ([*PT, "corpus.sources=[latin1.txt]"], "not valid UTF-8"),
    ([*PT, "corpus.sources=[empty.txt]"], "empty corpus"),
    ([*PT, "corpus.sources=[blank.txt]"], "empty corpus"),
    ([*PT, "corpus.sources=[truncated.txt.gz]"], "truncated"),
    ([*PT, "corpus.sources=[folder_of_nothing]"], "folder has no files"),
    ([*PT, "corpus.sources=[s.csv]", "corpus.text_column=body"], "no column 'body'"),
    ([*PT, "corpus.sources=[corpus.txt]", "model.init=missing"], "checkpoint folder not found"),
    ([*PT, "corpus.sources=[corpus.txt]", "model.init=not_a_ckpt"], "no config.json"),
    ([*PT, "corpus.sources=[corpus.txt]", "tokenizer.from_checkpoint=not_a_ckpt"], "no tokenizer.json"),
    ([*PT, "corpus.sources=[corpus.txt]", "--resume"], "nothing to resume"),
    ([*PT, "corpus.sources=[corpus.txt]", "output_dir=a_file"], "a file, not a folder"),
    ([*PT, "corpus.sources=[corpus.txt]", "output_dir=/"], "or one above it"),
    (["pretrain", "nope.yaml"], "nope.yaml: config file not found"),
    (["pretrain", "bad.yaml"], "not valid YAML"),
    (["pretrain", "list.yaml"], "a recipe must be a mapping"),
    (["pretrain", "python.yaml"], "not valid YAML"),
    (["pretrain", "bertt"], "no bundled pretrain recipe of that name"),
    ([*PT, "train.max_steps=abc"], "expected"),
    ([*PT, "train.lrr=1"], "did you mean 'lr'"),
    ([*PT, "train"], "expected section.key=value"),
    ([*PT, "objective.name=simclr"], "data.sources|empty|no images|sources"),
    ([*PT, "objective.name=simclr", "data.sources=[images_bad]"], "none of the 1 image files could be read"),
    # finetune
    (["finetune", "output_dir=out"], "init is empty"),
    ([*FT, "init=missing", "data.path=s.csv"], "checkpoint folder not found"),
    ([*FT, "data.path=missing.csv"], "missing.csv: file not found"),
    ([*FT, "data.path=nolabel.csv"], "no column 'label'"),
    ([*FT, "data.path=labels.xlsx"], "labels.xlsx: a spreadsheet, which is not read; save it as CSV"),
    ([*FT, "data.path=float.csv"], "non-integer floats"),
    ([*FT, "data.path=header.csv"], "has no rows"),
    ([*FT, "data.path=unseen.csv"], "appears in the test split but never in train"),
    ([*FT, "data.path=nan.csv"], "row 1 has no value in label column"),
    ([*FT, "data.path=tags.csv"], "holds lists of labels.*use task: multi_label"),
    ([*FT, "data.path=s.csv", "task=multi_label"], "holds one label a row, not a set of labels"),
    ([*FT, "data.path=tags.csv", "task=multi_label", "data.label_separator=' '"], "an empty or blank separator"),
    ([*FT, "data.path=tags.csv", "task=multi_label", "data.balanced=true"], "data.balanced: .*remove it"),
    ([*FT, "data.path=vectors.jsonl", "task=multi_label"], "0/1 label vectors of different lengths"),
    ([*FT, "data.path=s.csv", "task=multi_label", "data.label_columns=[split]"], "label column 'split' holds 'train'"),
    ([*FT, "data.path=s.csv", "task=multi_label", "data.label_columns=[a, a]"], "a column is named twice"),
    ([*FT, "data.path=s.csv", "data.label_columns=[label]"], "one 0/1 column per label .*task: multi_label"),
    ([*FT, "data.path=tags.csv", "task=multi_label", "train.pos_weight_cap=0.5"], "pos_weight_cap"),
    ([*FT, "data.path=s.csv", "data.labels=1"], "fewer than the 2 classes"),
    ([*FT, "data.path=s.csv", "task=ner"], "unknown task 'ner'"),
    ([*FT, "data.path=s.csv", "train.strategy=magic"], "unknown value"),
    ([*FT, "data.path=broken.jsonl", "task=summarization", "train.strategy=lp_ft"], "not available for task"),
    ([*FT, "data.path=s.csv", "init=scratch"], "scratch needs `tokenizer: PATH`"),
    ([*FT, "data.path=bad.conll", "task=token_classification"], "bad.conll:2: expected 'token<TAB>tag'"),
    ([*FT, "data.path=broken.jsonl", "task=summarization"], "not a JSON object"),
    ([*FT, "data.path=dialogue.jsonl", "task=response_selection"], "no conversation of two or more turns"),
    ([*FT, "data.path=folder_of_nothing"], "not a Hugging Face save_to_disk dataset"),
    ([*FT, "data.path=s.csv", "output_dir=ckpt"], "is init=ckpt"),
    ([*FT, "data.path=s.csv", "output_dir=."], "that is the current folder"),
    (["finetune", "summ.yaml", "init=ckpt", "output_dir=out", "data.aspect=method"], "aspect|not a JSON object"),
    (["finetune", "task=image_classification", "init=scratch", "data.sources=[images_bad]", "output_dir=out"],
     "none of the 1 image files could be read"),
    # predict
    (["predict", "missing", "--input", "s.csv"], "checkpoint folder not found"),
    (["predict", "ft", "--input", "missing.csv"], "input file not found"),
    # auto: a negative budget reaches its own check (argparse said only "expected one argument")
    (["auto", "--labelled", "s.csv", "--budget", "-5m"], "--budget -5m: give a duration such as 15m"),
    # auto on sets of labels: no even spread per class, a separator that splits nothing, a column named twice
    (["auto", "--labelled", "tags.csv", "--per-class", "2"], "tags.csv: --per-class spreads the N over the classes"),
    (["auto", "--labelled", "s.csv", "--label-separator", " "], "an empty or blank separator splits nothing"),
    (["auto", "--labelled", "s.csv", "--label-columns", "a", "a"], "--label-columns a a: a column is named twice"),
    (["predict", "ft", "--input", "labels.xlsx"], "labels.xlsx: a spreadsheet, which is not read; save it as CSV"),
    (["predict", "ft", "--input", "s.csv", "--output", "p.txt"], "must end in .csv or .jsonl"),
    (["predict", "ft", "--input", "s.csv", "--output", "s.csv"], "that is the input file"),
    # a typo'd --output naming the user's labels replaced them with predictions
    (["predict", "ft", "--input", "in.jsonl", "--output", "s.csv"], "s.csv: exists and is not predictions warmstart "
                                                                    "wrote; give another --output, or --overwrite"),
    (["predict", "ft", "--input", "in.jsonl", "--output", "broken.jsonl"], "exists and is not predictions"),
    (["predict", "ft", "--input", "s.csv", "--output", "a_file/x.csv"], "a_file: not a folder"),
    (["predict", "ft", "--input", "notext.csv"], "no column 'text' \\(columns: review\\)"),
    (["predict", "ckpt", "--input", "s.csv"], "a pretrained encoder, not a fine-tuned model"),
    # a random classifier's "predictions" for every row, until it was refused
    (["predict", "plain_encoder", "--input", "s.csv"], "no weights for classifier \\(2 tensors\\), so its predictions "
                                                        "would come from a random head"),
    (["predict", "ft", "notext.csv"], "no column 'text' \\(columns: review\\)"),  # the file as a positional too
    (["predict", "ft"], "give the file to predict"),
    (["predict", "ft", "s.csv", "--input", "notext.csv"], "two inputs"),
    # rank
    (["rank", "ft.yaml"], "--candidates"),
    (["rank", "ft.yaml", "--candidates", "missing"], "checkpoint folder not found"),
    (["rank", "ft.yaml", "--candidates", "not_a_ckpt"], "no config.json"),
    (["rank", "summ.yaml", "--candidates", "ckpt"], "task 'summarization' is not supported"),
    (["rank", "ft.yaml", "--candidates", "ckpt", "--scores", "accuracy"], "unknown score accuracy"),
    (["rank", "ft.yaml", "--candidates", "ckpt", "--output", "folder_of_nothing"], "a folder"),
    (["rank", "ft.yaml", "--candidates", "ckpt", "--output", "s.csv"], "s.csv: exists and is not a table warmstart rank"),
    # study, report
    (["study"], "give the study's recipe"),
    (["study", "study_notasks.yaml", "output_dir=st"], "no tasks"),
    (["study", "study_missing.yaml", "output_dir=st"], "nope.yaml: config file not found"),
    (["study", "study_badinit.yaml", "output_dir=st"], "'nowhere' is neither scratch"),
    (["study", "study_nolabels.yaml", "output_dir=st"], "give the label counts"),
    (["report", "folder_of_nothing"], "results.csv: not found"),
    (["report", "results_bad"], "missing columns"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(files, argv, message, capsys, monkeypatch):

    monkeypatch.chdir(files)
    before = sorted(p.name for p in files.iterdir())
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors (exit 2, usage on stderr)
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err[-2000:]
    last = err.splitlines()[-1]
    assert last.startswith(("error: ", "warmstart")) and "Traceback" not in err, err[-2000:]
    assert re.search(message, last), last
    assert sorted(p.name for p in files.iterdir()) == before, "a refused run left something behind"


def test_argparse_refuses_non_positive_counts(capsys):
    for argv in (["predict", "c", "--input", "x", "--batch-size", "0"], ["demo", "--seeds", "0"],
                 ["demo", "--labels", "-3"], ["report", "r", "--labels-saved-at", "0"],
                 ["demo", "--adapt-minutes", "0"], ["demo", "--pretrain-minutes", "nan"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and re.search("must be (at least 1|a positive number)", capsys.readouterr().err)


def test_predicting_with_a_pretrained_encoder_is_refused(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    assert main(["predict", "ckpt", "--input", "s.csv", "--output", "p.csv"]) == 2
    assert "a pretrained encoder, not a fine-tuned model" in capsys.readouterr().err
    assert not (files / "p.csv").exists()


def test_the_case_list_covers_every_command():
    commands = {c[0][0] for c in CASES}
    assert commands >= {"pretrain", "finetune", "predict", "rank", "study", "report"}
    assert len(CASES) >= 60
    json.dumps([c[0] for c in CASES])  # plain data, reproducible from the closing note
