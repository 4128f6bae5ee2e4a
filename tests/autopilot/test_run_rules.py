"""auto's decision rules on made-up out-of-fold predictions (no encoder runs): when the unlabelled text goes to
a scratch encoder, and which pipeline the ranking puts first."""

from __future__ import annotations

import numpy as np
import pytest

from warmstart.autopilot.plan import SCRATCH
from warmstart.autopilot.run import AutoRun
from warmstart.autopilot.unlabelled import SCRATCH_MIN_BYTES, plan_unlabelled


def _run(tmp_path, sentiment_csv, budget_s: float = 3600, unlabelled: list[str] = ()) -> AutoRun:
    settings = {"labelled": str(sentiment_csv), "text_column": "text", "label_column": "label", "labels": 20,
                "per_class": None, "folds": 2, "seed": 0, "budget_s": budget_s}
    return AutoRun(tmp_path, settings, {"base": "folder"}, list(unlabelled))


def _wrong(y: np.ndarray, rows: int | tuple[int, int]) -> np.ndarray:
    """y with the predictions in rows (a count from the first, or a (start, stop) range) wrong (two classes)."""
    out, (start, stop) = y.copy(), (rows if isinstance(rows, tuple) else (0, rows))
    out[start:stop] = 1 - out[start:stop]
    return out


@pytest.mark.parametrize("kept", [False, True])
def test_a_dropped_adaptation_never_wins_the_refit(kept, sentiment_csv, tmp_path):
    """auto said "dropped (adaptation did not raise the score)", then refitted the adapted encoder's probe, which
    had scored best out of fold. An adapted encoder competes only when its score rose."""
    run = _run(tmp_path, sentiment_csv, budget_s=60)
    run.state.put("unlabelled", {"base": "base", "adapted": "base + SimCSE", "kept": kept}, run.clock)
    y = run.data.y
    run.oof = {"probe:base": 1 - y, "probe:base + SimCSE": y.copy(), "tfidf": y.copy()}  # adapted: all right
    assert run.ranking() == (["probe:base + SimCSE", "probe:base"] if kept else ["probe:base"])


@pytest.mark.parametrize("oof, first", [
    # a tie between the scratch encoder (run first) and the public one goes to the public one (rt seed 2)
    ({f"setfit:{SCRATCH}": 2, "setfit:base": 2}, "setfit:base"),
    ({f"setfit:{SCRATCH}": 2, "setfit:base + SimCSE": 2}, "setfit:base + SimCSE"),
    ({f"setfit:{SCRATCH}": 1, "setfit:base": 2}, f"setfit:{SCRATCH}"),  # one label better: it wins
    ({"probe:base": 2, "setfit:base": 2}, "probe:base"),  # otherwise ties go to the cheaper, as run
])
def test_ties_go_to_the_public_encoder_then_the_cheaper(oof, first, sentiment_csv, tmp_path):
    run = _run(tmp_path, sentiment_csv)
    run.state.put("unlabelled", {"base": "base", "adapted": "base + SimCSE", "kept": True}, run.clock)
    run.oof = {k: _wrong(run.data.y, wrong) for k, wrong in oof.items()}
    assert run.ranking()[0] == first


