"""Summaries, tables and plots of results tables (one row per run: init, labels, seed, accuracy)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ORDER = ["pretrained", "scratch", "tfidf_logreg"]
NAMES = {"pretrained": "warmstart pretrained", "scratch": "scratch (same architecture)",
         "tfidf_logreg": "TF-IDF + logistic regression"}


def summarise(results: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """-> one row per (init, labels): mean, std (in %, std with ddof=1; 0 for one seed) and n seeds."""
    g = results.groupby(["init", "labels"])[metric]
    out = pd.DataFrame({"mean": 100 * g.mean(), "std": (100 * g.std(ddof=1)).fillna(0.0), "n": g.count()})
    return out.reset_index()


def markdown_table(summary: pd.DataFrame, order: list[str] | None = None) -> str:
    """Rows in `order` (default: pretrained, scratch, TF-IDF, then the rest by name); columns by label count."""
    labels = sorted(summary["labels"].unique())
    order = order or ORDER
    inits = [i for i in order if i in set(summary["init"])] + sorted(set(summary["init"]) - set(order))
    lines = ["| initialisation | " + " | ".join(f"{n} labels" for n in labels) + " |",
             "|---|" + "---|" * len(labels)]
    for init in inits:
        cells = []
        for n in labels:
            row = summary[(summary["init"] == init) & (summary["labels"] == n)]
            cells.append(f"{row['mean'].iloc[0]:.1f} ± {row['std'].iloc[0]:.1f}" if len(row) else "–")
        lines.append(f"| {NAMES.get(init, init)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def label_efficiency_plot(summary: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Accuracy against label count (log scale) with a ±1 std band per initialisation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for init in [i for i in ORDER if i in set(summary["init"])]:
        s = summary[summary["init"] == init].sort_values("labels")
        ax.plot(s["labels"], s["mean"], marker="o", label=NAMES.get(init, init))
        ax.fill_between(s["labels"], s["mean"] - s["std"], s["mean"] + s["std"], alpha=0.2)
    ax.set_xscale("log")
    ax.set_xticks(sorted(summary["labels"].unique()), [str(n) for n in sorted(summary["labels"].unique())])
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
