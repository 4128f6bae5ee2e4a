"""`warmstart auto`'s answer: the verdict (the chosen model and why, its cross-validated accuracy (micro-F1 for
sets of labels) with an interval, the rivals on the same labels, whether adaptation or pretraining helped, what
more labels would buy) as one dict and its sentences; autopilot/report.py prints it, writes it as a page and
auto.json, and delivers the model folder."""

from __future__ import annotations

import numpy as np

from warmstart.autopilot import majority
from warmstart.autopilot.choice import DEFAULT_WHY, default
from warmstart.autopilot.crossval import fraction_of, oof_probe, oof_tfidf
from warmstart.autopilot.intervals import right
from warmstart.autopilot.plan import SCRATCH
from warmstart.data.sample import copies_said

STRATEGY_NAMES = {"probe": "linear probe", "setfit": "SetFit (warmstart)", "lp_ft": "LP-FT", "full": "full fine-tuning"}
CURVE_FRACTIONS = (0.25, 0.5, 1.0)


def pipeline_name(key: str) -> str:
    if key == "tfidf":
        return "TF-IDF + LR"
    if key == "setfit_library":
        return "SetFit on MiniLM (setfit library)"
    strategy, encoder = key.split(":", 1)
    return f"{encoder}, {STRATEGY_NAMES[strategy]}"


def _row(key: str, pred: np.ndarray, data) -> dict:
    low, high = data.interval(pred)
    return {"pipeline": key, "name": pipeline_name(key), "score": round(100 * data.score(pred), 1),
            "low": round(100 * low, 1), "high": round(100 * high, 1)}


def _gap(run, a: str, b: str) -> dict | None:
    if a not in run.oof or b not in run.oof or a == b:
        return None
    return {"a": pipeline_name(a), "b": pipeline_name(b), **run.data.gap(run.oof[a], run.oof[b])}


def _curve(run, encoder: str) -> list[dict]:
    """Out-of-fold score of the chosen encoder's probe and of TF-IDF on stratified shares of each fold's
    training part: the label-efficiency curve inside the N."""
    saved = run.state.get("curve")
    if saved is not None and saved["encoder"] == encoder:
        return saved["points"]
    x = np.load(run.state.get(f"encoder:{encoder}")["features"])
    y, n_fold = run.data.y, len(run.data.y) * (run.data.k - 1) / run.data.k
    points = []
    for f in CURVE_FRACTIONS:
        rows = fraction_of(f, y, run.seed) if f < 1 else None
        labels = int(round(f * n_fold)) if f < 1 else int(round(n_fold))
        points.append({"fraction": f, "labels": labels,
                       "probe": round(100 * run.data.score(oof_probe(x, run.data, run.seed, rows)), 1),
                       "tfidf": round(100 * run.data.score(oof_tfidf(run.data, run.seed, rows)), 1)})
    run.state.put("curve", {"encoder": encoder, "points": points}, run.clock)
    return points


def more_labels(points: list[dict]) -> str:
    """What the last doubling inside the N gained, read as the most the next doubling is likely to add."""
    half, full = points[-2], points[-1]
    gain = full["probe"] - half["probe"]
    head = (f"From {half['labels']} to {full['labels']} labels (a fold's share) the chosen encoder's probe went "
            f"{half['probe']:.1f} -> {full['probe']:.1f} ({gain:+.1f} points)")
    if gain >= 2:
        return head + "; doubling your labels is likely worth a few more points: collecting more pays."
    if gain >= 0.5:
        return head + "; doubling your labels would likely add a point or two (gains shrink as labels grow)."
    return head + "; more labels of the same kind would likely add little (within the noise at this size)."


