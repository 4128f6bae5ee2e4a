"""`warmstart auto`'s verdict (autopilot/verdict.py) as the user reads it: a short summary on stdout, one
self-contained HTML page (the study report's parts), auto.json, and the deliverable folder's model card and
sentence-transformers layout."""

from __future__ import annotations

import json
from typing import Any

import yaml

from warmstart.config.loader import CONFIG_FILENAME
from warmstart.engine.outputs import replace_file
from warmstart.studies.report import STYLE, axes, esc, figure_html
from warmstart.tasks.card import usage


def _metric(result: dict) -> str:
    return result.get("metric", "accuracy")


def _figure(result: dict, value: float) -> str:
    """A test score as the summary says it: 81.2% accuracy (balanced accuracy), or 45.3 micro-F1."""
    return f"{100 * value:.1f} micro-F1" if result.get("label_sets") else f"{100 * value:.1f}% {_metric(result)}"


def test_figure(result: dict) -> str:
    """The final model on the file's test rows, and on those that do not repeat a labelled text where some do."""
    c = result["chosen"]
    said = _figure(result, c["test_score"])
    if c.get("test_repeats"):
        n, r = c.get("test_size", 0), c["test_repeats"]
        rest = (f"{_figure(result, c['test_unseen_score'])} on the other {n - r}"
                if c.get("test_unseen_score") is not None else "none is new")
        said += (f"; {r} of the {n} test rows repeat one of your labelled texts, which the model was fitted on: "
                 f"{rest}")
    balance = result.get("majority") or {}
    if balance.get("test_share") is not None:
        rare = (f"; the model found {c['test_rare_found']} of the {c['test_rare']} {balance['rare_class']!r} test rows"
                if c.get("test_rare") and balance["share"] >= 60 else "")  # a skewed table: the class that counts
        floor = f"{balance['test_share']:.1f}%"
        if c.get("test_accuracy") is not None:  # balanced: the accuracy beside it, the rival's both ways
            said += f", {100 * c['test_accuracy']:.1f}% accuracy"
            floor = f"{100 / len(result['classes']):.1f}% balanced, {floor} accuracy"
        said += f" (always answering {balance['class']!r} would score {floor}{rare})"
    return said


