"""`warmstart study CONFIG`: the grid that answers "did pretraining help, and how many labels did it save?"

tasks x label counts x seeds x initialisations x strategies. Each cell is one fine-tuning run of the task's own
recipe, in its own folder under OUTPUT_DIR/cells/; beside every (task, labels, seed) the classic
no-pretraining model is fitted on the very same labels. The study may pretrain its own checkpoints first
(`pretrain:`, e.g. the same recipe on an in-domain and an unrelated corpus).

Resumable by construction: run folders are published atomically, so a cell's folder either holds its
metrics.json or does not exist; a finished cell is read back, not rerun; a killed pretraining resumes from its
checkpoint-last. results.csv is rewritten (atomically, in grid order) after every cell, so a killed study
continues where it stopped and ends with the same table as an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import yaml

from warmstart.config import CONFIG_FILENAME, StudyConfig, TaskSpec, finished_with, load_config, validate
from warmstart.engine.checkpoint import RESUME_DIR, TRAINING_STATE, atomic_folder
from warmstart.engine.outputs import claim, file_hash, recorded_inputs, replace_file, write_marker
from warmstart.errors import WarmstartError
from warmstart.models.common import minilm_folder
from warmstart.models.hub import HUB_ID, resolve_checkpoint
from warmstart.tasks.registry import Task, get, run_task, task_of
from warmstart.tasks.resume import finetune_inputs

RESULT_COLUMNS = ["task", "init", "strategy", "labels", "seed", "metric", "score", "seconds", "validation_labels",
                  "protocol", "cell", "overrides", "test_repeats"]


def _data_inputs(cfg) -> dict:
    """The data a run reads (not the checkpoints): a finished run is reused only while these are unchanged."""
    return {k: v for k, v in finetune_inputs(cfg).items() if v and (k.startswith("data.") or k.startswith("corpus."))}


def _inputs_changed(folder: Path, inputs: dict) -> list[str]:
    """The inputs whose content differs from what the run in `folder` recorded (marker hashes)."""
    recorded = recorded_inputs(folder)
    return [k for k, v in inputs.items() if k in recorded and recorded[k] != file_hash(v)]


def pretrain_all(cfg: StudyConfig) -> dict[str, Path]:
    """Run (or reuse, or resume) each `pretrain:` entry. -> name -> checkpoint folder"""
    from warmstart.pretraining.recipes import load_pretrain_config, run_pretraining
    from warmstart.pretraining.text import pretrain_inputs

    out = {}
    for name, spec in cfg.pretrain.items():
        folder = Path(cfg.output_dir) / "pretrained" / name
        pcfg = load_pretrain_config(spec.recipe, [*spec.overrides, f"output_dir={folder}"])
        corpus = {k: v for k, v in pretrain_inputs(pcfg).items() if k.startswith("corpus.")} \
            if hasattr(pcfg, "corpus") else {}
        changed = _inputs_changed(folder, corpus)
        if finished_with(folder, pcfg) and not changed:
            print(f"study: pretrained '{name}': reusing {folder}")
        elif (folder / "metrics.json").is_file():  # finished, with another recipe: never overwrite a checkpoint
            what = f"its corpus changed ({changed[0]})" if changed else f"another recipe (see its {CONFIG_FILENAME})"
            raise WarmstartError(f"{folder}: holds a checkpoint pretrained for pretrain.{name} with {what}; move it "
                                 "away or rename the entry")
        else:  # new, or killed mid-way: continue from its last resumable checkpoint
            resume = (folder / RESUME_DIR / TRAINING_STATE).is_file()
            print(f"study: pretraining '{name}' ({spec.recipe}){' resumed' if resume else ''}")
            run_pretraining(pcfg, resume=resume)
        out[name] = folder
    return out


def resolve_inits(cfg: StudyConfig, pretrained: dict[str, Path]) -> dict[str, str]:
    """init name -> what `init=` gets ('scratch' or a folder); checks folders exist before hours of work."""
    out = {}
    for init in cfg.inits:
        if init == "scratch":
            out[init] = "scratch"
        elif init in pretrained:
            out[init] = str(pretrained[init])
        elif init == "minilm":
            out[init] = str(minilm_folder())
        elif (Path(init) / "config.json").is_file():
            out[init] = init
        elif HUB_ID.match(init):  # its cached snapshot; downloaded only where the user allowed it
            out[init] = resolve_checkpoint(init, where="inits")
        else:
            raise WarmstartError(f"inits: '{init}' is neither scratch, minilm, a pretrain entry "
                                 f"({', '.join(pretrained) or 'none'}) nor a checkpoint folder with a config.json")
    return out


def _scratch_source(cfg: StudyConfig, inits: dict[str, str]) -> str | None:
    """Whose architecture and tokenizer 'scratch' takes: `scratch_like` (an init's name, a pretrain entry or
    a folder), else the first init that is a checkpoint."""
    if cfg.scratch_like:
        if inits.get(cfg.scratch_like, "scratch") != "scratch":
            return inits[cfg.scratch_like]
        if cfg.scratch_like in cfg.pretrain:
            return str(Path(cfg.output_dir) / "pretrained" / cfg.scratch_like)
        return cfg.scratch_like
    return next((v for v in inits.values() if v != "scratch"), None)


@dataclass
class Cell:
    task: str  # the study's name for the task
    init: str
    strategy: str
    labels: int
    seed: int
    overrides: list[str]
    folder: Path
    kind: Task  # the registry's task
    baseline: str | None = None  # the classic model this cell fits instead of fine-tuning (study/baselines.py)
    metrics: tuple[str, ...] = ()  # what its score is, first found first (default: the task's own)


def plan_cells(cfg: StudyConfig, inits: dict[str, str]) -> list[Cell]:
    """The grid in its fixed order: task, labels, seed, then each init x strategy, then the baseline."""
    cells = []
    scratch_source = _scratch_source(cfg, inits)
    root = Path(cfg.output_dir) / "cells"
    for name, spec in cfg.tasks.items():
        if not spec.labels:
            raise WarmstartError(f"tasks.{name}.labels: give the label counts to study, e.g. [100, 1000]")
        task = task_of(spec.recipe, spec.overrides)
        base = load_config(task.config, spec.recipe, spec.overrides)
        # a task whose classes are balanced (train.class_balance) is compared as its runs choose: balanced accuracy
        scored_by = ("balanced_accuracy", *task.metrics) if task.weighs_classes and \
            getattr(base.train, "class_balance", "none") != "none" else task.metrics
        strategies = cfg.strategies or [base.train.strategy]
        for labels in spec.labels:
            for seed in range(cfg.seeds):
                for init, target in inits.items():
                    for strategy in strategies:
                        if init == "scratch" and strategy not in ("full", base.train.strategy):
                            continue  # a strategy that keeps pretrained weights means nothing from scratch
                        folder = root / name / f"{_slug(init)}-{strategy}-{labels}-seed{seed}"
                        overrides = [*spec.overrides, f"init={target}", f"{task.count_key}={labels}",
                                     f"train.seed={seed}", f"train.strategy={strategy}",
                                     f"train.save_model={str(cfg.save_models).lower()}", f"output_dir={folder}"]
                        if cfg.report_to:
                            overrides.append(f"train.report_to={cfg.report_to}")
                        if target == "scratch":
                            if not scratch_source:
                                raise WarmstartError("scratch needs an architecture: add a checkpoint to inits or set "
                                                     "scratch_like")
                            overrides.append(f"{task.scratch_key}={scratch_source}")
                        cells.append(Cell(name, init, strategy, labels, seed, overrides, folder, task,
                                          metrics=scored_by))
                for baseline in baselines_of(spec, task):
                    # the task's classic baseline keeps its earlier folder name, so a study made before reuses it
                    stem = "baseline" if baseline == task.baseline else baseline
                    folder = root / name / f"{stem}-{labels}-seed{seed}"
                    overrides = [*spec.overrides, f"{task.count_key}={labels}", f"train.seed={seed}", f"output_dir={folder}"]
                    cells.append(Cell(name, baseline, "-", labels, seed, overrides, folder, task, baseline, scored_by))
    return cells


def baselines_of(spec: TaskSpec, task: Task) -> list[str]:
    """The baselines a study fits beside a task's cells (their canonical names), checked against the task."""
    from warmstart.studies.baselines import ALIASES, BASELINES

    if not spec.baseline or not task.baseline:
        return []
    names = [ALIASES.get(b, b) for b in spec.baselines] or [task.baseline]
    for b in names:
        if b not in task.baselines:
            raise WarmstartError(f"tasks: baseline '{b}' does not apply to task {task.name}; use "
                                 f"{', '.join(task.baselines)}")
    assert all(b in BASELINES for b in names)
    return list(dict.fromkeys(names))


