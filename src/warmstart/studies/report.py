"""Summaries, tables and plots of results tables: the demo's markdown report and a study's HTML report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ORDER = ["pretrained", "scratch", "tfidf_logreg", "setfit", "minilm_probe", "adapted_probe"]
NAMES = {"pretrained": "warmstart pretrained", "scratch": "scratch (same architecture)",
         "tfidf_logreg": "TF-IDF + logistic regression", "setfit": "SetFit on MiniLM (public, 22M parameters)",
         "minilm_probe": "MiniLM as shipped, linear probe",
         "adapted_probe": "MiniLM adapted to the unlabelled text (warmstart), linear probe"}


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


# ---------------------------------------------------------------- the study report (warmstart report RUN_DIR)
BASELINES = {"tfidf_logreg": "TF-IDF + logistic regression (no pretraining)",
             "pixels_logreg": "logistic regression on raw pixels (no pretraining)",
             "commonest_tag": "each word's commonest tag in the labels (no pretraining)",
             "lead": "Lead: the first sentences within the budget (no model)",
             "tfidf_cosine": "TF-IDF cosine of context and reply (no pretraining)",
             "tfidf_ovr": "TF-IDF + a logistic regression per label (no pretraining)"}
STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
td:first-child,th:first-child{text-align:left}img.plot{max-width:100%;display:block;margin:1rem 0}
.note{color:#555;font-size:.9rem}"""


def _figure_html(fig, alt: str) -> str:
    """A matplotlib figure as an inline PNG: the page needs no other file and no network."""
    import base64
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f'<img class="plot" alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _esc(text) -> str:
    import html

    return html.escape(str(text))


def _axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 4.0), dpi=110)


# the report's parts that other pages (warmstart auto's verdict) are made of
figure_html, esc, axes = _figure_html, _esc, _axes


