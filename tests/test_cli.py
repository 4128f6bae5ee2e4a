"""The CLI's conventions (issue 19.6): every command takes its recipe and KEY=VALUE overrides the same way,
finds bundled recipes by name, prints its whole config with help on --print-config, and names every task."""

from __future__ import annotations

import dataclasses

import pytest

from warmstart.cli import main
from warmstart.config import PretrainConfig, StudyConfig


def _keys(config, prefix=""):
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from _keys(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}"


@pytest.mark.parametrize("argv,config", [(["pretrain"], PretrainConfig()), (["study"], StudyConfig())])
def test_print_config_shows_every_key_with_its_help(argv, config, capsys):
    assert main([*argv, "--print-config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = {line.split(" = ")[0] for line in lines}
    assert shown == set(_keys(config))
    assert all("  # " in line for line in lines), [line for line in lines if "  # " not in line][:3]


def test_print_config_reads_a_bundled_recipe_by_name_and_the_overrides(capsys):
    assert main(["pretrain", "bert", "train.lr=0.002", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "train.lr = 0.002" in out and "train.max_minutes = 10.0" in out  # the recipe's budget, the override
    assert "[> 0]" in out  # ranges are shown
    assert main(["finetune", "fashion_mnist", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "task = image_classification" in out and "train.lr = 0.001" in out  # the image defaults


def test_finetune_help_names_every_task(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for task in ("classification", "token_classification", "summarization", "response_selection",
                 "image_classification"):
        assert f"{task}:" in out


@pytest.mark.parametrize("argv", [["--help"], ["auto", "--help"], ["predict", "--help"], ["pretrain", "-h"]])
def test_help_answers_without_importing_torch(argv):
    """`warmstart --help` took 2 s, 1.4 of them importing torch for the task list that only `finetune --help`
    shows; a fresh interpreter must answer these without torch or transformers."""
    import subprocess
    import sys

    code = ("import sys; from warmstart.cli import main\ntry: main(sys.argv[1:])\nexcept SystemExit: pass\n"
            "print('IMPORTED', sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert "usage: warmstart" in done.stdout and "IMPORTED []" in done.stdout, done.stdout[-500:] + done.stderr


def test_rank_takes_overrides_like_every_command(pretrained, sentiment_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.yaml").write_text(f"data: {{path: {sentiment_csv}}}\ntrain: {{precision: fp32}}\n")
    assert main(["rank", "t.yaml", "data.labels=20", "--candidates", str(pretrained), "--output", "a.csv",
                 "--scores", "knn"]) == 0
    assert main(["rank", "--task", "t.yaml", "--candidates", str(pretrained), "--output", "b.csv", "--scores", "knn",
                 "--set", "data.labels=20"]) == 0  # the earlier spelling still works
    assert (tmp_path / "a.csv").read_text().splitlines()[1].split(",")[1:3] == \
        (tmp_path / "b.csv").read_text().splitlines()[1].split(",")[1:3]


def test_version(capsys):
    import warmstart

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"warmstart {warmstart.__version__}"


def test_auto_passes_its_metric_through_and_offers_the_ones_auto_has(monkeypatch, tmp_path):
    """`--metric` reaches the Python API as given; the CLI's choices (written out: its help imports no torch) are
    auto's own METRICS, and another value is argparse's one-line usage error."""
    import warmstart
    from warmstart.autopilot.run import METRICS

    seen = {}
    monkeypatch.setattr(warmstart, "auto", lambda *a, **k: seen.update(k))
    assert main(["auto", "--labelled", str(tmp_path / "t.csv"), "--metric", "balanced_accuracy"]) in (0, None)
    assert seen["metric"] == "balanced_accuracy"
    from warmstart.cli import _parser

    auto = _parser()._subparsers._group_actions[0].choices["auto"]
    parser_choices = next(a.choices for a in auto._actions if a.dest == "metric")
    assert tuple(parser_choices) == METRICS
    with pytest.raises(SystemExit) as e:
        main(["auto", "--labelled", "t.csv", "--metric", "f1"])
    assert e.value.code == 2
