import gzip
import json

import pandas as pd
import pytest

from warmstart.data.sources import iter_corpus, load_documents, read_table, split_documents
from warmstart.errors import WarmstartError


def test_blank_lines_separate_documents():
    docs = list(split_documents("a b\nc d\n\n\n e f \n\ng\n"))
    assert docs == [["a b", "c d"], ["e f"], ["g"]]


@pytest.mark.parametrize("line_by_line, docs", [
    (False, [["a b", "c d"], ["e f"], ["g"]]),
    (True, [["a b"], ["c d"], ["e f"], ["g"]]),  # one text a line: each is a document
])
def test_line_by_line_makes_each_line_a_document(tmp_path, line_by_line, docs):
    assert list(split_documents("a b\nc d\n\n\n e f \n\ng\n", line_by_line=line_by_line)) == docs
    (tmp_path / "t.txt").write_text("a b\nc d\n\n\n e f \n\ng\n", encoding="utf-8")
    pd.DataFrame({"text": ["row one\nrow one b"]}).to_csv(tmp_path / "t.csv", index=False)
    got = list(iter_corpus([str(tmp_path / "t.txt"), str(tmp_path / "t.csv")], line_by_line=line_by_line))
    assert got == docs + [["row one", "row one b"]]  # a table's row stays one document
    long = "x" * 30_000  # a line cut into segments stays one document
    assert len(list(split_documents(f"{long} {long}\nshort\n", line_by_line=True))) == 2


def test_folder_gz_csv_jsonl_sources(tmp_path):
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "b.txt").write_text("second book\n")
    (folder / "a.txt").write_text("first book line one\nline two\n\nnext doc\n")
    with gzip.open(tmp_path / "c.txt.gz", "wt") as f:
        f.write("zipped text\n")
    pd.DataFrame({"body": ["row one\nrow one b", None, "row two"]}).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.jsonl").write_text(json.dumps({"body": "json row"}) + "\n")
    docs = load_documents([str(folder), str(tmp_path / "c.txt.gz")])
    assert docs == [["first book line one", "line two"], ["next doc"], ["second book"], ["zipped text"]]
    docs = load_documents([str(tmp_path / "t.csv"), str(tmp_path / "t.jsonl")], text_column="body")
    assert docs == [["row one", "row one b"], ["row two"], ["json row"]]


def test_very_long_documents_are_cut_into_pieces(tmp_path):
    path = tmp_path / "novel.txt"
    path.write_text("\n".join(f"paragraph {i}" for i in range(600)) + "\n")
    docs = load_documents([str(path)])
    assert [len(d) for d in docs] == [256, 256, 88]
    assert docs[1][0] == "paragraph 256"


