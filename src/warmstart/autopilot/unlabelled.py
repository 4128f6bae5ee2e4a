"""`warmstart auto`'s second stage: what the unlabelled text is used for (adapting the top candidate to it, and
pretraining from scratch only where the candidates' probes are clearly behind TF-IDF + LR), and the runs that
use it. `run` is the AutoRun (autopilot/run.py) whose rank stage has scored the candidates."""

from __future__ import annotations

from pathlib import Path

MIN_UNLABELLED_MINUTES = 1.0  # below this an adaptation pass is too short to change the encoder
# Pretraining from scratch beside candidates only when TF-IDF + LR is clearly better than their best probe (a
# paired test on the out-of-fold predictions; a 2-point margin, under one label at N = 32, sent rt seed 2 to a
# scratch encoder: 53.1 on test against 65.8) and there is text enough to learn from: a few minutes of MLM on
# less than about a megabyte gives an encoder below scratch's level (issue 21's small-corpus finding).
SCRATCH_MIN_BYTES = 1_000_000


def plan_unlabelled(run) -> dict:
    """What the unlabelled text is used for, decided from the rank stage's scores and the time left."""
    minutes = (run.clock.stage_left("unlabelled") - 45) / 60  # less loading, encoding and saving
    best = run.best()
    tfidf = run.data.score(run.oof["tfidf"])
    if not run.unlabelled:
        return {"why": "no unlabelled text given: nothing to adapt or pretrain"}
    if minutes < MIN_UNLABELLED_MINUTES:
        return {"why": f"the budget leaves {max(minutes, 0):.1f} min for the unlabelled text, under "
                       f"{MIN_UNLABELLED_MINUTES:g}: not used (give a larger --budget)"}
    if best is None:
        return {"scratch_minutes": minutes, "why": "no candidate encoder: pretraining one from scratch"}
    knn = run.state.get(f"encoder:{best}")["rank"]
    adapt = {"base": best, "adapt_minutes": minutes,
             "why": f"adapting the top-ranked candidate, {best} ({run.rank_by} {knn:.3f}), to the unlabelled text"}
    # the candidate with the best probe is the strongest evidence that the text is like what they saw
    near = max(run.encoders, key=lambda n: run.data.score(run.oof[f"probe:{n}"]))
    probe = run.data.score(run.oof[f"probe:{near}"])
    gap = run.data.gap(run.oof["tfidf"], run.oof[f"probe:{near}"])
    versus = (f"TF-IDF + LR ({tfidf:.3f}) against {near}'s probe ({probe:.3f}) out of fold: {gap['gap']:+.1f} "
              f"points (95% interval {gap['low']:+.1f} to {gap['high']:+.1f})")
    size = sum(Path(u).stat().st_size for u in run.unlabelled)
    if gap["verdict"] != "better":  # a bag of words ahead but not clearly: say why nothing starts from scratch
        return adapt if gap["gap"] <= 0 else {**adapt, "why": f"{adapt['why']}; {versus}: not clearly better, "
                                                              "so nothing is pretrained from scratch"}
    if size < SCRATCH_MIN_BYTES or minutes < 2 * MIN_UNLABELLED_MINUTES:
        return {**adapt, "why": f"{adapt['why']}; {versus}: clearly better, but {size / 1e6:.1f} MB or {minutes:.1f} "
                                "min is too little to pretrain from scratch (1 MB and 2 min at least)"}
    return {**adapt, "scratch_minutes": minutes / 2, "adapt_minutes": minutes / 2,
            "why": f"{versus}: clearly better, the text is unlike what the candidates saw, so warmstart also "
                   "pretrains from scratch on it"}

def pretrain(run, kind: str, base: str | None, minutes: float) -> Path:
    """The bundled `adapt` recipe on the top candidate, or the demo's small BERT from scratch, on the
    unlabelled text; resumed after a kill, reused when finished."""
    from warmstart.config import PretrainConfig, finished_with, load_config, recipe_path
    from warmstart.pretraining.recipes import run_pretraining
    from warmstart.studies.demo import DATA

    out = run.root / ("pretrained" if kind == "scratch" else "adapted")
    recipe = DATA / "pretrain.yaml" if kind == "scratch" else recipe_path("adapt", "pretrain")
    overrides = [f"output_dir={out}", f"corpus.sources=[{', '.join(run.unlabelled)}]",
                 f"corpus.cache_dir={run.root / 'cache'}", f"train.max_minutes={minutes:.2f}",
                 f"train.seed={run.seed}", *([f"model.init={run.encoders[base]}"] if kind == "adapt" else [])]
    cfg = load_config(PretrainConfig, recipe, overrides)
    if finished_with(out, cfg):
        return out
    resume = (out / "checkpoint-last").is_dir()
    return Path(run_pretraining(cfg, resume=resume, overwrite=not resume))