def verdict(run, refit: dict) -> dict:
    """Everything the page, the summary and the card say, as one dict (also written as auto.json)."""
    data, y, state = run.data, run.data.y, run.state
    chosen = refit["pipeline"]
    strategy, encoder = chosen.split(":", 1)
    rows = sorted((_row(k, p, data) for k, p in run.oof.items()), key=lambda r: -r["score"])
    skipped = [{"pipeline": k[3:], "name": pipeline_name(k[3:]), "status": v["status"]}
               for k, v in state.data["steps"].items() if k.startswith("cv:") and v.get("status") != "done"]
    unl = state.get("unlabelled") or {}
    comparisons = {"tfidf": _gap(run, chosen, "tfidf"),
                   "setfit": _gap(run, chosen, "setfit_library") or _gap(run, chosen, "setfit:MiniLM")}
    adapted, base = unl.get("adapted"), unl.get("base")
    if adapted:
        same = next((s for s in (strategy, "setfit", "probe") if f"{s}:{adapted}" in run.oof and f"{s}:{base}" in run.oof),
                    None)
        comparisons["adaptation"] = _gap(run, f"{same}:{adapted}", f"{same}:{base}") if same else None
    runner = next((k for k in run.ranking() if k != chosen), None)
    if runner is not None and data.score(run.oof[runner]) <= data.score(run.oof[chosen]):
        correct = right(run.oof[chosen], y) - right(run.oof[runner], y)
        comparisons["runner_up"] = {**_gap(run, chosen, runner), "labels": correct}
    first, leader = default(run), run.ranking()[0]
    why = DEFAULT_WHY.get(first.split(":")[0], "") if first else None
    if first is not None and chosen != first:  # clearly better than the default (or the next in line for the time)
        comparisons["default"] = _gap(run, chosen, first)
    elif first is not None and data.score(run.oof[leader]) > data.score(run.oof[chosen]):  # the default held its place
        comparisons["leader"] = {**_gap(run, leader, chosen),
                                 "labels": right(run.oof[leader], y) - right(run.oof[chosen], y)}
    plain = [k for k in run.ranking() if k.split(":", 1)[1] not in (adapted, SCRATCH)]
    if plain and plain[0] != chosen:
        comparisons["best_unadapted"] = _gap(run, chosen, plain[0])
    if SCRATCH in run.encoders:
        own = [k for k in run.ranking() if k.endswith(f":{SCRATCH}")]
        comparisons["pretraining"] = _gap(run, own[0], "tfidf") if own else None
    balance = None
    if not data.multi:  # the rival every classifier must beat first (autopilot/majority.py)
        floor = majority.oof_majority(y, data.folds)
        balance = majority.facts(y, data.names, run.oof[chosen], data.test_y)
        comparisons["majority"] = {"a": pipeline_name(chosen), "b": f"always {balance['class']!r}",
                                   **data.gap(run.oof[chosen], floor)}
    points = _curve(run, encoder)
    candidates = [{"name": n, "folder": state.get(f"encoder:{n}")["folder"], "rank": state.get(f"encoder:{n}")["rank"],
                   "probe": round(100 * data.score(run.oof[f"probe:{n}"]), 1)}
                  for n in run.encoders]
    n, k = len(y), data.k
    return {"labels": n, "classes": data.names, "label_sets": data.multi, "metric": data.metric, "rank_by": run.rank_by,
            "folds": k, "unused_rows": data.unused, "test_rows": len(data.test_y),
            "protocol": f"{n} labels{copies_said(data.groups)}, {k}-fold cross-validation inside them for every decision and "
                        "score, then one "
                        f"fit of the winner on all {n}; no other label was read"
                        + (f" (the file's {len(data.test_y)} test rows only scored the final model)"
                           if len(data.test_y) else ""),
            "chosen": {**next(r for r in rows if r["pipeline"] == chosen), "encoder": encoder, "strategy": strategy,
                       "folder": str(run.root / "model"),
                       **{k: refit[k] for k in ("test_score", "test_size", "test_accuracy", "test_repeats",
                                                "test_unseen_score", "test_rare", "test_rare_found") if k in refit},
                       "encoder_folder": run.encoders[encoder]},
            "pipelines": rows, "skipped": skipped, "candidates": candidates, "unlabelled": unl,
            "comparisons": {k: v for k, v in comparisons.items() if v}, "curve": points,
            "more_labels": more_labels(points), "budget_min": round(run.settings["budget_s"] / 60, 1),
            "wall_min": round(run.clock.spent() / 60, 1), "default": first,
            "majority": balance, "sentences": sentences(run, comparisons, chosen, unl, why, balance)}


