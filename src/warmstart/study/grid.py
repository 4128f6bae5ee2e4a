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
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import yaml

from warmstart.config import (
    CONFIG_FILENAME,
    FinetuneConfig,
    ImageFinetuneConfig,
    ImagePretrainConfig,
    PretrainConfig,
    StudyConfig,
    TaskSpec,
    finished_with,
    is_image_recipe,
    load_config,
)
from warmstart.engine.checkpoint import RESUME_DIR, TRAINING_STATE
from warmstart.errors import WarmstartError
from warmstart.models.common import minilm_folder

# the metric each task reports first (what the study compares); tagging without BIO tags (POS) has no
# entities, only token accuracy
TASK_METRICS = {"classification": ("accuracy",), "token_classification": ("entity_f1", "token_accuracy"),
                "summarization": ("rouge1",), "response_selection": ("recall_at_1",),
                "image_classification": ("accuracy",)}
RESULT_COLUMNS = ["task", "init", "strategy", "labels", "seed", "metric", "score", "seconds", "cell", "overrides"]


def pretrain_all(cfg: StudyConfig) -> dict[str, Path]:
    """Run (or reuse, or resume) each `pretrain:` entry. -> name -> checkpoint folder"""
    from warmstart.pretrain.images import run_image_pretrain
    from warmstart.pretrain.text import run_pretrain

    out = {}
    for name, spec in cfg.pretrain.items():
        folder = Path(cfg.output_dir) / "pretrained" / name
        overrides = [*spec.overrides, f"output_dir={folder}"]
        image = is_image_recipe(spec.recipe, overrides)
        pcfg = load_config(ImagePretrainConfig if image else PretrainConfig, spec.recipe, overrides)
        if finished_with(folder, pcfg):
            print(f"study: pretrained '{name}': reusing {folder}")
        elif (folder / "metrics.json").is_file():  # finished, with another recipe: never overwrite a checkpoint
            raise WarmstartError(f"{folder}: holds a checkpoint pretrained with another recipe than pretrain.{name} "
                                 f"(see its {CONFIG_FILENAME}); move it away or rename the entry")
        else:  # new, or killed mid-way: continue from its last resumable checkpoint
            resume = (folder / RESUME_DIR / TRAINING_STATE).is_file()
            print(f"study: pretraining '{name}' ({spec.recipe}){' resumed' if resume else ''}")
            (run_image_pretrain if image else run_pretrain)(pcfg, resume=resume)
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
    task: str
    init: str
    strategy: str
    labels: int
    seed: int
    overrides: list[str]
    folder: Path
    image: bool
    kind: str  # the task (classification, ...), or 'baseline'


def plan_cells(cfg: StudyConfig, inits: dict[str, str]) -> list[Cell]:
    """The grid in its fixed order: task, labels, seed, then each init x strategy, then the baseline."""
    cells = []
    scratch_source = _scratch_source(cfg, inits)
    root = Path(cfg.output_dir) / "cells"
    for task, spec in cfg.tasks.items():
        if not spec.labels:
            raise WarmstartError(f"tasks.{task}.labels: give the label counts to study, e.g. [100, 1000]")
        image = is_image_recipe(spec.recipe, spec.overrides)
        base = load_config(ImageFinetuneConfig if image else FinetuneConfig, spec.recipe, spec.overrides)
        kind = "image_classification" if image else base.task
        strategies = cfg.strategies or [base.train.strategy]
        count_key = "data.labels_per_class" if image else "data.labels"
        for labels in spec.labels:
            for seed in range(cfg.seeds):
                for init, target in inits.items():
                    for strategy in strategies:
                        if init == "scratch" and strategy not in ("full", base.train.strategy):
                            continue  # a strategy that keeps pretrained weights means nothing from scratch
                        folder = root / task / f"{_slug(init)}-{strategy}-{labels}-seed{seed}"
                        overrides = [*spec.overrides, f"init={target}", f"{count_key}={labels}", f"train.seed={seed}",
                                     f"train.strategy={strategy}", f"train.save_model={str(cfg.save_models).lower()}",
                                     f"output_dir={folder}"]
                        if cfg.report_to:
                            overrides.append(f"train.report_to={cfg.report_to}")
                        if target == "scratch":
                            if not scratch_source:
                                raise WarmstartError("scratch needs an architecture: add a checkpoint to inits or set "
                                                     "scratch_like")
                            overrides.append(f"{'architecture' if image else 'tokenizer'}={scratch_source}")
                        cells.append(Cell(task, init, strategy, labels, seed, overrides, folder, image, kind))
                if spec.baseline and kind in ("classification", "image_classification"):
                    folder = root / task / f"baseline-{labels}-seed{seed}"
                    overrides = [*spec.overrides, f"{count_key}={labels}", f"train.seed={seed}", f"output_dir={folder}"]
                    name = "pixels_logreg" if image else "tfidf_logreg"
                    cells.append(Cell(task, name, "-", labels, seed, overrides, folder, image, "baseline"))
    return cells


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip("/"))


