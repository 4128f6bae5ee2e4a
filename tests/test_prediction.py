"""`warmstart predict` reproduces the fine-tuning run's own test predictions, in CSV and JSONL."""

import re

import numpy as np
import pandas as pd
import pytest
from test_e2e import _finetune

from warmstart.cli import main
from warmstart.errors import WarmstartError
from warmstart.prediction import run_predict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finetuned(pretrained, sentiment_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "model"
    _finetune(sentiment_csv, out, pretrained, "train.strategy=linear_probe", "train.pooling=mean")
    return out


def test_predictions_match_the_finetuning_runs(finetuned, sentiment_csv, tmp_path):
    test = pd.read_csv(sentiment_csv).query("split == 'test'")
    test.to_csv(tmp_path / "in.csv", index=False)
    got = pd.read_csv(run_predict(str(finetuned), str(tmp_path / "in.csv")))
    want = pd.read_csv(finetuned / "predictions.csv")
    assert list(got["prediction"].astype(str)) == list(want["prediction"].astype(str))
    assert np.allclose(got["prob_1"], want["prob_1"], atol=1e-4)  # mean pooling read from the checkpoint's config


def test_jsonl_output_text_input_and_cli(finetuned, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("great lovely film\n\nawful dull plot\n", encoding="utf-8")
    assert main(["predict", str(finetuned), "--input", str(tmp_path / "in.txt"),
                 "--output", str(tmp_path / "out.jsonl")]) == 0
    rows = pd.read_json(tmp_path / "out.jsonl", lines=True)
    assert list(rows["text"]) == ["great lovely film", "", "awful dull plot"] and {"prediction", "prob_0"} <= set(rows)
    assert rows["prediction"].isna().tolist() == [False, True, False]  # a blank line keeps its row, unpredicted
    said = capsys.readouterr().out
    assert re.search(r"3 rows in [\d.]+ s \(the model loaded in [\d.]+ s, then [\d,]+ rows/s\)", said), said


def test_bad_inputs_are_one_line(finetuned, tmp_path):
    pd.DataFrame({"review": ["x"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(WarmstartError, match="no column 'text' \\(columns: review\\)"):
        run_predict(str(finetuned), str(tmp_path / "t.csv"))
    with pytest.raises(WarmstartError, match="input file not found"):
        run_predict(str(finetuned), str(tmp_path / "missing.csv"))
    with pytest.raises(WarmstartError, match="must end in .csv or .jsonl"):
        run_predict(str(finetuned), str(tmp_path / "t.csv"), str(tmp_path / "out.parquet"))


def test_the_users_columns_stay_with_their_rows(finetuned, tmp_path):
    rows = pd.DataFrame({"id": [17, 4, 99], "text": ["great lovely film", "", "awful dull plot"],
                         "prediction": ["theirs", "theirs", "theirs"]})
    rows.to_csv(tmp_path / "in.csv", index=False)
    out = pd.read_csv(run_predict(str(finetuned), str(tmp_path / "in.csv"), str(tmp_path / "out.csv")))
    assert list(out["id"]) == [17, 4, 99] and list(out["input_prediction"]) == ["theirs"] * 3
    assert out["prediction"].isna().tolist() == [False, True, False]  # the blank text: no guess
    alone = pd.read_csv(run_predict(str(finetuned), str(tmp_path / "in.csv"), str(tmp_path / "o2.csv")))
    assert alone["prob_1"].iloc[2] == out["prob_1"].iloc[2]


def test_a_killed_prediction_resumes_and_a_changed_input_starts_over(finetuned, tmp_path, monkeypatch, capsys):
    """Each chunk's predictions are kept beside the output as they finish (engine/partial.py): the run after a
    kill computes only the rest and writes the file a whole run writes; an edited input reuses nothing."""
    import io
    import os

    from predict_resume import Killed, stopped_then_resumed

    from warmstart.engine.partial import KeptChunks, partial_path

    texts = ["great lovely film", "", "awful dull plot", "fine", "a mess", "", "moving and warm", "tedious"]
    pd.DataFrame({"id": range(len(texts)), "text": texts}).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    written = pd.read_csv(io.BytesIO(stopped_then_resumed(finetuned, tmp_path / "in.csv", out, monkeypatch)))
    assert list(written["id"]) == list(range(len(texts))) and written["prediction"].isna().sum() == 2
    said = capsys.readouterr().out
    assert "resuming a stopped run: 2 of 6 items read back" in said and "2 read back from a stopped run" in said
    # killed again, then the input edited: what was kept is another input's, and all of it is computed anew
    original, calls = KeptChunks.__call__, []

    def killed_after_one(self, total, size, compute, skipped=lambda n: None):
        def once(start, stop):
            if calls:
                raise Killed
            calls.append(start)
            return compute(start, stop)
        return original(self, total, 2, once, skipped)

    monkeypatch.setattr(KeptChunks, "__call__", killed_after_one)
    out.unlink()
    with pytest.raises(Killed):
        run_predict(str(finetuned), str(tmp_path / "in.csv"), str(out))
    assert partial_path(out).is_file()
    st = (tmp_path / "in.csv").stat()
    os.utime(tmp_path / "in.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # edited
    monkeypatch.setattr(KeptChunks, "__call__", original)
    run_predict(str(finetuned), str(tmp_path / "in.csv"), str(out))
    assert "resuming" not in capsys.readouterr().out and not partial_path(out).exists()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_an_output_file_is_replaced_only_when_warmstart_wrote_it_or_overwrite_says_so(finetuned, tmp_path, suffix):
    (tmp_path / "in.txt").write_text("great lovely film\nawful dull plot\n", encoding="utf-8")
    out = tmp_path / f"out{suffix}"
    run_predict(str(finetuned), str(tmp_path / "in.txt"), str(out))
    first = out.read_text(encoding="utf-8")
    run_predict(str(finetuned), str(tmp_path / "in.txt"), str(out))  # its own predictions: replaced, as before
    assert out.read_text(encoding="utf-8") == first
    mine = tmp_path / f"labels{suffix}"
    mine.write_text("text,label\ngood,1\n" if suffix == ".csv" else '{"text": "good", "label": 1}\n', encoding="utf-8")
    with pytest.raises(WarmstartError, match="exists and is not predictions warmstart wrote"):
        run_predict(str(finetuned), str(tmp_path / "in.txt"), str(mine))
    assert "good" in mine.read_text(encoding="utf-8")  # untouched
    run_predict(str(finetuned), str(tmp_path / "in.txt"), str(mine), overwrite=True)
    assert "prediction" in mine.read_text(encoding="utf-8")
    # a table of the user's own with a prediction column (a labelling tool's export): not these predictions' shape
    export = tmp_path / f"export{suffix}"
    export.write_text("id,text,prediction,checked\n7,good,1,yes\n" if suffix == ".csv" else
                      '{"id": 7, "text": "good", "prediction": 1, "checked": "yes"}\n', encoding="utf-8")
    with pytest.raises(WarmstartError, match="holds other columns .*checked.* than these predictions"):
        run_predict(str(finetuned), str(tmp_path / "in.txt"), str(export))
    assert "checked" in export.read_text(encoding="utf-8")  # untouched


def test_a_predictor_loads_once_and_predicts_rows_in_memory_as_from_a_file(finetuned, tmp_path, monkeypatch):
    """warmstart.Predictor: texts, dicts or a DataFrame in memory get the rows and probabilities a file of them
    gets, from one load of the model and tokenizer, and nothing is written beside the user's files."""
    import warmstart
    from warmstart import prediction

    loads = []
    monkeypatch.setattr(prediction, "fitted", lambda *a, **k: loads.append("model") or fitted(*a, **k))
    monkeypatch.setattr(prediction, "fitted_tokenizer", lambda f: loads.append("tokenizer") or tokenizer(f))
    texts = ["great lovely film", "", "awful dull plot"]
    pd.DataFrame({"id": [17, 4, 99], "text": texts}).to_csv(tmp_path / "in.csv", index=False)
    want = prediction.predict_rows(str(finetuned), str(tmp_path / "in.csv"))[1]  # the rows as predicted
    before = sorted(tmp_path.iterdir())
    loads.clear()
    p = warmstart.Predictor(finetuned)
    plain = p.predict(texts)
    framed = p.predict(pd.DataFrame({"id": [17, 4, 99], "text": texts}, index=[5, 6, 7]))
    dicts = p.predict([{"id": i, "text": t} for i, t in zip([17, 4, 99], texts, strict=True)])
    assert loads == ["tokenizer", "model"]  # three calls, one load
    assert list(plain.columns) == ["text", *[c for c in want.columns if c not in ("id", "text")]]
    for got in (plain, framed, dicts):
        assert got["prediction"].isna().tolist() == [False, True, False]  # a blank text: no guess, as from a file
        assert got["prediction"].equals(want["prediction"])
        assert np.allclose(got["prob_1"].astype(float), want["prob_1"].astype(float), atol=1e-6, equal_nan=True)
    assert list(framed["id"]) == list(dicts["id"]) == [17, 4, 99]
    assert sorted(tmp_path.iterdir()) == before


def test_predict_with_rows_in_memory_writes_only_where_asked(finetuned, tmp_path):
    import warmstart

    kept = warmstart.predict(finetuned, ["great lovely film"])
    assert kept.path is None and len(kept.rows) == 1
    written = warmstart.predict(finetuned, ["great lovely film", "dull"], tmp_path / "out.jsonl")
    assert written.path == tmp_path / "out.jsonl" and len(pd.read_json(written.path, lines=True)) == 2
    (tmp_path / "mine.csv").write_text("id,note\n1,keep me\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match="not predictions warmstart wrote"):
        warmstart.predict(finetuned, ["great"], tmp_path / "mine.csv")
    assert (tmp_path / "mine.csv").read_text(encoding="utf-8") == "id,note\n1,keep me\n"


@pytest.mark.parametrize("rows, message", [
    ([], "no rows given"),
    ([1, 2], "rows of int: give texts, dicts, a DataFrame"),
    ([["great", "film"]], "rows of list: give texts, dicts, a DataFrame$"),  # not a pair or token classifier
    ([{"review": "fine"}], r"the rows given: no column 'text' \(columns: review\); pass text_column="),
    ("a gripping film", r"'a gripping film': no such file; to predict texts, give a list"),  # not guessed
    (__import__("pathlib").Path("no/such/rows.csv"), "no/such/rows.csv: input file not found"),
])
def test_rows_in_memory_that_cannot_be_read_are_one_line(finetuned, rows, message):
    import warmstart

    with pytest.raises(WarmstartError, match=message):
        warmstart.Predictor(finetuned).predict(rows)


def fitted(*args, **kwargs):
    from warmstart.tasks.registry import fitted as load

    return load(*args, **kwargs)


def tokenizer(folder):
    from warmstart.tasks.registry import fitted_tokenizer

    return fitted_tokenizer(folder)


def test_a_repeated_text_is_predicted_once_and_every_copy_keeps_its_row(finetuned, sentiment_csv, tmp_path,
                                                                        monkeypatch):
    """A file that repeats its texts costs its distinct texts: the model sees each once (recorded where the rows
    are tokenised), and every copy, blank rows and ids included, gets its first occurrence's prediction."""
    import warmstart.tasks.classification as classification

    texts = pd.read_csv(sentiment_csv).query("split == 'test'")["text"].tolist()[:12]
    rows = texts + texts[:6] + ["", texts[3], texts[3].upper()]
    pd.DataFrame({"id": range(len(rows)), "text": rows}).to_csv(tmp_path / "in.csv", index=False)
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "distinct.csv", index=False)
    seen = []
    real = classification.encode
    monkeypatch.setattr(classification, "encode", lambda tok, df, n: seen.extend(df["text"]) or real(tok, df, n))
    got = pd.read_csv(run_predict(str(finetuned), str(tmp_path / "in.csv")))
    assert sorted(seen) == sorted(texts + [texts[3].upper()])  # distinct, non-blank; case is another text
    assert got["id"].tolist() == list(range(len(rows)))
    alone = pd.read_csv(run_predict(str(finetuned), str(tmp_path / "distinct.csv")))
    for i, text in enumerate(rows):
        if text == "":
            assert pd.isna(got["prediction"][i])
        elif text in texts:
            j = texts.index(text)
            assert got["prediction"][i] == alone["prediction"][j] and got["prob_1"][i] == got["prob_1"][j]
            assert abs(got["prob_1"][i] - alone["prob_1"][j]) < 1e-4


def test_the_runs_metrics_set_the_most_frequent_class_beside_its_accuracy(finetuned, sentiment_csv):
    """metrics.json's majority_accuracy: always answering the training labels' most frequent class, on the same
    test rows (the first rival a skewed table's accuracy must beat); the card says it beside the accuracy."""
    import json

    metrics = json.loads((finetuned / "metrics.json").read_text(encoding="utf-8"))
    table = pd.read_csv(sentiment_csv)
    top = table.query("split == 'train'")["label"].value_counts().idxmax()  # the run's labels: all training rows
    assert metrics["majority_accuracy"] == round(float((table.query("split == 'test'")["label"] == top).mean()), 4)
    assert f"most frequent class: {100 * metrics['majority_accuracy']:.1f}%" in (finetuned / "README.md").read_text(
        encoding="utf-8")
