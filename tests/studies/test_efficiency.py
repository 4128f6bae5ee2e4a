import math

import numpy as np
import pandas as pd
import pytest

from warmstart.studies.efficiency import crossing, curve, describe_saved, gap, labels_saved


def _table(cells: dict[tuple[str, int], list[float]], task: str = "t") -> pd.DataFrame:
    rows = [{"task": task, "init": init, "strategy": "full", "labels": n, "seed": s, "score": v}
            for (init, n), scores in cells.items() for s, v in enumerate(scores)]
    return pd.DataFrame(rows)


def test_curve_mean_std_and_t_interval_by_hand():
    c = curve(_table({("a", 100): [0.60, 0.62, 0.64]}), "t").iloc[0]
    assert c["mean"] == pytest.approx(62.0) and c["std"] == pytest.approx(2.0) and c["n"] == 3
    half = 4.302652729911275 * 2.0 / math.sqrt(3)  # t(0.975, 2 dof) * s / sqrt(n)
    assert c["low"] == pytest.approx(62.0 - half) and c["high"] == pytest.approx(62.0 + half)


def test_gap_welch_interval_and_missing_inits():
    t = _table({("a", 100): [0.70, 0.72, 0.74], ("b", 100): [0.60, 0.60, 0.63]})
    g = gap(t, "t", "a", "b", 100)
    assert g["gap"] == pytest.approx(11.0)
    assert g["low"] < 11.0 < g["high"] and g["low"] > 0  # clearly apart
    assert gap(t, "t", "a", "nobody", 100) is None


def test_crossing_interpolates_in_log_labels():
    counts, means = np.array([100, 300, 1000]), np.array([50.0, 60.0, 70.0])
    assert crossing(counts, means, 65.0) == pytest.approx(math.sqrt(300 * 1000))
    assert crossing(counts, means, 40.0) == 100  # already there at the first grid point
    assert crossing(counts, means, 80.0) == math.inf


def test_labels_saved_point_and_interval():
    t = _table({("pre", 100): [0.65] * 3, ("scratch", 100): [0.50] * 3, ("scratch", 300): [0.60] * 3,
                ("scratch", 1000): [0.70] * 3})
    s = labels_saved(t, "t", "pre", 100)
    assert s["needed"] == pytest.approx(547.72, abs=0.01) and s["saved"] == pytest.approx(447.72, abs=0.01)
    assert s["low"] == pytest.approx(s["needed"]) and s["high"] == pytest.approx(s["needed"])  # no seed noise
    assert "448 labels saved" in describe_saved("pre", 100, s)
    noisy = _table({("pre", 100): [0.63, 0.65, 0.67], ("scratch", 100): [0.49, 0.50, 0.51],
                    ("scratch", 300): [0.58, 0.60, 0.62], ("scratch", 1000): [0.69, 0.70, 0.71]})
    s = labels_saved(noisy, "t", "pre", 100)
    assert s["low"] < s["needed"] < s["high"]
    never = labels_saved(_table({("pre", 100): [0.9], ("scratch", 100): [0.5], ("scratch", 300): [0.6]}), "t", "pre", 100)
    assert never["needed"] == math.inf and "more than 200 labels" in describe_saved("pre", 100, never)
