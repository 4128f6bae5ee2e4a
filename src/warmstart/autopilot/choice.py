"""Which of `warmstart auto`'s pipelines run (`queue`: in order of promise, while they fit the budget) and which is
refitted: the default, unless another is clearly better out of fold.

Why not simply the best out-of-fold score: at 16 labels a class auto picks among about eight pipelines on 32-48
labels, and the best of eight noisy scores is mostly luck. On benchmarks/results/auto.md's nine runs it took LP-FT
or the linear probe seven times, on leads as small as one label or a tie (given to the cheaper); on test those
seven scored 1.7 points below SetFit on the same encoder (as the benchmark adapted it) on average, six of seven
below, and SetFit was the best fixed pipeline in hindsight on every task. benchmarks/results/few_label.md says the
same on Rotten Tomatoes (no strategy beats SetFit at 8 or 16 labels a class; the probe is 7-10 points below it in
domain_adaptation.md). So the pipeline the benchmarks put first, the first of auto's queue (SetFit on the top
encoder; for sets of labels full fine-tuning, multi_label.md's best), is the default, and another pipeline
replaces it only when the paired test on the N out-of-fold predictions says it is clearly better
(intervals.paired_gap, the verdict's own test, as for pretraining from scratch). The test's resolution grows with
N: at 32 labels a lead of one or two labels is never clear, at 1,000 a lead of about 3 points is. Measured with
the rule (auto.md, 2026-12-06): 65.3 mean test accuracy against 63.4 for the best out-of-fold score in the same
runs.
`run` is the AutoRun (autopilot/run.py)."""

from __future__ import annotations

from warmstart.autopilot.plan import SCRATCH

# why each strategy can be the default, as the verdict says it
DEFAULT_WHY = {"setfit": "SetFit, the strategy no other beat at few labels in warmstart's benchmarks",
               "full": "full fine-tuning, the best fixed pipeline on sets of labels in warmstart's benchmarks",
               "lp_ft": "LP-FT, the first strategy queued that ran (SetFit did not fit the budget)"}


def ranking(run, strategies) -> list[str]:
    """Warmstart's pipelines (an encoder and one of `strategies`: deliverable as a folder), best out-of-fold score
    first; ties go to a public candidate's side (as shipped or adapted) over the encoder pretrained from scratch,
    then to the cheaper (the probe, then the order they were run in)."""
    # a dropped adaptation's probe must not win the refit (seen: "dropped", then "Best model: MiniLM + SimCSE");
    # a tie is no evidence for minutes of MLM over a public encoder (rt seed 2: run order chose scratch)
    keys = [k for k in run.oof if k.split(":")[0] in strategies and run.kept(k.split(":", 1)[1])]
    return sorted(keys, key=lambda k: (-run.data.score(run.oof[k]), k.split(":", 1)[1] == SCRATCH))


def default(run) -> str | None:
    """The first pipeline of the queue (the order of promise) that has out-of-fold predictions, on a public
    candidate's side where one has them; None while none has (then the ranking alone decides)."""
    ran = [f"{s}:{e}" for s, e in run.queue() if e is not None and f"{s}:{e}" in run.oof and run.kept(e)]
    public = [k for k in ran if k.split(":", 1)[1] != SCRATCH]
    return (public or ran or [None])[0]


def choice(run, strategies) -> list[str]:
    """The ranking reordered for the refit: the pipelines clearly better than the default out of fold (best
    first), then the default, then the rest as ranked. The refit takes the first whose refit fits the time."""
    order = ranking(run, strategies)
    first = default(run)
    if first is None:
        return order
    clear = [k for k in order if k != first and run.data.gap(run.oof[k], run.oof[first])["verdict"] == "better"]
    return clear + [first] + [k for k in order if k != first and k not in clear]


def queue(run) -> list[tuple[str, str | None]]:
    """(strategy, encoder) pairs in order of promise: (for sets of labels, full fine-tuning of the top encoder,)
    SetFit on the top encoder, on its un-adapted base (so that 'did adaptation help' is answered under the same
    strategy), the setfit library's SetFit on MiniLM (the rival), LP-FT on the top encoder, then SetFit on the
    others. Where SetFit on the top encoder did not fit the budget (its cost grows with the labels), LP-FT comes
    before the rival: at 500 labels and 15 minutes the rival's folds took 12 minutes, LP-FT (4 minutes) was left
    unrun and the probe was delivered, 7 points below the rival (benchmarks/results/auto_many_labels.md)."""
    from warmstart.studies.demo import setfit_available

    top = run.best()
    decision = run.state.get("unlabelled") or {}
    out: list[tuple[str, str | None]] = [*([("full", top)] if run.data.multi else []), ("setfit", top)]
    if decision.get("kept") and top == decision.get("adapted"):
        out.append(("setfit", decision["base"]))
    rival = [("setfit_library", None)] if "MiniLM" in run.encoders and setfit_available() is None else []
    setfit = run.state.get(f"cv:setfit:{top}")
    out += [("lp_ft", top), *rival] if setfit and "pred" not in setfit else [*rival, ("lp_ft", top)]
    ranked = sorted((n for n in run.encoders if run.kept(n)),
                    key=lambda n: -run.state.get(f"encoder:{n}")["rank"])
    out += [("setfit", n) for n in ranked if ("setfit", n) not in out]
    return [(s, e) for s, e in out if s == "setfit_library" or e is not None]
