"""`warmstart predict CHECKPOINT --input FILE`: batch inference with any fine-tuned checkpoint.

The checkpoint's `warmstart_config.yaml` says which task it was trained for and how (pooling, max length,
columns, summary budget); the task registry gives that task's predictor, so predictions match the fine-tuning
run's. A plain HF folder works too: a sequence classifier (pooling `cls`), or an image classifier, recognised
by its preprocessor config. Output is CSV or JSONL by the output's suffix, written to a temporary file and
renamed into place; the input's own columns (ids) are kept beside the predictions.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from warmstart.config import CONFIG_FILENAME, load_config, peek
from warmstart.engine.checkpoint import require_weights
from warmstart.engine.outputs import replace_file
from warmstart.engine.partial import KeptChunks, files_key, partial_path
from warmstart.engine.runtime import set_threads
from warmstart.errors import WarmstartError
from warmstart.tasks.registry import (
    PredictRequest,
    Task,
    fitted,
    fitted_tokenizer,
    get,
    plain_checkpoint_task,
)


def checkpoint_task(folder: Path) -> tuple[Task, object]:
    """-> (the task a checkpoint was fine-tuned for, its saved config (defaults for a plain HF folder))"""
    from warmstart.engine.outputs import kind_of

    if kind_of(folder) == "pretrain":
        raise WarmstartError(f"{folder}: a pretrained encoder, not a fine-tuned model: it has no task head to "
                             "predict with; fine-tune it first (warmstart finetune ... init=FOLDER)")
    saved = folder / CONFIG_FILENAME
    task = get(str(peek(saved if saved.is_file() else None, (), "task") or plain_checkpoint_task(folder)))
    return task, load_config(task.config, saved if saved.is_file() else None)


PREDICTION_COLUMNS = ("prediction", "best", "selected")  # what every task's predictor writes (one of)


def written_by_predict(path: Path, columns: list[str] | None = None) -> bool:
    """Whether `path` may hold predictions warmstart wrote: a CSV header or a first JSONL record with a prediction
    column (checked before predicting) and, given the `columns` about to be written, exactly those (checked before
    writing: a user's own table with a `prediction` column, say a labelling tool's export, is not replaced by
    predictions of another shape). A CoNLL file cannot tell (a user's labelled file looks the same): never."""
    if path.suffix.lower() not in (".csv", ".jsonl"):
        return False
    header = first_header(path)
    if header is None or not set(header) & set(PREDICTION_COLUMNS):
        return False
    return columns is None or header == [str(c) for c in columns]


def first_header(path: Path) -> list[str] | None:
    """The columns of a CSV's header or of a JSONL file's first record, in order (None: unreadable, or neither)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
        if path.suffix.lower() == ".csv":
            return next(csv.reader([first]), [])
        record = json.loads(first)
        return list(record) if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None


def output_path(src: Path | None, output: str | None, also: str | None = None, overwrite: bool = False) -> Path:
    """Where predictions go (default `<input>.predictions.csv`): a .csv or .jsonl file (or the task's own format,
    suffix `also`: a token classifier's .conll), never a folder or the input itself, nor an existing file that is
    not predictions warmstart wrote unless `overwrite` (`--output train.csv` for `test.csv` would have replaced
    the labels); a missing parent folder is created. `src` None: rows given in memory (`output` is needed)."""
    out = Path(output) if output else src.with_name(src.name + ".predictions.csv")
    suffixes = (".csv", ".jsonl", *([also] if also else []))
    if out.suffix.lower() not in suffixes:
        raise WarmstartError(f"{out}: output must end in {', '.join(suffixes[:-1])} or {suffixes[-1]}")
    if out.is_dir():
        raise WarmstartError(f"{out}: a folder; give --output a file name ending in .csv or .jsonl")
    if out.exists() and src is not None and src.exists() and out.resolve() == src.resolve():
        raise WarmstartError(f"{out}: that is the input file; predictions must not overwrite it: give another --output")
    if out.is_file() and not overwrite and not written_by_predict(out):
        raise WarmstartError(f"{out}: exists and is not predictions warmstart wrote; give another --output, or "
                             "--overwrite to replace it")
    if out.parent.exists() and not out.parent.is_dir():
        raise WarmstartError(f"{out.parent}: not a folder; give --output a file in a folder")
    return out


Rows = pd.DataFrame | list | tuple  # rows in memory: a DataFrame, dicts, texts, (text, pair) tuples, word lists


class Predictor:
    """A fine-tuned checkpoint, loaded once, predicting a file or rows in memory, as `warmstart predict` does
    (same task predictor, same rows). The model and tokenizer are kept between calls: a notebook loop or a
    service pays the load once, as with transformers' `pipeline` or `SetFitModel.predict`.

        p = Predictor("runs/ft")
        p.predict(["a gripping film", "dull"])          # -> DataFrame: text, prediction, prob_<class>...
        p.predict(pd.DataFrame({"id": [7], "text": ["fine"]}))   # the rows' own columns stay beside
    """

    def __init__(self, checkpoint: str | Path) -> None:
        self.folder = require_weights(str(checkpoint))
        self.task, self.config = checkpoint_task(self.folder)
        self._models: dict = {}
        self._tokenizer = None

    def _load(self, auto_class, folder: Path, **kwargs):
        key = (auto_class.__name__, tuple(sorted(kwargs.items())))
        if key not in self._models:
            self._models[key] = fitted(auto_class, folder, **kwargs)
        return self._models[key]

    def _tokenizer_of(self, folder: Path):
        if self._tokenizer is None:
            self._tokenizer = fitted_tokenizer(folder)
        return self._tokenizer

    def predict(self, rows: Rows | str | Path, *, text_column: str | None = None,
                text_pair_column: str | None = None, batch_size: int = 64, progress: bool = False) -> pd.DataFrame:
        """Predict `rows`: a file (any input `warmstart predict` reads), or rows in memory: a DataFrame or dicts
        (the columns a file would have), texts, (text, pair) tuples for a pair classifier, or word lists for a
        token classifier. -> one row of predictions per input row, the input's own columns first."""
        if isinstance(rows, str) and not Path(rows).exists():  # a text, or a mistyped path: neither is guessed
            raise WarmstartError(f"{rows[:80]!r}: no such file; to predict texts, give a list: predict([text, ...])")
        if isinstance(rows, (str, Path)):
            if not Path(rows).exists():
                raise WarmstartError(f"{rows}: input file not found")
            return self.predict_file(Path(rows), text_column, text_pair_column, batch_size, progress)[0]
        import tempfile

        table = self._table(rows, text_column, text_pair_column)
        with tempfile.TemporaryDirectory(prefix="warmstart-predict-") as tmp:
            src = Path(tmp) / "rows.jsonl"
            table.to_json(src, orient="records", lines=True, force_ascii=False)
            try:
                return self.predict_file(src, text_column, text_pair_column, batch_size, progress)[0]
            except WarmstartError as e:  # the message names the temporary file: name what the user gave
                raise WarmstartError(str(e).replace(str(src), "the rows given").replace("pass --text-column",
                                                                                        "pass text_column=")) from None

    def predict_file(self, src: Path, text_column: str | None, text_pair_column: str | None, batch_size: int,
                     progress: bool, chunks: KeptChunks | None = None) -> tuple[pd.DataFrame, float]:
        """-> (the rows predicted, when predicting began: after the model loaded). `chunks`: where each chunk's
        predictions are kept as they finish (a file's `warmstart predict`: resumable); None: nowhere."""
        if batch_size < 1:
            raise WarmstartError(f"--batch-size={batch_size}: must be at least 1")
        set_threads(None)
        bars, began = [], []

        def progress_bar(total: int):
            began.append(time.perf_counter())  # the model is loaded: predicting starts
            if not progress:
                return lambda n: None
            bars.append(tqdm(total=total, desc="predict", unit=" rows", mininterval=0.5 if os.isatty(2) else 10))
            return bars[-1].update

        try:
            result = self.task.resolve("predict")(self.folder, self.config, PredictRequest(
                src, text_column, text_pair_column, batch_size, progress_bar, self._load, self._tokenizer_of,
                chunks or KeptChunks(None)))
        finally:
            for bar in bars:
                bar.close()
        if result.empty:
            raise WarmstartError(f"{src}: no inputs to predict")
        return result, began[0] if began else time.perf_counter()

    def _table(self, rows: Rows, text_column: str | None, text_pair_column: str | None) -> pd.DataFrame:
        """Rows in memory -> the table a file of them would hold (columns named as the model was trained)."""
        data = self.config.data
        if not hasattr(data, "text_column"):
            raise WarmstartError(f"{self.folder}: an image classifier predicts image files: give a folder, IDX, "
                                 ".npy/.npz file or dataset path")
        if isinstance(rows, pd.DataFrame):
            return rows.reset_index(drop=True)
        rows = list(rows)
        if not rows:
            raise WarmstartError("predict: no rows given")
        text = text_column or data.text_column
        if all(isinstance(r, dict) for r in rows):
            return pd.DataFrame(rows)
        if all(isinstance(r, str) for r in rows):
            return pd.DataFrame({text: rows})
        pair = text_pair_column or getattr(data, "text_pair_column", None)  # a model fitted on pairs reads pairs
        if pair and all(isinstance(r, (list, tuple)) and len(r) == 2 for r in rows):
            return pd.DataFrame({text: [str(a) for a, _ in rows], pair: [str(b) for _, b in rows]})
        words = data.tokens_column if self.task.rank_features == "words" else None  # a tag a word: word lists
        if words and all(isinstance(r, (list, tuple)) for r in rows):
            return pd.DataFrame({words: [[str(w) for w in r] for r in rows]})
        kinds = "texts, dicts, a DataFrame" + (", word lists" if words else "") + (", (text, pair) tuples" if pair
                                                                                   else "")
        raise WarmstartError(f"predict: rows of {type(rows[0]).__name__}: give {kinds}")


def run_predict(checkpoint: str, input_path: str, output: str | None = None, text_column: str | None = None,
                text_pair_column: str | None = None, batch_size: int = 64, overwrite: bool = False) -> Path:
    """Predict every row of `input_path`; returns the output file (default `<input>.predictions.csv`)."""
    return predict_rows(checkpoint, input_path, output, text_column, text_pair_column, batch_size, overwrite)[0]


def predict_rows(checkpoint: str, input_path: str, output: str | None = None, text_column: str | None = None,
                 text_pair_column: str | None = None, batch_size: int = 64, overwrite: bool = False
                 ) -> tuple[Path, pd.DataFrame]:
    """`run_predict`, also returning the rows as predicted (list cells as lists, whatever the file's format)."""
    predictor = Predictor(checkpoint)
    src = Path(input_path.rstrip("/") if isinstance(input_path, str) else input_path)
    if not src.exists():
        raise WarmstartError(f"{src}: input file not found")
    out = output_path(src, output, predictor.task.text_output[0] if predictor.task.text_output else None, overwrite)
    t0 = time.perf_counter()
    # each chunk's predictions kept beside the output as it finishes (engine/partial.py): a killed run on a large
    # file resumes; the key is what they depend on: the checkpoint's files, the input's, how they are read
    # (the batch's padding moves bf16 results in their last bits; a classifier's chunks count distinct texts since
    # 2026-12-07, so a sibling kept before, whose chunks counted rows, is not read as these)
    settings = {"task": predictor.task.name, "text_column": text_column, "text_pair_column": text_pair_column,
                "batch_size": batch_size, "chunks_of": "distinct inputs"}
    kept = KeptChunks(partial_path(out), files_key(settings, [predictor.folder, src]), "warmstart predict")
    result, began = predictor.predict_file(src, text_column, text_pair_column, batch_size, True, kept)
    written = save_rows(predictor.task, result, out, overwrite, t0, began, kept.restored)
    partial_path(out).unlink(missing_ok=True)
    return written, result


def save_rows(task: Task, result: pd.DataFrame, out: Path, overwrite: bool, t0: float, began: float,
              restored: int = 0) -> Path:
    """Write a predictor's rows to `out` (checked by `output_path`) in its format: list cells as JSON text in a
    CSV, the task's own text format by suffix (a token classifier's .conll)."""
    written = result
    if out.suffix.lower() == ".csv":  # list cells (tokens, tags, candidates, scores) as JSON text
        written = result.apply(lambda col: col.map(lambda v: json.dumps(v, ensure_ascii=False)
                                                   if isinstance(v, list) else v))
    text = task.resolve("text_output") if task.text_output and out.suffix.lower() == task.text_output[0] else None
    if out.is_file() and not overwrite and not written_by_predict(out, list(written.columns)):
        raise WarmstartError(f"{out}: holds other columns ({', '.join(first_header(out) or [])[:200]}) than these "
                             f"predictions ({', '.join(map(str, written.columns))[:200]}); give another --output, "
                             "or --overwrite to replace it")
    return write_rows(written, out, t0, began, text, restored)


def write_rows(result: pd.DataFrame, out: Path, t0: float, began: float, text=None, restored: int = 0) -> Path:
    """CSV or JSONL by suffix (or `text(result)` -> the file's text), through a temporary file renamed into place
    (removed if writing fails); prints the time from `t0` and the rows/s from `began` (after loading the model:
    the rate a longer file gets; the `restored` rows, read back from a stopped run, are not counted in it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    jsonl = out.suffix.lower() == ".jsonl"

    def write(tmp) -> None:
        if text is not None:
            Path(tmp).write_text(text(result), encoding="utf-8")
        elif jsonl:
            result.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            result.to_csv(tmp, index=False)

    try:
        replace_file(out, write)
    except OSError as e:
        raise WarmstartError(f"{out}: cannot write the predictions ({e.strerror or e})") from None
    now = time.perf_counter()
    again = f"; {restored:,} read back from a stopped run" if restored else ""
    print(f"warmstart predict: {len(result):,} rows in {now - t0:.1f} s (the model loaded in {began - t0:.1f} s, then "
          f"{(len(result) - restored) / max(now - began, 1e-9):,.0f} rows/s{again}) -> {out}")
    return out
