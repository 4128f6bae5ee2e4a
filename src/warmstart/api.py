"""The Python API, the front door: `warmstart.auto`, `pretrain`, `finetune`, `predict`, `rank`, `study`, `demo`.

Each takes a recipe (a YAML path, the name of a bundled recipe such as "bert", or a config object) plus
overrides as keyword arguments, checks everything before any work starts, and returns a result object; errors
are `WarmstartError` (one line), never `sys.exit`. The CLI (cli.py) is a thin layer over these functions.

    import warmstart
    pre = warmstart.pretrain("bert", output_dir="runs/bert", train={"max_minutes": 5})
    run = warmstart.finetune("sentiment", init=pre.output_dir, data={"labels": 100})
    print(run.metrics["accuracy"]); model = run.load_model()
    preds = warmstart.predict(run.output_dir, "reviews.csv").rows
    run.predictor().predict(["a gripping film"])  # warmstart.Predictor: rows in memory, the model loaded once

Keyword overrides: a section as a dict (`train={"lr": 1e-3}`), a dotted key through `__`
(`train__lr=1e-3`), or a top-level key (`output_dir="runs/x"`); `overrides=["train.lr=1e-3"]` takes the CLI's
strings. Heavy modules are imported inside the functions, so `import warmstart` stays quick.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def values_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword overrides -> {dotted key: value}: `train={"lr": 1e-3}` and `train__lr=1e-3` both give
    {"train.lr": 1e-3}; a dict given to a key that is not a section stays a value (the study's `tasks`)."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        key = key.replace("__", ".")
        if isinstance(value, dict) and key.split(".")[0] in ("corpus", "tokenizer", "model", "objective", "train",
                                                              "data", "forgetting"):
            for k, v in value.items():  # a section's sub-sections too (train={"lora": {"r": 4}})
                out.update(values_of({f"{key}.{k}": v}) if isinstance(v, dict) else {f"{key}.{k}": v})
        else:
            out[key] = value
    return out


@dataclass
class Result:
    """A finished run: its folder, its metrics (metrics.json) and the config it ran with."""

    output_dir: Path
    metrics: dict
    config: Any

    def load_model(self, auto_class: Any = None):
        """The run's checkpoint as a `transformers` model (default: the class its config.json names)."""
        from transformers import AutoModel

        from warmstart.models.common import load_pretrained

        return load_pretrained(auto_class or AutoModel, self.output_dir)

    def predictor(self):
        """The fine-tuned model, loaded once, predicting files or rows in memory (`warmstart.Predictor`)."""
        from warmstart.prediction import Predictor

        return Predictor(self.output_dir)


@dataclass
class PredictResult:
    path: Path | None  # the written file (None: rows given in memory and no `output`)
    rows: Any  # the predictions as a pandas DataFrame


@dataclass
class TableResult:
    """`rank` and `study`: a results table and where it was written (plus the study's report page)."""

    table: Any
    path: Path
    report: Path | None = None
    extra: dict = field(default_factory=dict)


def _metrics(folder: Path) -> dict:
    path = folder / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def pretrain(config: Any = None, *, resume: bool = False, overwrite: bool = False, overrides: list[str] = (),
             allow_download: bool = False, **kwargs: Any) -> Result:
    """Pretrain an encoder (text: MLM/NSP, ELECTRA; images: SimCLR, autoencoder) into a standard HF folder.
    `model.init` may be a hub id (`org/name`): its cached copy, downloaded only with `allow_download`."""
    from warmstart.config import recipe_path
    from warmstart.models.hub import downloads, resolve_config_checkpoints
    from warmstart.pretraining.recipes import load_pretrain_config, run_pretraining

    source = config if dataclasses.is_dataclass(config) else recipe_path(config, "pretrain")
    cfg = load_pretrain_config(source, overrides, values_of(kwargs))
    with downloads(allow_download):
        resolve_config_checkpoints(cfg)
    out = run_pretraining(cfg, resume=resume, overwrite=overwrite)
    return Result(Path(out), _metrics(Path(out)), cfg)


def load_finetune_config(config: Any = None, overrides: list[str] = (), **kwargs: Any):
    """-> (task, its config): the recipe's declared task decides the config class (tasks/registry.py)."""
    from warmstart.config import load_config, recipe_path
    from warmstart.tasks.registry import get, load_task_config

    values = values_of(kwargs)
    if dataclasses.is_dataclass(config):
        task = get(values.get("task", config.task))
        return task, load_config(task.config, config, list(overrides), values)
    return load_task_config(recipe_path(config, "finetune"), list(overrides), values)


def finetune(config: Any = None, *, resume: bool = False, overwrite: bool = False, overrides: list[str] = (),
             allow_download: bool = False, **kwargs: Any) -> Result:
    """Fine-tune a checkpoint (or scratch) on a task; returns the test metrics and the run folder. `resume`:
    continue a stopped run from the state it saved every `train.save_every_minutes`. `model.init` may be a hub
    id, downloaded only with `allow_download`."""
    from warmstart.models.hub import downloads, resolve_config_checkpoints
    from warmstart.tasks.registry import run_task

    _, cfg = load_finetune_config(config, overrides, **kwargs)
    with downloads(allow_download):
        resolve_config_checkpoints(cfg)
    metrics = run_task(cfg, overwrite=overwrite, resume=resume)
    return Result(Path(cfg.output_dir), metrics, cfg)


