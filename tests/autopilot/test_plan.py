"""auto/plan.py: the budget's parsing and shares, the state file that a resumed run reads."""

import json

import pytest

from warmstart.autopilot.plan import SHARES, STAGES, Clock, State, parse_budget
from warmstart.errors import WarmstartError


@pytest.mark.parametrize("text,seconds", [("15m", 900), ("1h", 3600), ("90s", 90), ("1h30m", 5400), ("20", 1200),
                                          ("2.5m", 150), (" 30min", 1800), (2, 120)])
def test_budgets_parse(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "30s", "0m", "-5m", "inf"])
def test_bad_budgets_are_refused_in_one_line(text):
    with pytest.raises(WarmstartError, match="--budget"):
        parse_budget(text)


def test_the_shares_cover_the_budget_and_deadlines_grow():
    assert abs(sum(SHARES.values()) - 1.0) < 1e-9
    clock = Clock(1000.0)
    deadlines = [clock.deadline(s) for s in STAGES]
    assert deadlines == sorted(deadlines) and abs(deadlines[-1] - 1000.0) < 1e-6


def test_a_resumed_clock_counts_the_earlier_runs_time():
    clock = Clock(600.0, spent_s=500.0)
    assert 99.0 < clock.left() <= 100.0
    assert clock.stage_left("rank") < 0  # rank's deadline (8% of 600 s) passed long ago
    assert "[auto 3/5 select]" in clock.line("select", "x") and "1.7 of 10 min left" in clock.line("select", "x")


def test_state_is_saved_after_each_step_and_read_back(tmp_path):
    settings = {"labelled": "a.csv", "seed": 0, "budget_s": 60.0}
    state, clock = State(tmp_path, settings), Clock(60.0, spent_s=12.0)
    state.put("tfidf", [0, 1, 1], clock)
    again = State(tmp_path, {**settings, "budget_s": 120.0})  # a larger budget may resume the run
    assert again.get("tfidf") == [0, 1, 1] and again.spent >= 12.0
    assert json.loads((tmp_path / "auto_state.json").read_text())["steps"]["tfidf"] == [0, 1, 1]


def test_a_resume_with_other_settings_is_refused_unless_fresh(tmp_path):
    State(tmp_path, {"labelled": "a.csv", "seed": 0, "budget_s": 60.0}).put("x", 1, Clock(60.0))
    with pytest.raises(WarmstartError, match="other seed"):
        State(tmp_path, {"labelled": "a.csv", "seed": 1, "budget_s": 60.0})
    assert State(tmp_path, {"labelled": "a.csv", "seed": 1, "budget_s": 60.0}, fresh=True).get("x") is None