def sentences(run, comparisons: dict, chosen: str, unl: dict, default_why: str | None = None,
              balance: dict | None = None) -> list[str]:
    """The verdict in plain words, one sentence a question; `default_why`: why the default pipeline is the default
    (None: no queued pipeline ran); `balance`: majority.facts of one-label-a-text data."""
    data = run.data
    out = [f"Best model: {pipeline_name(chosen)}, {100 * data.score(run.oof[chosen]):.1f}"
           f"{' micro-F1' if data.multi else '% balanced accuracy' if data.balanced else '%'} cross-validated on "
           f"your {len(data.y)} labels "
           f"({why_chosen(comparisons, data.metric, default_why)})."]
    if comparisons.get("leader"):
        out.append(leader_sentence(comparisons["leader"], len(data.y), data.y.size if data.multi else None,
                                   data.metric))
    if comparisons.get("runner_up"):
        out.append(runner_up_sentence(comparisons["runner_up"], len(data.y), data.y.size if data.multi else None,
                                      data.metric))
    words = {"better": "better than", "worse": "worse than", "not clearly different": "not clearly different from",
             "the same": "right and wrong on the same labels as"}
    for key in ("setfit", "tfidf"):
        g = comparisons.get(key)
        if g:
            what = {"tfidf": "TF-IDF + LR", "setfit": "SetFit on the public MiniLM, the tool you could download"
                    + ("" if g["b"].endswith("(setfit library)") else " (warmstart's SetFit standing in for the "
                       "library: the same method, within 0.2 points of it in benchmarks/results/few_label.md)")}[key]
            out.append(f"Against {what}: {g['gap']:+.1f} points (95% interval {g['low']:+.1f} to {g['high']:+.1f}): "
                       f"{words[g['verdict']]} it.")
    if balance and comparisons.get("majority"):
        out.append(majority.sentence(comparisons["majority"], balance, len(data.y), data.balanced) or "")
    if chosen == "setfit:MiniLM":
        out.append("The chosen model is SetFit on the public MiniLM as it ships: what you could download did best "
                   "here; nothing warmstart adapted or pretrained beat it.")
    g = comparisons.get("adaptation")
    if g:
        out.append(f"Did adapting to your unlabelled text help? {g['a']} against {g['b']}: {g['gap']:+.1f} points "
                   f"({g['low']:+.1f} to {g['high']:+.1f}): "
                   + {"better": "yes.", "worse": "no, it hurt.", "not clearly different": "not clearly.",
                      "the same": "no: both were right and wrong on the same labels."}[g["verdict"]]
                   + ("" if unl.get("kept") else f" The adapted encoder was dropped: its {run.rank_by} score did not "
                      f"rise ({unl['base_rank']:.3f} -> {unl['rank']:.3f}), the test fixed before adapting."))
    elif unl.get("why"):
        out.append(f"Unlabelled text: {unl['why']}.")
    g = comparisons.get("pretraining")
    if g:
        out.append(f"warmstart's own pretraining from scratch against TF-IDF + LR: {g['gap']:+.1f} points "
                   f"({g['low']:+.1f} to {g['high']:+.1f}).")
    if comparisons.get("setfit") and comparisons["setfit"]["verdict"] != "better" and chosen != "setfit:MiniLM":
        out.append("Plainly: on these labels the chosen model has not clearly beaten what you could download; "
                   "it is delivered as the best warmstart could choose here, not because it earned its cost.")
    return [s for s in out if s]


def why_chosen(comparisons: dict, metric: str, default_why: str | None) -> str:
    """The reason in the first sentence (autopilot/choice.py): the default (the best score too, or no pipeline
    clearly better), clearly better than the default, or the next in line when the default's refit did not fit."""
    g = comparisons.get("default")
    if g and g["verdict"] != "better":
        return f"the default, {g['b']}, could not be refitted in the time left; this was next in line"
    if g:
        return (f"clearly better out of fold than the default, {g['b']}: {g['gap']:+.1f} points, 95% interval "
                f"{g['low']:+.1f} to {g['high']:+.1f}")
    if default_why is None:
        return f"the best out-of-fold {metric} of the pipelines run"
    if comparisons.get("leader"):
        return f"the default, {default_why}; no pipeline was clearly better out of fold"
    return f"the default, {default_why}, and the best out-of-fold {metric} of the pipelines run"


def leader_sentence(g: dict, n: int, decisions: int | None = None, metric: str = "accuracy") -> str:
    """Why the best out-of-fold score did not win: its lead over the default is not clear (autopilot/choice.py).
    `metric`: the score's name; micro-F1 and balanced accuracy count some right answers more than others."""
    unit = f"label decisions of your {n} texts" if decisions else f"your {n} labels"
    more = (f"{g['labels']} more of {unit} right" if g["labels"] > 0 else f"more of the ones {metric} weighs most right")
    return (f"{g['a']} scored {g['gap']:.1f} points higher out of fold (95% interval {g['low']:+.1f} to "
            f"{g['high']:+.1f}; {more}): not clearly better. The best of several scores on this few labels is "
            "partly luck: on warmstart's benchmarks such leads over the default did not hold on the test set "
            "(benchmarks/results/auto.md), so the default is kept.")


def runner_up_sentence(g: dict, n: int, decisions: int | None = None, metric: str = "accuracy") -> str:
    """How far the choice is from the next pipeline, in points and in labels, so that a near-tie is said to be one:
    at 16 labels per class one label of 32 separated a choice from the next pipelines, and test put it about 3
    points below the adapted encoder's SetFit (benchmarks/results/auto.md, rt seed 0). `decisions`: sets of labels,
    the N texts' (text, label) decisions, which the margin counts."""
    if g["verdict"] == "the same":
        return (f"The runner-up, {g['b']}, was right and wrong on the same labels: a tie, which goes to the cheaper "
                "pipeline or the one run first.")
    unit = f"{decisions} label decisions (your {n} texts, each label yes or no)" if decisions else f"{n} labels"
    margin = (f"{g['labels']} more of your {unit} right" if g["labels"] > 0 else
              f"{-g['labels']} fewer of your {unit} right, but more of the ones {metric} weighs most" if g["labels"] else
              f"as many of your {'label decisions' if decisions else 'labels'} right, different ones")
    head = (f"The runner-up, {g['b']}, is {g['gap']:.1f} points behind out of fold (95% interval {g['low']:+.1f} "
            f"to {g['high']:+.1f}; {margin})")
    if g["verdict"] == "better":
        return head + ": the choice is clear."
    return head + ": not clearly different; either may do better on new rows, and more labels would tell them apart."
