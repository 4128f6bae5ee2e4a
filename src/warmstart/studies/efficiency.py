"""Label-efficiency statistics of a study's results table: means with confidence intervals, gaps between
initialisations, and "labels saved" (how many labels scratch needs to match a pretrained model).

Seeds are few (3 is typical), so intervals use Student's t for means and a bootstrap over seeds for labels
saved; both say how little three seeds pin down, which is the honest answer.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
MIN_SEEDS = 3  # below this, an interval over seeds is not a basis for a verdict


def curve(results: pd.DataFrame, task: str) -> pd.DataFrame:
    """-> one row per (init, strategy, labels): mean, std, n, and the t interval (low, high), all in % of score."""
    df = results[results["task"] == task]
    rows = []
    for (init, strategy, labels), g in df.groupby(["init", "strategy", "labels"], sort=False):
        x = 100 * g["score"].to_numpy(float)
        mean, n = float(x.mean()), len(x)
        std = float(x.std(ddof=1)) if n > 1 else 0.0
        half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)) if n > 1 else 0.0
        # a band never leaves what the metric can be (two seeds give t = 12.7: 40% to 110% is not a finding)
        rows.append({"init": init, "strategy": strategy, "labels": int(labels), "mean": mean, "std": std, "n": n,
                     "low": max(0.0, mean - half), "high": min(100.0, mean + half)})
    return pd.DataFrame(rows, columns=["init", "strategy", "labels", "mean", "std", "n", "low", "high"])


def gap(results: pd.DataFrame, task: str, a: str, b: str, labels: int, paired: bool = False) -> dict | None:
    """Mean score of init `a` minus init `b` at `labels` (points), with Welch's t interval; `paired`: the t interval
    of the per-seed differences instead, when both have the same seeds (each seed drew the same labels for both, so
    the labels' luck cancels). None if either is missing."""
    df = results[(results["task"] == task) & (results["labels"] == labels)]
    x, y = (100 * df[df["init"] == i]["score"].to_numpy(float) for i in (a, b))
    if not len(x) or not len(y):
        return None
    if paired and "seed" in df and len(x) >= 2:
        by_seed = [df[df["init"] == i].set_index("seed")["score"] for i in (a, b)]
        if sorted(by_seed[0].index) == sorted(by_seed[1].index) and by_seed[0].index.is_unique:
            d = 100 * (by_seed[0] - by_seed[1].reindex(by_seed[0].index)).to_numpy(float)
            mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))
            half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(d) - 1) * se)
            return {"gap": mean, "low": max(-100.0, mean - half), "high": min(100.0, mean + half),
                    "seeds": (len(d), len(d)), "paired": True}
    diff, seeds = float(x.mean() - y.mean()), (len(x), len(y))
    if len(x) < 2 or len(y) < 2:
        return {"gap": diff, "low": float("nan"), "high": float("nan"), "seeds": seeds}
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    if se == 0:
        return {"gap": diff, "low": diff, "high": diff, "seeds": seeds}
    dof = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof) * se)
    return {"gap": diff, "low": max(-100.0, diff - half), "high": min(100.0, diff + half), "seeds": seeds}


def verdict(g: dict) -> str:
    """What a gap's interval can carry, in words: better, worse, no clear difference, or too few seeds."""
    if min(g["seeds"]) < MIN_SEEDS or math.isnan(g["low"]):
        return f"too few seeds to tell ({g['seeds'][0]} and {g['seeds'][1]})"
    if g["low"] > 0:
        return "better"
    if g["high"] < 0:
        return "worse"
    return "no clear difference"


def describe_gap(a: str, b: str, labels: int, g: dict) -> str:
    """One sentence: the gap, its interval when the seeds can carry one, and the verdict."""
    words = verdict(g)
    interval = "" if words.startswith("too few") else \
        f" ({CONFIDENCE:.0%} interval {g['low']:+.1f} to {g['high']:+.1f})"
    return f"{a} − {b} at {labels} labels: {g['gap']:+.1f} points{interval}: {words}"


def crossing(label_counts: np.ndarray, means: np.ndarray, target: float) -> float:
    """The label count at which a rising curve first reaches `target`, interpolated linearly in log(labels)
    between grid points. Its first grid point if already there; inf if it never gets there on the grid."""
    for i, (n, m) in enumerate(zip(label_counts, means, strict=True)):
        if m >= target:
            if i == 0:
                return float(n)
            n0, m0 = label_counts[i - 1], means[i - 1]
            frac = (target - m0) / (m - m0)
            return float(math.exp(math.log(n0) + frac * (math.log(n) - math.log(n0))))
    return float("inf")


def labels_saved(results: pd.DataFrame, task: str, init: str, at: int, baseline: str = "scratch",
                 draws: int = 2000, seed: int = 0) -> dict | None:
    """How many labels `baseline` needs to match `init` trained on `at` labels.

    -> {"target" (init's mean % at `at`), "needed" (labels; inf: more than the grid holds), "saved"
    (needed - at), "low"/"high": the 95% bootstrap interval of needed, resampling seeds within every cell}."""
    df = results[results["task"] == task]
    ref = 100 * df[(df["init"] == init) & (df["labels"] == at)]["score"].to_numpy(float)
    base = df[df["init"] == baseline]
    if not len(ref) or base.empty:
        return None
    counts = np.array(sorted(base["labels"].unique()))
    per_count = [100 * base[base["labels"] == n]["score"].to_numpy(float) for n in counts]
    needed = crossing(counts, np.array([x.mean() for x in per_count]), ref.mean())
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(draws):
        target = rng.choice(ref, len(ref)).mean()
        means = np.array([rng.choice(x, len(x)).mean() for x in per_count])
        boot.append(crossing(counts, means, target))
    # no interpolation between draws: some may be inf (never reached on the grid)
    low, high = np.quantile(np.array(boot), [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2], method="inverted_cdf")
    return {"target": float(ref.mean()), "needed": needed, "saved": needed - at, "low": float(low),
            "high": float(high), "grid_max": int(counts.max()), "grid_min": int(counts.min())}


def describe_saved(init: str, at: int, s: dict, baseline: str = "scratch") -> str:
    """One sentence a reader can quote."""
    def count(x: float) -> str:
        if math.isinf(x):
            return f"more than {s['grid_max']:,}"
        return f"at most {s['grid_min']:,}" if x <= s["grid_min"] else f"{x:,.0f}"

    if math.isinf(s["needed"]):
        return (f"{baseline} never reaches {s['target']:.1f}% ({init} at {at} labels) on this grid (up to "
                f"{s['grid_max']:,} labels): {init} saves more than {s['grid_max'] - at:,} labels.")
    if s["needed"] <= at:
        return f"{baseline} matches {s['target']:.1f}% ({init} at {at} labels) with {count(s['needed'])} labels: no labels saved."
    return (f"{baseline} needs {count(s['needed'])} labels to match {s['target']:.1f}% ({init} at {at} labels): "
            f"{s['saved']:,.0f} labels saved ({CONFIDENCE:.0%} interval of the labels needed: {count(s['low'])} to "
            f"{count(s['high'])}).")