def test_hf_save_to_disk_folder(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text": ["hello world", "second"]}).save_to_disk(str(tmp_path / "ds"))
    assert load_documents([str(tmp_path / "ds")]) == [["hello world"], ["second"]]
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a"], "label": [1]}),
                               "test": datasets.Dataset.from_dict({"text": ["b"], "label": [0]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    table = read_table(str(tmp_path / "dd"))
    assert sorted(table["split"]) == ["test", "train"]


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "file not found"),
    (lambda p: p.write_text("\n\n   \n"), "empty corpus"),
    (lambda p: p.write_bytes("caf\xe9 ok".encode("latin-1")), "not valid UTF-8 at byte 3"),
    (lambda p: p.write_bytes(b"\x7fELF\x00\x00\x01binary"), "binary file"),
])
def test_bad_corpus_is_one_clear_line(tmp_path, make, message):
    path = tmp_path / "corpus.txt"
    make(path)
    with pytest.raises(WarmstartError, match=message) as e:
        load_documents([str(path)])
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name, make, message", [
    ("corpus.xlsx", lambda p: p.write_bytes(b"PK\x03\x04 zipped sheets"), "a spreadsheet, which is not read; save it as CSV"),
    ("corpus.parquet", lambda p: p.write_text("not parquet"), "cannot parse as PARQUET"),
])
def test_spreadsheets_and_broken_parquet_are_one_clear_line(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(WarmstartError, match=message) as e:
        load_documents([str(path)])
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_parquet_is_a_table_as_csv_is(tmp_path):
    """The hub's own format: a labelled table, a corpus source, a prediction input."""
    frame = pd.DataFrame({"text": ["first doc\nits second line", "second doc"], "label": ["a", "b"]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert read_table(str(tmp_path / "t.parquet")).equals(read_table(str(tmp_path / "t.csv")))
    assert load_documents([str(tmp_path / "t.parquet")]) == [["first doc", "its second line"], ["second doc"]]


def test_missing_text_column_names_the_columns(tmp_path):
    pd.DataFrame({"review": ["x"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(WarmstartError, match="no column 'text' \\(columns: review\\)"):
        load_documents([str(tmp_path / "t.csv")])


def test_no_sources():
    with pytest.raises(WarmstartError, match="corpus.sources is empty"):
        load_documents([])


def test_a_single_100_mb_line_is_cut_into_bounded_segments(tmp_path):
    from warmstart.data.sources import MAX_SEGMENT_CHARS

    words = ("lorem ipsum dolor sit amet " * 4_000_000)[:100_000_000]
    (tmp_path / "one_line.txt").write_text(words + "\n", encoding="utf-8")
    docs = load_documents([str(tmp_path / "one_line.txt")])
    segments = [s for d in docs for s in d]
    assert max(map(len, segments)) <= MAX_SEGMENT_CHARS
    assert sum(map(len, segments)) + len(segments) - 1 == len(words.strip())  # cut at spaces, nothing lost


def test_hub_corpus_is_streamed(monkeypatch):
    """A hub id is read with `streaming=True`, a batch of rows at a time, never loaded whole."""
    import datasets

    calls = {}

    def fake_load_dataset(source, streaming=False, **kwargs):
        calls.update(source=source, streaming=streaming)
        rows = datasets.Dataset.from_dict({"body": ["first doc\nsecond line", None, "", "third"]})
        return datasets.IterableDatasetDict({"train": rows.to_iterable_dataset()})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_documents(["someone/corpus"], text_column="body") == [["first doc", "second line"], ["third"]]
    assert calls == {"source": "someone/corpus", "streaming": True}
    with pytest.raises(WarmstartError, match="no column 'text' \\(columns: body\\)"):
        load_documents(["someone/corpus"])


def test_split_sidecar_groups_documents_and_drops_excluded_splits(tmp_path):
    """papers.txt + papers.ids.tsv (id<TAB>split per line): a document per id; test papers can be left out."""
    (tmp_path / "papers.txt").write_text("a1\na2\nb1\nc1\nc2\n", encoding="utf-8")
    (tmp_path / "papers.ids.tsv").write_text("A\ttrain\nA\ttrain\nB\ttest\nC\tvalidation\nC\tvalidation\n",
                                             encoding="utf-8")
    assert load_documents([str(tmp_path / "papers.txt")]) == [["a1", "a2"], ["b1"], ["c1", "c2"]]
    kept = list(iter_corpus([str(tmp_path)], exclude_splits=("validation", "test")))  # a folder: sidecar not a source
    assert kept == [["a1", "a2"]]
    (tmp_path / "papers.ids.tsv").write_text("A\ttrain\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match="expected one 'id<TAB>split' line per line of papers.txt"):
        load_documents([str(tmp_path / "papers.txt")])
    (tmp_path / "other.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match="no source has a split sidecar"):
        list(iter_corpus([str(tmp_path / "other.txt")], exclude_splits=("test",)))


def test_gzip_suffixes_in_any_case(tmp_path):
    import gzip

    for name in ("a.TXT.GZ", "b.txt.Gz", "c.gz"):
        with gzip.open(tmp_path / name, "wt", encoding="utf-8") as f:
            f.write("first line\nsecond line\n\nnext document\n")
        assert load_documents([str(tmp_path / name)]) == [["first line", "second line"], ["next document"]]


def test_a_long_line_without_spaces_is_cut_into_words_with_a_warning(tmp_path, capsys):
    from warmstart.data.sources import MAX_SEGMENT_CHARS, MAX_WORD_CHARS

    blob = "x" * (3 * MAX_SEGMENT_CHARS + 7)  # base64-like: no space to cut at
    (tmp_path / "blob.txt").write_text("a normal line\n" + blob + "\n", encoding="utf-8")
    segments = [s for d in load_documents([str(tmp_path / "blob.txt")]) for s in d]
    assert segments[0] == "a normal line"
    assert "".join(s.replace(" ", "") for s in segments[1:]) == blob  # nothing lost
    assert max(len(w) for s in segments[1:] for w in s.split()) <= MAX_WORD_CHARS
    assert "3 stretches of 20,000 characters without a space were cut" in capsys.readouterr().err


@pytest.mark.parametrize("content, columns, last", [
    ("text,label\ngood film,1\n", ["text", "label"], "good film"),
    ("text;label\ngood film, truly;1\n", ["text", "label"], "good film, truly"),  # Excel where ',' marks decimals
    ("text\nwell; fine\n", ["text"], "well; fine"),  # one column whose cells hold ';': its header has none
    # some cells with commas, some without: read with ',' this broke at the first row of another width
    ("text;label\nplain;0\ngood film, truly;1\nbad, bad, bad;0\n", ["text", "label"], "bad, bad, bad"),
    ("text\tlabel\ngood, film\t1\n", ["text", "label"], "good, film"),  # a tab-separated file named .csv
    ('"a; b",label\n"x; y",1\n', ["a; b", "label"], "x; y"),  # ';' inside a quoted header name: a tie goes to ','
])
def test_a_csv_is_read_with_commas_or_excels_semicolons(content, columns, last, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(content, encoding="utf-8")
    table = read_table(str(path))
    assert list(table.columns) == columns and len(table) == content.count("\n") - 1
    assert table.iloc[-1, 0] == last
