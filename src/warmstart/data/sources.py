"""Raw inputs -> documents (unlabelled text) or a labelled table (fine-tuning).

A *document* is a list of segments (lines or sentences) in reading order; NSP pairs are drawn from
consecutive segments of one document. Sources:
  - text files (`.txt`, `.md`, `.gz` of those, anything else read as text): documents are separated by
    blank lines; each non-blank line is a segment. A folder is read file by file, sorted by path.
  - `.csv` / `.tsv` / `.jsonl` / `.json`: each row's text column is one document.
  - a Hugging Face `save_to_disk` folder, or a hub id (`org/name`), with a text column.
"""

from __future__ import annotations

import gzip
import json
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from warmstart.errors import WarmstartError

if TYPE_CHECKING:  # pandas is imported where a table is read: a text corpus's pretraining processes never need it
    import pandas as pd

Document = list[str]
TABLE_SUFFIXES = {".csv", ".tsv", ".jsonl", ".json", ".parquet"}  # parquet: the hub's own format
SPREADSHEETS = {".xlsx", ".xls", ".xlsm", ".ods", ".numbers"}
HF_FOLDER_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")


def read_text_file(path: Path) -> str:
    """A text file's (or .gz's) UTF-8 text; a binary file, a spreadsheet or other encodings in one line."""
    if path.suffix.lower() in SPREADSHEETS:
        raise WarmstartError(f"{path}: a spreadsheet, which is not read; save it as CSV (UTF-8) and give that")
    try:
        if path.suffix.lower() == ".gz":  # .gz, .GZ, .txt.Gz: gzip whatever the case
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise WarmstartError(f"{path}: cannot read it ({type(e).__name__}: {e}); check the file (a truncated .gz?)") from None
    if b"\x00" in raw[:8192]:
        raise WarmstartError(f"{path}: looks like a binary file (NUL bytes), not text; give text, or a table "
                             "(.csv, .tsv, .jsonl, .json, .parquet)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WarmstartError(
            f"{path}: not valid UTF-8 at byte {e.start}; re-encode it (e.g. iconv -f latin1 -t utf-8)"
        ) from None


MAX_SEGMENT_CHARS = 20_000
MAX_WORD_CHARS = 100  # WordPiece reads a longer run of non-space characters as one [UNK]