@pytest.mark.parametrize("tfidf_wrong, probe_wrong, size, scratch, why", [
    (0, 20, SCRATCH_MIN_BYTES, True, "clearly better, the text is unlike"),
    ((0, 2), (2, 12), SCRATCH_MIN_BYTES, True, "clearly better"),  # 10 against 2, each wrong where the other is right
    # rt seed 2's shape: TF-IDF 4 labels ahead (7 against 3) crossed a 2-point margin; a paired test does not
    ((0, 6), (3, 13), SCRATCH_MIN_BYTES, False, "not clearly better, so nothing is pretrained from scratch"),
    ((3, 13), (0, 6), SCRATCH_MIN_BYTES, False, "adapting the top-ranked candidate, base (kNN 0.500), to the "
                                                "unlabelled text"),
    (0, 20, 1000, False, "too little to pretrain from scratch"),  # clearly unlike, but 1 kB of text
])
def test_scratch_pretraining_needs_tfidf_clearly_ahead_and_text_enough(tfidf_wrong, probe_wrong, size, scratch, why,
                                                                       sentiment_csv, tmp_path):
    text = tmp_path / "unlabelled.txt"
    text.write_bytes(b"x" * size)
    (tmp_path / "run").mkdir()
    run = _run(tmp_path / "run", sentiment_csv, unlabelled=[str(text)])
    run.state.put("encoder:base", {"rank": 0.5}, run.clock)
    y = run.data.y
    run.oof = {"tfidf": _wrong(y, tfidf_wrong), "probe:base": _wrong(y, probe_wrong)}
    decision = plan_unlabelled(run)
    assert bool(decision.get("scratch_minutes")) == scratch
    assert decision["adapt_minutes"] > 0 and decision["base"] == "base"
    assert why in decision["why"]
    if scratch:
        assert decision["scratch_minutes"] == decision["adapt_minutes"]  # the time is shared
    elif "not clearly" in why:
        assert "+20.0 points (95% interval" in decision["why"]  # the figures behind the decision are shown


@pytest.mark.parametrize("ranks, oof, first", [
    # one label of 20 ahead is luck, not evidence: SetFit on the top encoder (the default) stays first
    ({"base": 0.5}, {"setfit:base": 2, "lp_ft:base": 1}, "setfit:base"),
    ({"base": 0.5}, {"setfit:base": 2, "probe:base": 2}, "setfit:base"),  # a tie no longer goes to the cheaper
    ({"base": 0.5}, {"setfit:base": 10, "lp_ft:base": 0}, "lp_ft:base"),  # clearly better: it replaces the default
    ({"base": 0.5}, {"lp_ft:base": 2, "probe:base": 1}, "lp_ft:base"),  # SetFit unrun: the first queued that ran
    ({"base": 0.5}, {"probe:base": 3}, "probe:base"),  # nothing queued ran: the best score
    # the top encoder by rank is the adapted one: its SetFit is the default, the shipped one's a challenger
    ({"base": 0.5, "base + SimCSE": 0.6}, {"setfit:base + SimCSE": 3, "setfit:base": 2}, "setfit:base + SimCSE"),
    # a scratch encoder ranked on top: the default stays on a public candidate's side unless clearly beaten
    ({"base": 0.5, SCRATCH: 0.7}, {f"setfit:{SCRATCH}": 1, "setfit:base": 2}, "setfit:base"),
    ({"base": 0.5, SCRATCH: 0.7}, {f"setfit:{SCRATCH}": 0, "setfit:base": 10}, f"setfit:{SCRATCH}"),
])
def test_the_default_is_refitted_unless_another_pipeline_is_clearly_better(ranks, oof, first, sentiment_csv,
                                                                            tmp_path):
    """benchmarks/results/auto.md: seven of nine runs refitted LP-FT or the probe on leads of a label or a tie,
    1.7 points below SetFit on test on average (autopilot/choice.py)."""
    run = _run(tmp_path, sentiment_csv)
    run.state.put("unlabelled", {"base": "base", "adapted": "base + SimCSE", "kept": True}, run.clock)
    for name, rank in ranks.items():
        run.encoders[name] = "folder"
        run.state.put(f"encoder:{name}", {"rank": rank}, run.clock)
    run.oof = {k: _wrong(run.data.y, wrong) for k, wrong in oof.items()}
    assert run.choice()[0] == first
    assert sorted(run.choice()) == sorted(run.ranking())  # reordered, nothing dropped


