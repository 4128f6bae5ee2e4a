"""The demo: its SetFit cells use the same labels as its runs and are reused only while their settings (and the
body they fine-tune) hold; its verdicts say what paired seeds can carry; its wiring puts every row in the report."""

import json

import pandas as pd
import pytest

from warmstart.studies import baselines, demo


def test_a_setfit_cell_is_kept_and_reused_only_with_the_same_settings(tmp_path, monkeypatch):
    calls = []

    def fake(cfg, name=None, body=None):
        calls.append((name, cfg.data.labels, cfg.train.seed, cfg.train.setfit.max_steps, cfg.data.balanced, body))
        return {"accuracy": 0.7, "macro_f1": 0.7, "seconds": 1.0}

    monkeypatch.setattr(baselines, "run_baseline", fake)
    out = tmp_path / "setfit-100-seed0"
    first = demo.setfit_cell(out, 100, 0, ("train.setfit.max_steps=40",))
    again = demo.setfit_cell(out, 100, 0, ("train.setfit.max_steps=40",))
    assert first == again and calls == [("setfit", 100, 0, 40, False, None)]  # reused from out/metrics.json
    demo.setfit_cell(out, 100, 0, ("train.setfit.max_steps=20", "data.balanced=true"))  # other settings: rerun
    assert calls[-1] == ("setfit", 100, 0, 20, True, None) and len(calls) == 2
    assert not list(tmp_path.glob("**/*.tmp"))
    body = tmp_path / "adapted"
    body.mkdir()
    (body / "metrics.json").write_text('{"steps": 10}')
    demo.setfit_cell(out, 100, 0, (), body=str(body))
    demo.setfit_cell(out, 100, 0, (), body=str(body))
    assert len(calls) == 3 and calls[-1][-1] == str(body)  # the adapted body: run once, then reused
    (body / "metrics.json").write_text('{"steps": 20}')  # the body was trained again: its cells are stale
    demo.setfit_cell(out, 100, 0, (), body=str(body))
    assert len(calls) == 4


def test_a_finetune_cell_is_rerun_when_its_init_was_trained_again(tmp_path, monkeypatch):
    """A demo re-run with another --pretrain-minutes retrains the checkpoint at the same path: its cells are stale."""
    from pathlib import Path

    import warmstart.tasks.registry as registry

    calls = []

    def run_task(cfg):
        calls.append(cfg.init)
        Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(cfg.output_dir) / "metrics.json").write_text(json.dumps({"accuracy": 0.1 * len(calls)}))
        return {"accuracy": 0.1 * len(calls)}

    monkeypatch.setattr(registry, "run_task", run_task)
    monkeypatch.setattr(demo, "finished_with", lambda out, cfg: (Path(out) / "metrics.json").is_file())
    init, out = tmp_path / "pretrained", tmp_path / "cell"
    init.mkdir()
    (init / "metrics.json").write_text('{"steps": 100}')
    first = demo.finetune_cell(out, str(init), str(init), 100, 0)
    assert demo.finetune_cell(out, str(init), str(init), 100, 0) == first and len(calls) == 1  # reused
    (init / "metrics.json").write_text('{"steps": 200}')  # pretrained again, in place
    assert demo.finetune_cell(out, str(init), str(init), 100, 0)["accuracy"] == pytest.approx(0.2)
    assert len(calls) == 2
    (out / demo.CELL_STAMP).unlink()  # a cell from before the stamp existed: not trusted, run again
    demo.finetune_cell(out, str(init), str(init), 100, 0)
    assert len(calls) == 3