def _slug(name: str) -> str:
    """An init (a name or a folder path) as part of a cell's folder name: plain characters only, no '/'."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip("/")).strip(".") or "_"


def run_cell(cell: Cell, spec: TaskSpec) -> dict:
    """Fine-tune (or fit the baseline of) one cell, or read its finished folder when it ran with the same recipe
    and data. -> its metrics"""
    fcfg = load_config(cell.kind.config, spec.recipe, cell.overrides)
    data = _data_inputs(fcfg)
    if (cell.folder / "metrics.json").is_file():
        changed = _inputs_changed(cell.folder, data)
        if finished_with(cell.folder, fcfg) and not changed:
            return json.loads((cell.folder / "metrics.json").read_text(encoding="utf-8"))
        print(f"study: {cell.folder}: {'its data changed (' + changed[0] + ')' if changed else 'its recipe changed'} "
              "since it ran; running it again")
    if cell.baseline is None:
        return run_task(fcfg)
    from warmstart.studies.baselines import run_baseline

    with claim(cell.folder, "baseline", finetune_inputs(fcfg)):
        metrics = run_baseline(fcfg, cell.baseline)

        def write(folder: Path) -> None:  # published like a fine-tuning run, so that resuming treats both alike
            (folder / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
            (folder / CONFIG_FILENAME).write_text(yaml.safe_dump(asdict(fcfg), sort_keys=False), encoding="utf-8")
            write_marker(folder, "baseline", data)
        atomic_folder(cell.folder, write)
    return metrics


def rank_candidates(cfg: StudyConfig, inits: dict[str, str], root: Path) -> None:
    """`warmstart rank` of the pretrained inits for each rankable classification task and label count (seed 0's
    sample), so the report can set ranking scores against the real fine-tuned scores."""
    from warmstart.select.rank import rank_candidates as rank

    candidates = {name: folder for name, folder in inits.items() if folder != "scratch"}
    if len(candidates) < 2:
        return
    for name, spec in cfg.tasks.items():
        task = task_of(spec.recipe, spec.overrides)
        if task.rank_features not in ("sentences", "label_sets", "images"):
            continue
        for labels in spec.labels:
            out = root / "rank" / f"{name}-{labels}.csv"
            if out.is_file():
                continue
            fcfg = load_config(task.config, spec.recipe, [*spec.overrides, f"{task.count_key}={labels}", "train.seed=0"])
            table = rank(fcfg, list(candidates.values()), out.with_suffix(".tmp.csv"))
            table.insert(1, "init", table["candidate"].map({v: k for k, v in candidates.items()}))
            replace_file(out, lambda tmp, t=table: t.to_csv(tmp, index=False))  # whole: a cut one would be skipped
            out.with_suffix(".tmp.csv").unlink()


def result_row(cell: Cell, metrics: dict) -> dict:
    names = cell.metrics or cell.kind.metrics  # a baseline reports the task's own metric, on the same test split
    metric = next((m for m in names if m in metrics), None)
    if metric is None:
        raise WarmstartError(f"{cell.folder}: the run reported none of {', '.join(names)} (no test split?); a study "
                             f"compares test scores: give task '{cell.task}' data with test rows")
    return {"task": cell.task, "init": cell.init, "strategy": cell.strategy, "labels": cell.labels, "seed": cell.seed,
            "metric": metric, "score": round(metrics[metric] * cell.kind.score_scale, 6), "seconds": metrics.get("seconds"),
            "validation_labels": metrics.get("validation_labels", 0), "protocol": metrics.get("protocol"),
            "cell": str(cell.folder), "overrides": " ".join(cell.overrides),
            "test_repeats": metrics.get("test_repeats", 0)}  # test rows that repeat one of the run's labelled texts


def write_table(rows: list[dict], path: Path) -> None:
    """results.csv, replaced atomically: a kill mid-write leaves the previous table whole."""
    try:
        replace_file(path, lambda tmp: pd.DataFrame(rows, columns=RESULT_COLUMNS).to_csv(tmp, index=False))
    except OSError as e:
        raise WarmstartError(f"{path}: cannot write it ({e.strerror or e}); the previous table is intact") from None


def run_study(cfg: StudyConfig, overwrite: bool = False) -> pd.DataFrame:
    """Pretrain what the study pretrains, run every missing cell, write results.csv and the report."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    validate(cfg)
    for spec in cfg.tasks.values():  # every recipe names a known task, every baseline fits it, before hours of work
        baselines_of(spec, get(task_of(spec.recipe, spec.overrides).name))
    resolve_inits(cfg, {name: Path(cfg.output_dir) / "pretrained" / name for name in cfg.pretrain})
    with claim(cfg.output_dir, "study", overwrite=overwrite) as owned:
        owned.mark()
        root = owned.folder
        (root / "study.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False), encoding="utf-8")
        inits = resolve_inits(cfg, pretrain_all(cfg))
        cells = plan_cells(cfg, inits)
        done = sum((c.folder / "metrics.json").is_file() for c in cells)
        print(f"study: {len(cells)} cells ({done} finished earlier) -> {root / 'results.csv'}")
        rows = []
        bar = tqdm(cells, desc="study", unit="cell", initial=0, dynamic_ncols=True)
        for cell in bar:
            bar.set_postfix_str(f"{cell.task} {cell.init} {cell.strategy} {cell.labels} labels seed {cell.seed}")
            rows.append(result_row(cell, run_cell(cell, cfg.tasks[cell.task])))
            write_table(rows, root / "results.csv")
        bar.close()
        table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
        if cfg.rank:
            rank_candidates(cfg, inits, root)
        from warmstart.studies.report import write_report

        page = write_report(root, labels_saved_at=cfg.labels_saved_at)
    print(f"study: {len(table)} cells in {(time.perf_counter() - t0) / 60:.1f} min; report {page}")
    return table
