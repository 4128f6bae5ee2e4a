"""The demo's SetFit cells: the same labels as its runs, kept and reused while their settings hold."""

from warmstart.studies import baselines, demo


def test_a_setfit_cell_is_kept_and_reused_only_with_the_same_settings(tmp_path, monkeypatch):
    calls = []

    def fake(cfg, name=None):
        calls.append((name, cfg.data.labels, cfg.train.seed, cfg.train.setfit.max_steps, cfg.data.balanced))
        return {"accuracy": 0.7, "macro_f1": 0.7, "seconds": 1.0}

    monkeypatch.setattr(baselines, "run_baseline", fake)
    out = tmp_path / "setfit-100-seed0"
    first = demo.setfit_cell(out, 100, 0, ("train.setfit.max_steps=40",))
    again = demo.setfit_cell(out, 100, 0, ("train.setfit.max_steps=40",))
    assert first == again and calls == [("setfit", 100, 0, 40, False)]  # reused from out/metrics.json
    demo.setfit_cell(out, 100, 0, ("train.setfit.max_steps=20", "data.balanced=true"))  # other settings: rerun
    assert calls[-1] == ("setfit", 100, 0, 20, True) and len(calls) == 2
    assert not list(tmp_path.glob("**/*.tmp"))
