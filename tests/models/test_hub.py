"""Hub ids as checkpoints: a cached snapshot is used offline, nothing is downloaded unless allowed, and the
refusal is one line naming the key and both ways out. No test reaches a network (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import os
import shutil

import pytest

import warmstart
from warmstart.cli import main
from warmstart.errors import WarmstartError
from warmstart.models.hub import ALLOW_ENV, downloads, resolve_checkpoint

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(pretrained, tmp_path, monkeypatch):
    """A Hugging Face cache holding `org/tiny` (the tiny pretrained BERT), laid out as huggingface_hub writes it."""
    cache = tmp_path / "hub"
    repo = cache / "models--org--tiny"
    shutil.copytree(pretrained, repo / "snapshots" / REVISION,
                    ignore=shutil.ignore_patterns("checkpoint-last", "*.jsonl", ".*"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    return cache


def test_a_cached_hub_id_resolves_to_its_snapshot_without_permission(hub_cache):
    folder = resolve_checkpoint("org/tiny")
    assert folder == str(hub_cache / "models--org--tiny" / "snapshots" / REVISION)


@pytest.mark.parametrize("name", ["", "scratch", None])
def test_non_ids_pass_through(name, hub_cache):
    assert resolve_checkpoint(name) == name


def test_a_local_folder_wins_over_a_hub_id_of_the_same_spelling(hub_cache, tmp_path, monkeypatch):
    (tmp_path / "org" / "tiny").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("org/tiny") == "org/tiny"


def test_an_uncached_id_is_refused_without_permission(hub_cache):
    with pytest.raises(WarmstartError, match=r"model.init=org/missing: .*--allow-download") as e:
        resolve_checkpoint("org/missing")
    assert "\n" not in str(e.value)


def test_permission_tries_the_download_and_fails_in_one_line_offline(hub_cache):
    with pytest.raises(WarmstartError, match="could not download") as e:
        resolve_checkpoint("org/missing", allow_download=True)
    assert "\n" not in str(e.value)
    with downloads(True):
        assert os.environ[ALLOW_ENV] == "1"
        with pytest.raises(WarmstartError, match="could not download"):
            resolve_checkpoint("org/missing")
    assert ALLOW_ENV not in os.environ  # the switch does not outlive the call


def test_finetune_from_a_cached_hub_id(hub_cache, sentiment_csv, tmp_path):
    run = warmstart.finetune(None, task="classification", init="org/tiny", output_dir=str(tmp_path / "ft"),
                             data={"path": str(sentiment_csv), "labels": 20},
                             train={"max_epochs": 1, "precision": "fp32", "strategy": "linear_probe"})
    assert run.config.init == str(hub_cache / "models--org--tiny" / "snapshots" / REVISION)
    assert 0 <= run.metrics["accuracy"] <= 1


def test_cli_refuses_an_uncached_id_with_exit_2(hub_cache, sentiment_csv, tmp_path, capsys):
    code = main(["finetune", f"data.path={sentiment_csv}", "init=org/missing", f"output_dir={tmp_path / 'x'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "--allow-download" in err
    assert not (tmp_path / "x").exists()
    code = main(["finetune", f"data.path={sentiment_csv}", "init=org/missing", f"output_dir={tmp_path / 'x'}",
                 "--allow-download"])
    assert code == 2 and "could not download" in capsys.readouterr().err