def summary(result: dict) -> str:
    c = result["chosen"]
    lines = [f"warmstart auto: {result['protocol']}.", *result["sentences"], result["more_labels"],
             *[f"Not run: {s['name']} ({s['status']})." for s in result["skipped"]]]
    if c.get("test_score") is not None:
        lines.append(f"Test rows of your file (never used to decide): {test_figure(result)}.")
    lines.append(f"Model: {c['folder']} (warmstart predict {c['folder']} FILE; also SentenceTransformer(folder)). "
                 f"Wall time {result['wall_min']} of {result['budget_min']} min.")
    return "\n".join(lines)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    return ("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows) + "</table>")


def _curve_plot(points: list[dict], metric: str = "accuracy") -> str:
    fig, ax = axes()
    x = [p["labels"] for p in points]
    ax.plot(x, [p["probe"] for p in points], marker="o", label="chosen encoder, linear probe")
    ax.plot(x, [p["tfidf"] for p in points], marker="o", linestyle="--", label="TF-IDF + LR")
    ax.set_xscale("log")
    ax.set_xticks(x, [str(v) for v in x])
    ax.set(xlabel="labels (a fold's training share)", ylabel=f"out-of-fold {metric} (%)",
           title="label efficiency inside your labels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return figure_html(fig, "label-efficiency curve inside the labels")


def selection_note(result: dict) -> str:
    """How far to trust the chosen pipeline's cross-validated figure: the best of several noisy estimates leans
    optimistic; a default kept below a higher (not clearly better) score was not picked for its figure."""
    sober = "the paired gaps below and the test rows, where your file has them, are the sober reading."
    if result["comparisons"].get("leader"):
        return ("The chosen pipeline is the default, kept below a higher but not clearly better score, so its figure "
                "was not picked for being the highest and is not inflated by that choice; " + sober)
    return "The winner's figure is the best of several noisy estimates, so it leans optimistic; " + sober


def page(result: dict) -> str:
    c = result["chosen"]
    parts = [f"<h1>warmstart auto: {esc(c['name'])}</h1>", f"<p class='note'>{esc(result['protocol'])}.</p>",
             "<h2>Verdict</h2><ul>" + "".join(f"<li>{esc(s)}</li>" for s in result["sentences"])
             + f"<li>{esc(result['more_labels'])}</li></ul>"]
    if c.get("test_score") is not None:
        parts.append(f"<p>Test rows of your file, scored once at the end: {esc(test_figure(result))}.</p>")
    parts.append("<h2>Pipelines, cross-validated on the same folds</h2><p class='note'>" + esc(selection_note(result))
                 + " Scratch (a randomly initialised encoder fine-tuned on these labels) is not run: TF-IDF + LR is "
                 "the no-pretraining rival.</p>" + _table(
        ["pipeline", _metric(result) + " %", "95% interval"],
        [[r["name"], r["score"], f"{r['low']} to {r['high']}"] for r in result["pipelines"]]
        + [[s["name"], "–", s["status"]] for s in result["skipped"]]))
    parts.append("<h2>The scores that decided each step</h2>" + _table(
        ["candidate", f"{result.get('rank_by', 'kNN')} (cross-validated)", "probe % (out of fold)", "folder"],
        [[x["name"], x["rank"], x["probe"], x["folder"]] for x in result["candidates"]]))
    if result["unlabelled"].get("why"):
        parts.append(f"<p>Unlabelled text: {esc(result['unlabelled']['why'])}.</p>")
    parts.append("<h2>Comparisons, paired on the same out-of-fold predictions</h2>" + _table(
        ["", "minus", "points", "95% interval", "reading"],
        [[g["a"], g["b"], g["gap"], f"{g['low']} to {g['high']}", g["verdict"]]
         for g in result["comparisons"].values()]))
    parts.append("<h2>More labels?</h2>" + _curve_plot(result["curve"], _metric(result))
                 + f"<p>{esc(result['more_labels'])}</p>")
    parts.append(f"<h2>The model</h2><p><code>{esc(c['folder'])}</code>: a Hugging Face folder "
                 f"(<code>warmstart predict {esc(c['folder'])} FILE</code>), a sentence-transformers folder, and its "
                 f"model card (README.md). Wall time {result['wall_min']} of a {result['budget_min']}-minute budget.</p>")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>warmstart auto</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")


def model_card(result: dict, pooling: str = "mean", max_length: int = 128) -> str:
    """The deliverable folder's README.md; `pooling` and `max_length`: the fit's (`train.pooling`, `train.max_length`)."""
    c, multi = result["chosen"], bool(result.get("label_sets"))
    test = (f"- Test rows of the labelled file, never used to decide: {test_figure(result)}.\n"
            if c.get("test_score") is not None else "")
    # the hub's text-classification widget runs the plain forward: right only for the standard head
    tag = "pipeline_tag: text-classification\n" if pooling == "cls" else ""
    use = usage(pooling, max_length, multi_label=multi) + (
        "\n\nAs a sentence encoder: `sentence_transformers.SentenceTransformer(THIS_FOLDER)` (pooled as the head was "
        "fitted).")
    return f"""---
library_name: transformers
{tag}tags: [warmstart, text-classification, sentence-transformers]
---
# {c['name']}

Made by `warmstart auto` from {result['labels']} labelled examples ({len(result['classes'])} \
{'labels, any number a text' if multi else 'classes'}: {', '.join(result['classes'])}) and the encoder \
`{c['encoder_folder']}`.

## Protocol
{result['protocol']}.

## Metrics
- Cross-validated {_metric(result)} on the labels: {c['score']}{'' if multi else '%'} (95% interval {c['low']} \
to {c['high']}).
{test}- Rivals on the same folds: see `../report.html`.

## Use
{use}

## Limits
Intended for texts like the labelled ones; {result['labels']} labels give a wide interval (above), and the score
on other kinds of text is unmeasured. No checkpoint code runs when it loads (safetensors weights only).
"""


def _write(path, text: str) -> None:
    """Whole or not at all (a kill mid-write must not leave the model's config.json cut for the rerun to read)."""
    replace_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def deliver(run, result: dict) -> None:
    """The model card and the sentence-transformers layout in OUT/model; report.html and auto.json in OUT; the
    summary on stdout."""
    from warmstart.models.sentence import write_sentence_layout

    model = run.root / "model"
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    if run.data.multi and config.get("label_form") != run.data.form:  # the folds' tables had one column a label:
        config["label_form"] = run.data.form  # predict answers in the user's own form (0/1 vectors or names)
        _write(model / "config.json", json.dumps(config, indent=2) + "\n")
    dim = config.get("hidden_size") or config.get("dim") or config.get("d_model")
    encoder = result["chosen"]["encoder"]
    # the pooling the winner was fitted with (a [CLS]-pooled candidate such as a BGE fits on its [CLS] state)
    train = (yaml.safe_load((model / CONFIG_FILENAME).read_text(encoding="utf-8")) or {}).get("train", {})
    pooling, max_length = train.get("pooling", "mean"), int(train.get("max_length") or 128)
    write_sentence_layout(model, run.encoders[encoder], {"cls_token": "cls"}.get(pooling, pooling), max_length,
                          int(dim))
    _write(model / "README.md", model_card(result, pooling, max_length))
    _write(run.root / "report.html", page(result))
    _write(run.root / "auto.json", json.dumps(result, indent=1))
    print("\n" + summary(result) + f"\nreport: {run.root / 'report.html'}", flush=True)