def _costed(tmp_path, sentiment_csv, monkeypatch, fold_s: dict[str, float], budget_s: float = 600) -> AutoRun:
    """An AutoRun on MiniLM whose fits cost `fold_s[strategy]` seconds (estimated) and take none (recorded)."""
    import warmstart.studies.demo as demo

    monkeypatch.setattr(demo, "setfit_available", lambda: None)  # the rival is installed
    run = AutoRun(tmp_path, {"labelled": str(sentiment_csv), "text_column": "text", "label_column": "label",
                             "labels": 20, "per_class": None, "folds": 2, "seed": 0, "budget_s": budget_s},
                  {"MiniLM": "folder"}, [])
    run.state.put("encoder:MiniLM", {"rank": 0.5}, run.clock)
    run.state.put("folds", 2, run.clock)
    run.data.set_folds(2, 0)
    run.estimate = lambda strategy, encoder, n: fold_s[strategy]
    run.fitted = []

    def fit_fold(strategy, encoder, i):
        run.fitted.append(strategy)
        return run.data.y[run.data.fold(i)[1]]

    run.fit_fold = fit_fold
    return run


@pytest.mark.parametrize("setfit_s, order", [
    (10.0, ["setfit", "setfit_library", "lp_ft"]),  # few labels: SetFit runs, and the rival beside it, first
    # many labels (auto_many_labels.md: the rival's folds took 12 of 15 minutes at 500 labels and LP-FT was left
    # unrun, the probe delivered): SetFit does not fit, so LP-FT goes before the rival
    (1000.0, ["lp_ft", "setfit_library"]),
])
def test_lp_ft_goes_before_the_rival_when_setfit_does_not_fit(setfit_s, order, sentiment_csv, tmp_path, monkeypatch):
    run = _costed(tmp_path, sentiment_csv, monkeypatch, {"setfit": setfit_s, "lp_ft": 20.0, "setfit_library": 30.0})
    run.select()
    assert list(dict.fromkeys(run.fitted)) == order
    assert ("pred" in run.state.get("cv:setfit:MiniLM")) == (setfit_s < 100)
    assert run.choice()[0] == ("setfit:MiniLM" if setfit_s < 100 else "lp_ft:MiniLM")  # the default


@pytest.mark.parametrize("setfit_s, unlabelled, folds", [
    (1.0, [], 5),  # cheap: as many folds as the smallest class allows
    (100.0, [], 2),  # 2 x 5 x 100 s and 2 x 3 x 100 s exceed 77% of 600 s; 2 x 2 x 100 fits
    (100.0, ["text.txt"], 2),  # not twice in 40%, but once with its refit (300 s) in 40% and the refit's 10%
    (60.0, [], 3),  # 360 s fits 77% of 600 s (the unlabelled stage's share unused)...
    (60.0, ["text.txt"], 2),  # ...not the selection's 40% alone (240 s)
    (1000.0, [], 5),  # SetFit cannot fit even at 2 folds: LP-FT (1 s a fit) sizes them
])
def test_folds_fit_the_default_twice(setfit_s, unlabelled, folds, sentiment_csv, tmp_path, monkeypatch):
    run = _costed(tmp_path, sentiment_csv, monkeypatch, {"setfit": setfit_s, "lp_ft": 1.0})
    run.unlabelled = unlabelled
    run.data.set_folds(5, 0)
    assert run.choose_folds() == folds


@pytest.mark.parametrize("fold_s, skipped, status", [
    # the rival has no refit: its status counts its folds only (it had said "2 folds and a refit")
    ({"setfit": 10.0, "lp_ft": 20.0, "setfit_library": 400.0}, "setfit_library",
     "not run: 2 folds need about 13.3 min"),
    ({"setfit": 400.0, "lp_ft": 20.0, "setfit_library": 30.0}, "setfit:MiniLM",
     "not run: 2 folds and a refit need about 20.0 min"),  # 2 x 400 s + its refit on all 20 labels (400 s here)
])
def test_a_pipeline_left_unrun_says_what_it_needed(fold_s, skipped, status, sentiment_csv, tmp_path, monkeypatch):
    run = _costed(tmp_path, sentiment_csv, monkeypatch, fold_s)
    run.select()
    said = run.state.get(f"cv:{skipped}")["status"]
    assert said.startswith(status + ", ") and said.endswith(" min were left")
