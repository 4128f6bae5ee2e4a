import pandas as pd

from warmstart.studies.demo import _verdicts
from warmstart.studies.report import label_efficiency_plot, markdown_table, summarise


def _results() -> pd.DataFrame:
    rows = []
    # SetFit moves with the seed as the pretrained row does (the same labels): its gap is paired, 5 points each time
    for seed, (p, s, t, f) in enumerate([(0.70, 0.58, 0.60, 0.75), (0.72, 0.58, 0.62, 0.77), (0.68, 0.58, 0.61, 0.73)]):
        for init, acc in (("pretrained", p), ("scratch", s), ("tfidf_logreg", t), ("setfit", f)):
            rows.append({"init": init, "labels": 100, "seed": seed, "accuracy": acc})
            rows.append({"init": init, "labels": 500, "seed": seed, "accuracy": acc + 0.05 * (init == "scratch")})
    return pd.DataFrame(rows)


def test_summary_table_and_verdicts(tmp_path):
    summary = summarise(_results())
    row = summary[(summary["init"] == "pretrained") & (summary["labels"] == 100)].iloc[0]
    assert round(row["mean"], 6) == 70.0 and round(row["std"], 6) == 2.0 and row["n"] == 3
    table = markdown_table(summary)
    assert "| warmstart pretrained | 70.0 ± 2.0 | 70.0 ± 2.0 |" in table
    assert table.splitlines()[0] == "| initialisation | 100 labels | 500 labels |"
    verdicts = _verdicts(_results())
    assert verdicts[0].startswith("pretrained − scratch at 100 labels: +12.0 points (95% interval +7.0 to +17.0): better")
    assert "pretrained − TF-IDF + LR at 100 labels: +9.0 points" in verdicts[0]
    assert "pretrained − SetFit on MiniLM at 100 labels: -5.0 points" in verdicts[0] and "worse" in verdicts[0]
    assert "| SetFit on MiniLM (public, 22M parameters) | 75.0 ± 2.0 |" in table
    assert verdicts[-1].startswith("Plainly: SetFit on the public MiniLM beats warmstart's own short pretraining at "
                                   "every label count")
    assert verdicts[1].startswith("pretrained − scratch at 500 labels: +7.0 points")
    png = label_efficiency_plot(summary, tmp_path / "plot.png", title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def study_fixture(root):
    """A study's run folder as `warmstart study` leaves it: results.csv, one cell's training log, a rank table."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    level = {"movies": 0.68, "kjv": 0.62, "scratch": 0.55, "tfidf_logreg": 0.58}
    rows = []
    for n, lift in ((100, 0.0), (300, 0.04), (1000, 0.09)):
        for seed in range(3):
            for init, base in level.items():
                cell = root / "cells" / "sentiment" / f"{init}-lp_ft-{n}-seed{seed}"
                rows.append({"task": "sentiment", "init": init, "strategy": "-" if init == "tfidf_logreg" else "lp_ft",
                             "labels": n, "seed": seed, "metric": "accuracy",
                             "score": base + lift + 0.01 * (seed - 1), "seconds": 3.0, "cell": str(cell),
                             "overrides": f"init={init}"})
    log = root / "cells" / "sentiment" / "movies-lp_ft-100-seed0" / "training_log.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text("\n".join(json.dumps({"step": s, "val_accuracy": 0.6 + s / 1000}) for s in (20, 40, 60)))
    (root / "rank").mkdir()
    pd.DataFrame({"rank": [1, 2], "init": ["movies", "kjv"], "candidate": ["a", "b"], "logme": [-0.6, -0.7],
                  "hscore": [1.0, 0.5], "knn": [0.7, 0.6], "probe": [0.7, 0.65]}).to_csv(
        root / "rank" / "sentiment-100.csv", index=False)
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return root


def test_html_report_is_self_contained_with_every_plot(tmp_path):
    from warmstart.cli import main

    root = study_fixture(tmp_path / "study")
    assert main(["report", str(root)]) == 0
    page = (root / "report.html").read_text()
    assert page.count('<img class="plot"') == 3  # label efficiency, training curves, ranking vs real
    assert page.count("data:image/png;base64,") == 3 and "http" not in page  # nothing fetched
    assert "movies − scratch at 100 labels: +13.0 points" in page
    assert "movies − kjv at 100 labels: +6.0 points" in page
    assert "scratch never reaches 68.0% (movies at 100 labels) on this grid (up to 1,000 labels)" in page
    assert "scratch needs 618 labels to match 62.0% (kjv at 100 labels): 518 labels saved" in page


def test_report_names_a_missing_table(tmp_path):
    from warmstart.cli import main

    assert main(["report", str(tmp_path)]) == 2


def test_verdicts_say_what_the_seeds_can_carry():
    from warmstart.studies.efficiency import curve, describe_gap, gap, verdict

    def table(a, b):
        return pd.DataFrame([{"task": "t", "init": i, "strategy": "s", "labels": 10, "seed": k, "score": v}
                             for i, xs in (("a", a), ("b", b)) for k, v in enumerate(xs)])

    two = gap(table([0.6, 0.9], [0.5, 0.55]), "t", "a", "b", 10)  # 2 seeds: a t interval of +-12.7 std
    assert verdict(two) == "too few seeds to tell (2 and 2)"
    assert describe_gap("a", "b", 10, two) == "a − b at 10 labels: +22.5 points: too few seeds to tell (2 and 2)"
    assert verdict(gap(table([0.6, 0.62, 0.61], [0.5, 0.52, 0.51]), "t", "a", "b", 10)) == "better"
    assert verdict(gap(table([0.5, 0.52, 0.51], [0.6, 0.62, 0.61]), "t", "a", "b", 10)) == "worse"
    assert verdict(gap(table([0.5, 0.6, 0.55], [0.52, 0.58, 0.56]), "t", "a", "b", 10)) == "no clear difference"
    wide = curve(table([0.05, 0.95], [0.5, 0.5]), "t")  # a band from -450% to +550% is clipped to [0, 100]
    assert wide["low"].min() >= 0 and wide["high"].max() <= 100


def test_the_report_opens_with_how_the_labels_were_counted(tmp_path):
    from warmstart.studies.report import protocol

    results = pd.DataFrame({"protocol": ["100 labels: 80 to train, 20 held out to choose, then trained again on all "
                                         "100"], "validation_labels": [0]})
    assert protocol(results).startswith("Labels: N labels means N labelled examples in all")
    assert "explicit dev set" in protocol(results.assign(validation_labels=[500]))
    assert "was not recorded" in protocol(pd.DataFrame({"score": [0.5]}))


def test_the_report_notes_test_rows_that_repeat_a_learned_text(tmp_path):
    """A task whose test rows repeat texts its runs learned from is named, with the largest count; an older
    results.csv without the column, or a study with none, gets no note."""
    from warmstart.studies.report import repeats_note, write_report

    root = study_fixture(tmp_path / "study")
    assert "repeat a text" not in write_report(root).read_text(encoding="utf-8")
    results = pd.read_csv(root / "results.csv")
    assert repeats_note(results.assign(test_repeats=0)) == ""
    results.assign(test_repeats=[3 if i == 5 else 0 for i in range(len(results))]).to_csv(root / "results.csv",
                                                                                           index=False)
    page = write_report(root).read_text(encoding="utf-8")
    assert "sentiment: up to 3 test rows repeat a text that a run learned from" in page