def _cut_long_line(line: str, cut_runs: list[int] | None = None) -> Iterator[str]:
    """A line longer than 20,000 characters (a file with no line breaks) is cut at spaces into segments of at
    most that length, so that tokenising it stays bounded; nothing is dropped. A stretch with no space to cut at
    is split into 100-character words (counted in `cut_runs`), which a tokenizer reads as pieces instead of
    one unknown word."""
    pos = 0
    while len(line) - pos > MAX_SEGMENT_CHARS:
        cut = line.rfind(" ", pos + MAX_SEGMENT_CHARS // 2, pos + MAX_SEGMENT_CHARS)
        if cut > 0:
            yield line[pos:cut]
            pos = cut + 1
            continue
        piece = line[pos:pos + MAX_SEGMENT_CHARS]
        if cut_runs is not None:
            cut_runs[0] += 1
        yield " ".join(piece[i:i + MAX_WORD_CHARS] for i in range(0, len(piece), MAX_WORD_CHARS))
        pos += MAX_SEGMENT_CHARS
    if pos < len(line):
        yield line[pos:]


def split_documents(text: str, where: str = "", line_by_line: bool = False) -> Iterator[Document]:
    """Blank lines separate documents; each other line is one segment (very long lines are cut). With
    `line_by_line` each non-blank line is a document of its own (reviews, tweets: one text a line), as
    `--line_by_line` in transformers' run_mlm.py."""
    doc: Document = []
    cut_runs = [0]
    for line in text.splitlines():
        line = line.strip()
        if len(line) > MAX_SEGMENT_CHARS:
            doc.extend(_cut_long_line(line, cut_runs))
        elif line:
            doc.append(line)
        if (not line or line_by_line) and doc:
            yield doc
            doc = []
    if doc:
        yield doc
    if cut_runs[0]:
        print(f"warning: {where or 'corpus'}: {cut_runs[0]} stretches of {MAX_SEGMENT_CHARS:,} characters without a "
              f"space were cut into {MAX_WORD_CHARS}-character words (a tokenizer would read each as one unknown "
              "word); is this text?", file=sys.stderr)


def _is_hf_folder(path: Path) -> bool:
    return path.is_dir() and any((path / m).exists() for m in HF_FOLDER_MARKERS)


def looks_like_hub_id(source: str) -> bool:
    p = Path(source)
    return not source.startswith((".", "/", "~")) and p.suffix == "" and source.count("/") <= 1


def load_hf_dataset(source: str, split: str | None = "train", streaming: bool = False):
    """A `save_to_disk` folder (memory-mapped) or a hub id -> a `datasets.Dataset` (or DatasetDict when split
    is None); with `streaming`, a hub dataset is an `IterableDataset` read as it downloads."""
    import datasets

    path = Path(source)
    if _is_hf_folder(path):
        ds = datasets.load_from_disk(str(path))
    else:
        try:
            ds = datasets.load_dataset(source, streaming=streaming)
        except Exception as e:  # offline, unknown id, ...: one line for the user
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise WarmstartError(f"{source}: not a file, folder or loadable Hugging Face dataset ({msg})") from None
    if split is not None and isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if split not in ds:
            raise WarmstartError(f"{source}: has no '{split}' split (found {', '.join(ds)})")
        ds = ds[split]
    return ds


def read_table(source: str) -> pd.DataFrame:
    """CSV / TSV / JSONL / JSON / Parquet / HF dataset -> DataFrame (all splits, with a `split` column for HF
    dicts)."""
    import pandas as pd

    path = Path(source)
    suffix = path.suffix.lower()
    if path.is_file():
        try:
            if suffix in (".csv", ".tsv"):
                return pd.read_csv(path, sep="\t" if suffix == ".tsv" else _csv_separator(path), encoding="utf-8")
            if suffix in (".jsonl", ".json"):
                return pd.read_json(path, lines=suffix == ".jsonl", encoding="utf-8")
            if suffix == ".parquet":  # pyarrow comes with datasets; a parquet file holds data, never code
                return pd.read_parquet(path)
        except UnicodeDecodeError as e:
            raise WarmstartError(f"{path}: not valid UTF-8 at byte {e.start}; re-encode it as UTF-8") from None
        except (ValueError, pd.errors.ParserError) as e:
            raise WarmstartError(f"{path}: cannot parse as {suffix[1:].upper()} ({str(e).splitlines()[0]})") from None
        if suffix in SPREADSHEETS:
            raise WarmstartError(f"{path}: a spreadsheet, which is not read; save it as CSV (UTF-8) and give that")
        raise WarmstartError(f"{path}: unsupported table format '{suffix}'; use .csv, .tsv, .jsonl, .json or .parquet")
    if path.exists() and not _is_hf_folder(path):
        raise WarmstartError(f"{path}: a folder, but not a Hugging Face save_to_disk dataset")
    if not path.exists() and not looks_like_hub_id(source):
        raise WarmstartError(f"{path}: file not found")
    import datasets

    ds = load_hf_dataset(source, split=None)
    if isinstance(ds, datasets.DatasetDict):
        return pd.concat([d.to_pandas().assign(split=name) for name, d in ds.items()], ignore_index=True)
    return ds.to_pandas()


def _csv_separator(path: Path) -> str:
    """The separator of a .csv file: the one its header line holds most of among ',', ';' and tab (',' on a
    tie, or with none). Excel's CSV where the decimal mark is a comma (most of Europe) separates with ';', and
    a review holding commas then breaks a ','-read row ("Expected 1 fields in line 3, saw 2")."""
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    return max((",", ";", "\t"), key=header.count)


def class_names(source: str, column: str) -> list[str] | None:
    """The names of an HF dataset's integer label column: a `ClassLabel` (one label a row) or a sequence of them
    (several a row, or a tag a word), as `run_glue` reads them into `id2label`; None for a file or plain values."""
    path = Path(source)
    if path.is_file() or (not _is_hf_folder(path) and (path.exists() or not looks_like_hub_id(source))):
        return None
    import datasets

    ds = load_hf_dataset(source, split=None)
    first = next(iter(ds.values())) if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)) else ds
    feature = (first.features or {}).get(column)
    feature = getattr(feature, "feature", feature)  # Sequence(ClassLabel) / List(ClassLabel) -> ClassLabel
    if isinstance(feature, list) and feature:  # datasets writes a list of one feature as [ClassLabel]
        feature = feature[0]
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def _missing_column(where: str, column: str, columns) -> WarmstartError:
    return WarmstartError(f"{where}: no column '{column}' (columns: {', '.join(map(str, columns))}); "
                          "set corpus.text_column")


def _cell_documents(texts) -> Iterator[Document]:
    """Each non-empty cell is one document, its lines the segments."""
    for text in texts:
        if text is None or (isinstance(text, float) and text != text):  # None / NaN
            continue
        doc = [line.strip() for line in str(text).splitlines() if line.strip()]
        if doc:
            yield doc


def _table_documents(df: pd.DataFrame, column: str, where: str) -> Iterator[Document]:
    if column not in df.columns:
        raise _missing_column(where, column, df.columns)
    yield from _cell_documents(df[column])


def _dataset_documents(ds, column: str, where: str) -> Iterator[Document]:
    """An HF dataset read 1,000 rows at a time, so a memory-mapped or streamed corpus is never held whole."""
    for batch in ds.iter(batch_size=1000):
        if column not in batch:
            raise _missing_column(where, column, batch)
        yield from _cell_documents(batch[column])


def split_sidecar(path: Path) -> Path:
    """`papers.txt` -> `papers.ids.tsv`: line i says `document_id<TAB>split` of line i of the text file."""
    return path.with_name(path.name.split(".")[0] + ".ids.tsv")