def _curve_plot(points: pd.DataFrame, task: str, metric: str) -> str:
    fig, ax = _axes()
    for (init, strategy), s in points.groupby(["init", "strategy"], sort=False):
        s = s.sort_values("labels")
        name = BASELINES.get(init, init) + ("" if strategy in ("-", points["strategy"].iloc[0]) else f" ({strategy})")
        ax.plot(s["labels"], s["mean"], marker="o", label=name, linestyle="--" if init in BASELINES else "-")
        ax.fill_between(s["labels"], s["low"], s["high"], alpha=0.15)
    counts = sorted(points["labels"].unique())
    ax.set_xscale("log")
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.set(xlabel="labelled training examples", ylabel=f"test {metric} (%)",
           title=f"{task}: label efficiency (mean, 95% interval over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _figure_html(fig, f"label-efficiency curves for {task}")


def _training_plot(rows: pd.DataFrame, task: str) -> str | None:
    """Validation metric against step for each init (smallest label count, first seed), from the cells' logs."""
    from warmstart.engine.checkpoint import log_record

    fig, ax = _axes()
    drawn = 0
    for _, r in rows.iterrows():
        log = Path(str(r["cell"])) / "training_log.jsonl"
        if not log.is_file():
            continue
        records = [r for r in map(log_record, log.read_text(encoding="utf-8").splitlines()) if r is not None]
        evals = [(x["step"], x[k]) for x in records for k in x if k.startswith("val_")]
        if evals:
            ax.plot(*zip(*evals, strict=True), marker=".", label=f"{r['init']} ({r['strategy']})")
            drawn += 1
    if not drawn:
        import matplotlib.pyplot as plt

        plt.close(fig)
        return None
    ax.set(xlabel="fine-tuning step", ylabel="validation score",
           title=f"{task}: training curves ({rows['labels'].iloc[0]} labels, seed {rows['seed'].iloc[0]})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _figure_html(fig, f"training curves for {task}")


def _rank_plot(rank: pd.DataFrame, points: pd.DataFrame, task: str, labels: int) -> str | None:
    """The default ranking score of each candidate against its fine-tuned mean score at that label count,
    with Kendall tau."""
    from scipy.stats import kendalltau

    from warmstart.select.rank import DEFAULT_SCORE

    truth = points[points["labels"] == labels].groupby("init")["mean"].max()
    rank = rank[rank["init"].isin(truth.index)]
    score = DEFAULT_SCORE if DEFAULT_SCORE in rank.columns else "logme"
    if len(rank) < 2 or score not in rank.columns:
        return None
    fig, ax = _axes()
    x, y = rank[score].to_numpy(), truth[rank["init"]].to_numpy()
    ax.scatter(x, y)
    for xi, yi, name in zip(x, y, rank["init"], strict=True):
        ax.annotate(name, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    tau = kendalltau(x, y).statistic
    ax.set(xlabel=f"{score} (warmstart rank, frozen features)", ylabel="fine-tuned test score (%)",
           title=f"{task}, {labels} labels: ranking score vs real score (Kendall tau {tau:.2f})")
    ax.grid(alpha=0.3)
    return _figure_html(fig, f"ranking scores against fine-tuned scores for {task}")


def _table_html(points: pd.DataFrame) -> str:
    counts = sorted(points["labels"].unique())
    head = "<tr><th>initialisation</th>" + "".join(f"<th>{n} labels</th>" for n in counts) + "</tr>"
    body = []
    for (init, strategy), s in points.groupby(["init", "strategy"], sort=False):
        cells = {int(r["labels"]): f"{r['mean']:.1f} ± {r['std']:.1f}" for _, r in s.iterrows()}
        name = BASELINES.get(init, init) + ("" if strategy == "-" else f" · {strategy}")
        body.append(f"<tr><td>{_esc(name)}</td>" + "".join(f"<td>{cells.get(n, '–')}</td>" for n in counts) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def protocol(results: pd.DataFrame) -> str:
    """The report's first line: how the labels were counted (the `protocol` and `validation_labels` columns)."""
    if "protocol" not in results.columns or results["protocol"].dropna().empty:
        return ("Labels: how they were counted was not recorded (a task that does not report it, or a study run "
                "before warmstart 0.2, when runs could also use a separate validation set for early stopping).")
    extra = results["validation_labels"].fillna(0) if "validation_labels" in results else pd.Series([0])
    if (extra > 0).any():
        return (f"Labels: N train labels plus an explicit dev set of up to {int(extra.max())} labels (the recipe's "
                "data.validation_labels) for choosing; both are counted. E.g. " + str(results["protocol"].dropna().iloc[0]) + ".")
    return ("Labels: N labels means N labelled examples in all: each run held a share of its N out to choose when "
            "to stop (and LP-FT's keep-or-replace), then trained again on all N; probes and baselines chose their C "
            "by cross-validation inside the N. E.g. " + str(results["protocol"].dropna().iloc[0]) + ".")


def repeats_note(results: pd.DataFrame) -> str:
    """A note for each task whose test rows repeat texts that its runs learned from (results' `test_repeats`):
    there a score measures memory, and each run's metrics.json gives its score on the other rows."""
    if "test_repeats" not in results.columns:
        return ""
    most = results.assign(r=results["test_repeats"].fillna(0)).groupby("task", sort=False)["r"].max()
    return "".join(f"<p class='note'>{_esc(task)}: up to {int(r)} test rows repeat a text that a run learned from; "
                   "those rows score memory, not a forecast. Each run's metrics.json gives its score on the other "
                   "rows (accuracy_unseen / micro_f1_unseen).</p>" for task, r in most.items() if r > 0)


def write_report(run_dir: str | Path, labels_saved_at: int | None = None) -> Path:
    """RUN_DIR/report.html from RUN_DIR/results.csv (a study's table): one self-contained page per study."""
    from warmstart.errors import WarmstartError
    from warmstart.studies.efficiency import MIN_SEEDS, curve, describe_gap, describe_saved, gap, labels_saved

    root = Path(run_dir)
    path = root / "results.csv"
    if not path.is_file():
        raise WarmstartError(f"{path}: not found; `warmstart report` reads the results table of a `warmstart study`")
    from warmstart.data.sources import read_table

    results = read_table(str(path))  # a damaged table is one line, not a parser's traceback
    missing = {"task", "init", "strategy", "labels", "seed", "metric", "score"} - set(results.columns)
    if missing:
        raise WarmstartError(f"{path}: missing columns {', '.join(sorted(missing))}; is it a study's results.csv?")
    for column in ("labels", "seed", "score"):
        if not pd.api.types.is_numeric_dtype(results[column]):
            raise WarmstartError(f"{path}: column '{column}' holds non-numbers (e.g. {results[column].iloc[0]!r}); "
                                 "is it a study's results.csv?")
    parts = [f"<h1>Did pretraining help? {_esc(root.name)}</h1>", f"<p class='protocol'>{_esc(protocol(results))}</p>",
             f"<p class='note'>{len(results)} runs from {_esc(path)}; scores are test-set means over seeds (%), "
             "± the standard deviation; bands and intervals are 95%, clipped to what the metric can be; with fewer "
             f"than {MIN_SEEDS} seeds a difference is reported as too few seeds to tell.</p>", repeats_note(results)]
    for task, rows in results.groupby("task", sort=False):
        metric = rows["metric"].iloc[0]
        points = curve(results, task)
        parts += [f"<h2>{_esc(task)} ({_esc(metric)})</h2>", _table_html(points), _curve_plot(points, task, metric)]
        pretrained = [i for i in rows["init"].unique() if i != "scratch" and i not in BASELINES]
        at = labels_saved_at or int(rows["labels"].min())
        findings = []
        for init in pretrained:
            for other in ["scratch", *[b for b in BASELINES if b in set(rows["init"])]]:
                g = gap(results, task, init, other, at)
                if g:
                    findings.append(describe_gap(init, BASELINES.get(other, other), at, g))
            saved = labels_saved(results, task, init, at)
            if saved:
                findings.append(describe_saved(init, at, saved))
        for a, b in zip(pretrained, pretrained[1:], strict=False):  # e.g. in-domain vs unrelated corpus
            for n in sorted(rows["labels"].unique()):
                g = gap(results, task, a, b, int(n))
                if g:
                    findings.append(describe_gap(a, b, int(n), g))
        parts.append("<ul>" + "".join(f"<li>{_esc(f)}</li>" for f in findings) + "</ul>")
        if rows.loc[~rows["init"].isin(BASELINES), "strategy"].nunique() > 1:
            table = points[points["strategy"] != "-"].pivot_table(index=["init", "labels"], columns="strategy",
                                                                   values="mean")
            parts += ["<h3>Transfer strategies (mean %)</h3>", table.round(1).to_html(classes="strategies")]
        first = rows[(rows["labels"] == rows["labels"].min()) & (rows["seed"] == rows["seed"].min())
                     & ~rows["init"].isin(BASELINES)]
        training = _training_plot(first, task)
        parts.append(training or "<p class='note'>No training logs found beside the results.</p>")
        files = sorted((root / "rank").glob(f"{task}-*.csv"), key=lambda f: int(f.stem.rsplit("-", 1)[1]))
        plots = [p for f in files if (p := _rank_plot(pd.read_csv(f), points, task, int(f.stem.rsplit("-", 1)[1])))]
        if plots:
            parts += ["<h3>Choosing a checkpoint before fine-tuning (warmstart rank)</h3>", *plots]
    page, tmp = root / "report.html", root / ".report.html.tmp"
    try:  # written aside and renamed: a full disk leaves the previous page whole
        tmp.write_text(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>warmstart report: "
                       f"{_esc(root.name)}</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>",
                       encoding="utf-8")
        tmp.replace(page)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise WarmstartError(f"{page}: cannot write it ({e.strerror or e})") from None
    return page