def _results(adapted_gain: float, seeds: int = 3) -> pd.DataFrame:
    """Every row at two label counts; the adapted MiniLM's probe `adapted_gain` points above the shipped one's at
    every seed, with
    seed-to-seed luck shared by all rows (the same labels), as the demo's pairing assumes."""
    base = {"pretrained": 0.60, "scratch": 0.57, "tfidf_logreg": 0.59, "setfit": 0.67, "minilm_probe": 0.64}
    rows = []
    for n in (100, 1000):
        for seed in range(seeds):
            luck = 0.02 * (seed - 1)
            for init, acc in {**base, "adapted_probe": base["minilm_probe"] + adapted_gain / 100}.items():
                jitter = 0.001 * ((seed * 7 + len(init)) % 3)
                rows.append({"init": init, "labels": n, "seed": seed, "accuracy": acc + luck + jitter})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("gain, seeds, expected", [
    (3.0, 3, "paid at every label count"),
    (0.0, 3, "did not clearly beat MiniLM as shipped"),
    (3.0, 2, "too few seeds to tell"),  # two seeds: no verdict, whatever the gap
])
def test_the_verdicts_say_what_paired_seeds_carry(gain, seeds, expected):
    lines = demo._verdicts(_results(gain, seeds))
    text = "\n".join(lines)
    assert expected in text
    assert "adapted MiniLM's probe − MiniLM's probe at 100 labels" in text
    assert "pretrained − scratch at 1000 labels" in text
    assert "beats warmstart's own short pretraining at every label count" in text or seeds < 3


def test_the_demo_wires_every_row_into_its_report(tmp_path, monkeypatch):
    """The heavy stages replaced by records of their calls: what reaches the report is every row, the adaptation
    line and the verdicts, on the labels and seeds asked for."""
    pretrained, adapted = tmp_path / "pre", tmp_path / "out" / "adapted"  # the demo reads adapted/metrics.json
    for folder, metrics in ((pretrained, {"steps": 5, "tokens": 1000, "train_seconds": 60.0, "tokens_per_s": 16.0}),
                            (adapted, {"steps": 3, "epochs": 0.5, "train_seconds": 30.0})):
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(metrics))
    seen = []

    def finetune(out, init, tokenizer, n, seed, overrides=()):
        seen.append(("finetune", out.name, init, overrides))
        gain = 0.03 if init == str(adapted) else 0.0
        return {"accuracy": 0.6 + 0.01 * seed + gain + 0.001 * (seed % 2) * (gain > 0), "macro_f1": 0.6,
                "seconds": 1.0}

    def setfit(out, n, seed, overrides=(), body=None):
        seen.append(("setfit", out.name, body))
        return {"accuracy": 0.7 + 0.01 * seed, "macro_f1": 0.7, "seconds": 1.0}

    monkeypatch.setattr(demo, "_pretrain", lambda out, minutes: pretrained)
    monkeypatch.setattr(demo, "_adapt", lambda out, minutes: adapted)
    monkeypatch.setattr(demo, "setfit_available", lambda: None)
    monkeypatch.setattr(demo, "finetune_cell", finetune)
    monkeypatch.setattr(demo, "setfit_cell", setfit)
    monkeypatch.setattr(demo, "tfidf_cell", lambda n, seed: {"accuracy": 0.55, "macro_f1": 0.5, "seconds": 0.1})
    monkeypatch.setattr("warmstart.models.common.minilm_folder", lambda: tmp_path / "minilm")
    results = demo._demo(tmp_path / "out", None, [10, 20], 3)
    assert set(results["init"]) == {"pretrained", "scratch", "tfidf_logreg", "setfit", "minilm_probe",
                                    "adapted_probe"}
    assert len(results) == 2 * 3 * 6
    probe = ("train.strategy=linear_probe",)
    assert ("finetune", "adapted_probe-10-seed0", str(adapted), probe) in seen
    assert ("finetune", "minilm_probe-20-seed2", str(tmp_path / "minilm"), probe) in seen
    assert ("setfit", "setfit-20-seed1", None) in seen
    report = (tmp_path / "out" / "report.md").read_text()
    assert "MiniLM adapted to the unlabelled text (warmstart), linear probe" in report
    assert "3 steps, 0.5 epochs" in report
    assert "Plainly: adapting the public MiniLM to the unlabelled text paid at every label count" in report


@pytest.mark.parametrize("written, expected", [
    (None, None),
    ('{"init_run": "abc"}', "abc"),
    ('{"init_ru', None),  # cut by a kill: the cell runs again rather than the demo stopping on it
    ("[1]", None),
])
def test_a_cells_stamp_that_cannot_be_read_means_run_it_again(tmp_path, written, expected):
    stamp = tmp_path / "stamp.json"
    if written is not None:
        stamp.write_text(written, encoding="utf-8")
    assert demo._stamped(stamp) == expected