def predict(checkpoint: str | Path, input: Any, output: str | Path | None = None, *,
            text_column: str | None = None, text_pair_column: str | None = None, batch_size: int = 64,
            overwrite: bool = False) -> PredictResult:
    """Predict every row of `input` with a fine-tuned checkpoint, and return the rows as a DataFrame (list cells as
    lists). `input`: a file, written to `output` (CSV, JSONL or, for a token classifier, CoNLL by suffix; default
    INPUT.predictions.csv); or rows in memory (texts, dicts, a DataFrame, (text, pair) tuples, word lists:
    `prediction.Predictor`), written only where `output` is given. An existing `output` that is not
    predictions warmstart wrote is refused unless `overwrite`. To predict many times with one load, use
    `warmstart.Predictor(checkpoint).predict(rows)`."""
    import time

    from warmstart.prediction import Predictor, output_path, predict_rows, save_rows

    if isinstance(input, (str, Path)):
        path, rows = predict_rows(str(checkpoint), str(input), None if output is None else str(output), text_column,
                                  text_pair_column, batch_size, overwrite)
        return PredictResult(path, rows)
    predictor = Predictor(checkpoint)
    also = predictor.task.text_output[0] if predictor.task.text_output else None
    out = None if output is None else output_path(None, str(output), also, overwrite)  # checked before predicting
    t0 = time.perf_counter()
    rows = predictor.predict(input, text_column=text_column, text_pair_column=text_pair_column,
                             batch_size=batch_size)
    return PredictResult(out and save_rows(predictor.task, rows, out, overwrite, t0, t0), rows)


def rank(task: Any, candidates: list[str | Path], *, output: str | Path | None = None,
         scores: list[str] | None = None, overrides: list[str] = (), allow_download: bool = False,
         **kwargs: Any) -> TableResult:
    """Score candidate checkpoints (folders, or hub ids downloaded only with `allow_download`) for a task from
    frozen features, before fine-tuning any (select/rank.py)."""
    from warmstart.models.hub import resolve_checkpoint
    from warmstart.select.rank import rank_candidates

    _, cfg = load_finetune_config(task, overrides, **kwargs)
    out = Path(output) if output else Path("rank.csv")
    folders = [resolve_checkpoint(str(c), allow_download, "--candidates") for c in candidates]
    table = rank_candidates(cfg, folders, out, scores)
    return TableResult(table, out)


def study(config: Any, *, overwrite: bool = False, overrides: list[str] = (), allow_download: bool = False,
          **kwargs: Any) -> TableResult:
    """Run a resumable study grid with its baselines; returns results.csv as a table and the report page.
    `inits` may name hub ids, downloaded only with `allow_download`."""
    from warmstart.config import StudyConfig, load_config, recipe_path
    from warmstart.models.hub import downloads
    from warmstart.studies.grid import run_study

    source = config if dataclasses.is_dataclass(config) else recipe_path(config, "study")
    cfg = load_config(StudyConfig, source, list(overrides), values_of(kwargs))
    with downloads(allow_download):
        table = run_study(cfg, overwrite=overwrite)
    root = Path(cfg.output_dir)
    return TableResult(table, root / "results.csv", root / "report.html")


def demo(output_dir: str | Path = "runs/demo", pretrain_minutes: float | None = None,
         labels: list[int] | None = None, seeds: int | None = None, overwrite: bool = False,
         adapt_minutes: float | None = None) -> TableResult:
    """The whole promise on bundled data: pretrain, adapt MiniLM, fine-tune against the rivals, report."""
    from warmstart.studies.demo import run_demo

    table = run_demo(str(output_dir), pretrain_minutes, labels, seeds, overwrite=overwrite,
                     adapt_minutes=adapt_minutes)
    return TableResult(table, Path(output_dir) / "results.csv", Path(output_dir) / "report.md")


@dataclass
class AutoResult:
    """`auto`: the delivered model folder, the report page, and the verdict (auto.json) as a dict."""

    model_dir: Path
    report: Path
    verdict: dict

    def predictor(self):
        """The delivered model, loaded once, predicting files or rows in memory (`warmstart.Predictor`)."""
        from warmstart.prediction import Predictor

        return Predictor(self.model_dir)


def auto(labelled: str | Path, *, unlabelled: list[str | Path] = (), candidates: list[str | Path] = (),
         budget: str | float = "30m", output_dir: str | Path = "runs/auto", labels: int | None = None,
         per_class: int | None = None, seed: int = 0, text_column: str = "text", label_column: str = "label",
         label_separator: str | None = None, label_columns: list[str] | None = None, allow_download: bool = False,
         overwrite: bool = False, metric: str = "accuracy") -> AutoResult:
    """From a labelled table (and unlabelled text) to the best model in `budget` ('30m', '1h', or minutes), a
    verdict and a model folder (autopilot/run.py). Running it again on the same `output_dir` resumes it. A label
    cell holding a list (or `label_separator`-joined labels, or `label_columns` of 0/1) makes it multi-label:
    micro-F1 decides, the model predicts sets. `metric` "balanced_accuracy" (one label a text): the mean of the
    classes' recalls decides, and every fit weighs the classes alike (a skewed table whose rare classes matter)."""
    from warmstart.autopilot.run import run_auto
    from warmstart.models.hub import downloads

    with downloads(allow_download):
        result = run_auto(str(labelled), [str(u) for u in unlabelled], [str(c) for c in candidates], budget,
                          str(output_dir), labels, per_class, seed, text_column, label_column, allow_download,
                          overwrite, label_separator=label_separator, label_columns=label_columns, metric=metric)
    return AutoResult(Path(output_dir) / "model", Path(output_dir) / "report.html", result)