def run_cell(cell: Cell, spec: TaskSpec) -> dict:
    """Fine-tune (or fit the baseline of) one cell, or read its finished folder. -> its metrics"""
    if (cell.folder / "metrics.json").is_file():
        return json.loads((cell.folder / "metrics.json").read_text())
    fcfg = load_config(ImageFinetuneConfig if cell.image else FinetuneConfig, spec.recipe, cell.overrides)
    if cell.kind == "baseline":  # published like a fine-tuning run, so that resuming treats both alike
        from warmstart.engine.checkpoint import atomic_folder
        from warmstart.study.baselines import classic_baseline

        metrics = classic_baseline(fcfg, cell.image)
        atomic_folder(cell.folder, lambda f: (f / "metrics.json").write_text(json.dumps(metrics, indent=2)))
        return metrics
    if cell.image:
        from warmstart.tasks.image_classification import run_image_finetune

        return run_image_finetune(fcfg)
    from warmstart.tasks.registry import run_task

    return run_task(fcfg)


def rank_candidates(cfg: StudyConfig, inits: dict[str, str], root: Path) -> None:
    """`warmstart rank` of the pretrained inits for each classification task and label count (seed 0's
    sample), so the report can set ranking scores against the real fine-tuned scores."""
    from warmstart.select.rank import run_rank

    candidates = {name: folder for name, folder in inits.items() if folder != "scratch"}
    if len(candidates) < 2:
        return
    for task, spec in cfg.tasks.items():
        image = is_image_recipe(spec.recipe, spec.overrides)
        if not image and load_config(FinetuneConfig, spec.recipe, spec.overrides).task != "classification":
            continue
        for labels in spec.labels:
            out = root / "rank" / f"{task}-{labels}.csv"
            if out.is_file():
                continue
            count = f"{'data.labels_per_class' if image else 'data.labels'}={labels}"
            table = run_rank(spec.recipe, list(candidates.values()), str(out.with_suffix(".tmp.csv")),
                             [*spec.overrides, count, "train.seed=0"])
            table.insert(1, "init", table["candidate"].map({v: k for k, v in candidates.items()}))
            table.to_csv(out, index=False)
            out.with_suffix(".tmp.csv").unlink()


def result_row(cell: Cell, metrics: dict) -> dict:
    names = TASK_METRICS["classification" if cell.kind == "baseline" else cell.kind]
    metric = next(m for m in names if m in metrics)
    return {"task": cell.task, "init": cell.init, "strategy": cell.strategy, "labels": cell.labels, "seed": cell.seed,
            "metric": metric, "score": metrics[metric], "seconds": metrics.get("seconds"),
            "cell": str(cell.folder), "overrides": " ".join(cell.overrides)}


def write_table(rows: list[dict], path: Path) -> None:
    """results.csv, replaced atomically: a kill mid-write leaves the previous table whole."""
    tmp = path.with_suffix(".csv.tmp")
    pd.DataFrame(rows, columns=RESULT_COLUMNS).to_csv(tmp, index=False)
    os.replace(tmp, path)


def run_study(cfg: StudyConfig) -> pd.DataFrame:
    """Pretrain what the study pretrains, run every missing cell, write results.csv and the report."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    root = Path(cfg.output_dir)
    if not cfg.tasks:
        raise WarmstartError("study: no tasks; add a tasks section (name: {recipe, labels})")
    root.mkdir(parents=True, exist_ok=True)
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
    from warmstart.study.report import write_report

    page = write_report(root, labels_saved_at=cfg.labels_saved_at)
    print(f"study: {len(table)} cells in {(time.perf_counter() - t0) / 60:.1f} min; report {page}")
    return table