def _documents_by_id(path: Path, exclude_splits: tuple[str, ...]) -> Iterator[Document]:
    """A text file with a split sidecar: consecutive lines of one id form a document, and documents of an
    excluded split are dropped (a corpus that shares papers with an evaluation set must lose its test papers)."""
    lines = read_text_file(path).splitlines()
    rows = [line.split("\t") for line in read_text_file(split_sidecar(path)).splitlines()]
    if len(rows) != len(lines) or any(len(r) < 2 for r in rows):
        raise WarmstartError(f"{split_sidecar(path)}: expected one 'id<TAB>split' line per line of {path.name} "
                             f"({len(lines)} lines), found {len(rows)}; regenerate it or remove it")
    doc: Document = []
    for i, line in enumerate(lines):
        if i and rows[i][0] != rows[i - 1][0] and doc:
            yield doc
            doc = []
        if rows[i][1].strip() not in exclude_splits and line.strip():
            doc.extend(_cut_long_line(line.strip()))
    if doc:
        yield doc


def iter_documents(source: str, text_column: str = "text", exclude_splits: tuple[str, ...] = (),
                   line_by_line: bool = False) -> Iterator[Document]:
    """Yield the documents of one source (file, folder, table or HF dataset); `line_by_line`: a plain text
    file's lines are documents (see `split_documents`; a table's rows are documents already)."""
    path = Path(source)
    if path.is_file():
        if path.suffix.lower() in TABLE_SUFFIXES:
            yield from _table_documents(read_table(source), text_column, source)
        elif split_sidecar(path).is_file() and path != split_sidecar(path):
            yield from _documents_by_id(path, exclude_splits)
        else:
            yield from split_documents(read_text_file(path), str(path), line_by_line)
        return
    if path.is_dir() and not _is_hf_folder(path):
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and not p.name.endswith(".ids.tsv"))
        if not files:
            raise WarmstartError(f"{path}: folder has no files")
        for f in files:
            yield from iter_documents(str(f), text_column, exclude_splits, line_by_line)
        return
    if not path.exists() and not looks_like_hub_id(source):
        raise WarmstartError(f"{path}: file not found; check corpus.sources")
    yield from _dataset_documents(load_hf_dataset(source, streaming=True), text_column, source)


MAX_SEGMENTS_PER_DOCUMENT = 256


def iter_corpus(sources: list[str], text_column: str = "text", exclude_splits: tuple[str, ...] = (),
                line_by_line: bool = False) -> Iterator[Document]:
    """Stream the documents of all sources, in order, holding one source file's text at a time.
    Raises at the end if there was no text at all. `exclude_splits` drops the documents that a text file's
    split sidecar (`<name>.ids.tsv`) assigns to those splits.

    A document longer than 256 segments (a whole novel with no blank lines) is cut into pieces of 256, so
    that a validation split can hold some of it out and NSP negatives come from elsewhere in the corpus.
    """
    if not sources:
        raise WarmstartError("corpus.sources is empty; give at least one file, folder or dataset")
    if exclude_splits and not any(_has_sidecar(Path(s)) for s in sources):
        raise WarmstartError(f"corpus.exclude_splits={list(exclude_splits)} but no source has a split sidecar "
                             "(<name>.ids.tsv beside <name>.txt, one 'id<TAB>split' line per line)")
    count = 0
    for source in sources:
        for doc in iter_documents(source, text_column, tuple(exclude_splits), line_by_line):
            for i in range(0, len(doc), MAX_SEGMENTS_PER_DOCUMENT):
                count += 1
                yield doc[i:i + MAX_SEGMENTS_PER_DOCUMENT]
    if not count:
        raise WarmstartError(f"{', '.join(sources)}: empty corpus (no non-blank text found)")


def _has_sidecar(path: Path) -> bool:
    if path.is_dir():
        return any(p.name.endswith(".ids.tsv") for p in path.rglob("*.tsv"))
    return path.is_file() and split_sidecar(path).is_file()


@dataclass
class CorpusSources:
    """The corpus as a re-iterable stream: every pass re-reads the sources, so no pass holds the corpus."""

    sources: list[str]
    text_column: str = "text"
    exclude_splits: tuple[str, ...] = ()
    line_by_line: bool = False

    def __iter__(self) -> Iterator[Document]:
        return iter_corpus(self.sources, self.text_column, self.exclude_splits, self.line_by_line)


def load_documents(sources: list[str], text_column: str = "text") -> list[Document]:
    """All documents of all sources as a list (see `iter_corpus`)."""
    return list(iter_corpus(sources, text_column))


def write_jsonl(rows: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_inputs(path: Path, text_column: str, text_pair_column: str | None) -> pd.DataFrame:
    """The rows to predict (a fine-tuned classifier's `warmstart predict`), every input column kept: a table
    (CSV/TSV/JSONL/JSON) with the text column(s), or a text file with one input per line (a blank line keeps its
    row)."""
    if path.suffix.lower() in TABLE_SUFFIXES:
        df = read_table(str(path))
        for col in filter(None, (text_column, text_pair_column)):
            if col not in df.columns:
                raise WarmstartError(f"{path}: no column '{col}' (columns: {', '.join(map(str, df.columns))}); "
                                     "pass --text-column")
        return df
    import pandas as pd

    return pd.DataFrame({text_column: read_text_file(path).splitlines()})
