import pandas as pd

from warmstart.demo import _verdicts
from warmstart.report import label_efficiency_plot, markdown_table, summarise


def _results() -> pd.DataFrame:
    rows = []
    for seed, (p, s, t) in enumerate([(0.70, 0.58, 0.60), (0.72, 0.58, 0.62), (0.68, 0.58, 0.61)]):
        for init, acc in (("pretrained", p), ("scratch", s), ("tfidf_logreg", t)):
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
    verdicts = _verdicts(summary)
    assert verdicts[0].startswith("100 labels: pretrained beats scratch (+12.0 points; seed spread 2.0)")
    assert "+9.0 vs TF-IDF" in verdicts[0]
    assert verdicts[1].startswith("500 labels: pretrained beats scratch (+7.0 points")
    png = label_efficiency_plot(summary, tmp_path / "plot.png", title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
