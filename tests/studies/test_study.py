import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from warmstart.config import PretrainConfig, StudyConfig, finished_with, load_config
from warmstart.errors import WarmstartError
from warmstart.studies.grid import pretrain_all, run_study

COMPARED = ["task", "init", "strategy", "labels", "seed", "metric", "score"]


def write_study(tmp_path: Path, corpus_file: Path, sentiment_csv: Path, out: Path, init: str = "tiny") -> Path:
    """A study that fine-tunes `init` (by default the tiny encoder it pretrains itself) and scratch at 2 label
    counts x 2 seeds, beside TF-IDF + LR."""
    pre = tmp_path / "pretrain.yaml"
    pre.write_text(yaml.safe_dump({
        "corpus": {"sources": [str(corpus_file)], "cache_dir": str(tmp_path / "cache"), "validation_fraction": 0.1},
        "tokenizer": {"vocab_size": 200, "min_frequency": 1},
        "model": {"num_layers": 2, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "max_seq_len": 32},
        "train": {"batch_size": 8, "max_steps": 6, "eval_every": 3, "precision": "fp32", "num_threads": 1}}))
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({
        "data": {"path": str(sentiment_csv)},
        "train": {"strategy": "full", "pooling": "mean", "lr": 0.003, "max_steps": 12, "eval_every": 4,
                  "max_length": 32, "precision": "fp32"}}))
    study = tmp_path / f"study-{out.name}.yaml"
    study.write_text(yaml.safe_dump({
        "output_dir": str(out), "pretrain": {"tiny": {"recipe": str(pre)}} if init == "tiny" else {},
        "tasks": {"toy": {"recipe": str(task), "labels": [20, 40]}},
        "inits": [init, "scratch"], "seeds": 2}))
    return study


def test_a_killed_study_resumes_skips_finished_cells_and_ends_with_the_same_table(corpus_file, sentiment_csv,
                                                                                  tmp_path):
    # one pretrained encoder for both studies: HF tokenizers' WordPiece trainer is not deterministic across
    # processes (huggingface/tokenizers#1794), so two pretrainings of the same recipe may differ
    encoder = run_study(load_config(StudyConfig, write_study(tmp_path, corpus_file, sentiment_csv, tmp_path / "p")))
    assert set(encoder["init"]) == {"tiny", "scratch", "tfidf_logreg"} and encoder["score"].between(0, 1).all()
    assert len(encoder) == 2 * 2 * 3 and (tmp_path / "p" / "report.html").is_file()  # labels x seeds x inits
    init = str(tmp_path / "p" / "pretrained" / "tiny")
    whole = run_study(load_config(StudyConfig, write_study(tmp_path, corpus_file, sentiment_csv, tmp_path / "a", init)))

    out = tmp_path / "b"
    study = write_study(tmp_path, corpus_file, sentiment_csv, out, init)
    proc = subprocess.Popen([sys.executable, "-m", "warmstart", "study", str(study)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        table = out / "results.csv"
        if table.is_file() and len(pd.read_csv(table)) >= 4:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = pd.read_csv(out / "results.csv")
    assert 4 <= len(partial) < len(whole), "the study should have been killed mid-way"
    finished = {Path(c): (Path(c) / "metrics.json").stat().st_mtime_ns for c in partial["cell"]}
    resumed = run_study(load_config(StudyConfig, study))
    assert all((c / "metrics.json").stat().st_mtime_ns == t for c, t in finished.items())  # skipped, not rerun
    pd.testing.assert_frame_equal(resumed[COMPARED], whole[COMPARED])
    assert [Path(c).name for c in resumed["cell"]] == [Path(c).name for c in whole["cell"]]
    assert pd.read_csv(out / "results.csv")[COMPARED].equals(pd.read_csv(tmp_path / "a" / "results.csv")[COMPARED])


def test_a_finished_pretraining_with_another_recipe_is_never_overwritten(corpus_file, sentiment_csv, tmp_path):
    out = tmp_path / "s"
    cfg = load_config(StudyConfig, write_study(tmp_path, corpus_file, sentiment_csv, out))
    folder = pretrain_all(cfg)["tiny"]
    weights = (folder / "model.safetensors").read_bytes()
    saved = yaml.safe_load((folder / "warmstart_config.yaml").read_text())
    del saved["train"]["report_to"]  # written before that field existed: still the same recipe
    (folder / "warmstart_config.yaml").write_text(yaml.safe_dump(saved))
    assert not finished_with(folder, load_config(PretrainConfig, None, []))  # another recipe
    assert pretrain_all(cfg)["tiny"] == folder  # reused
    cfg.pretrain["tiny"].overrides = ["train.max_steps=7"]
    with pytest.raises(WarmstartError, match="pretrained for pretrain.tiny with another recipe"):
        pretrain_all(cfg)
    assert (folder / "model.safetensors").read_bytes() == weights


def test_study_config_errors_name_the_fix(tmp_path):
    with pytest.raises(WarmstartError, match="no tasks"):
        run_study(StudyConfig(output_dir=str(tmp_path / "x")))
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  toy: {recipe: r.yaml, labelz: [10]}\n")
    with pytest.raises(WarmstartError, match="labelz"):
        load_config(StudyConfig, bad)
    cfg = StudyConfig(output_dir=str(tmp_path / "y"), inits=["nowhere"], tasks={})
    from warmstart.studies.grid import resolve_inits

    with pytest.raises(WarmstartError, match="'nowhere' is neither scratch, minilm"):
        resolve_inits(cfg, {})


def test_scratch_takes_the_architecture_it_is_told_to():
    from warmstart.config import PretrainSpec
    from warmstart.studies.grid import _scratch_source

    cfg = StudyConfig(output_dir="o", pretrain={"p": PretrainSpec("r.yaml")}, scratch_like="minilm")
    assert _scratch_source(cfg, {"scratch": "scratch", "minilm": "/m", "p": "o/pretrained/p"}) == "/m"
    cfg.scratch_like = "p"
    assert _scratch_source(cfg, {"scratch": "scratch"}) == str(Path("o") / "pretrained" / "p")
    cfg.scratch_like = None
    assert _scratch_source(cfg, {"scratch": "scratch", "a": "/a", "b": "/b"}) == "/a"
    assert _scratch_source(cfg, {"scratch": "scratch"}) is None


def test_result_row_takes_the_task_metric_and_token_accuracy_for_tags_without_entities(tmp_path):
    from warmstart.studies.grid import Cell, result_row
    from warmstart.tasks.registry import get

    cell = Cell("pos", "a", "full", 10, 0, ["x=1"], tmp_path, get("token_classification"))
    assert result_row(cell, {"entity_f1": 0.4, "token_accuracy": 0.9})["score"] == 0.4
    row = result_row(cell, {"token_accuracy": 0.9, "seconds": 2.0})
    assert (row["metric"], row["score"], row["overrides"]) == ("token_accuracy", 0.9, "x=1")


@pytest.mark.parametrize("task, baseline, metrics, score", [
    ("summarization", None, {"rouge1": 39.14, "rouge2": 14.8}, 0.3914),  # ROUGE in points: the score a fraction
    ("summarization", "lead", {"rouge1": 42.25}, 0.4225),                 # a baseline: the task's metric too
    ("response_selection", "tfidf_cosine", {"recall_at_1": 0.238, "mrr": 0.333}, 0.238),
    ("token_classification", "commonest_tag", {"entity_f1": 0.187, "token_accuracy": 0.9}, 0.187),
    ("classification", "tfidf_logreg", {"accuracy": 0.7, "macro_f1": 0.6}, 0.7),
])
def test_result_rows_hold_every_task_and_baseline_as_a_fraction(tmp_path, task, baseline, metrics, score):
    from warmstart.studies.grid import Cell, result_row
    from warmstart.tasks.registry import get

    cell = Cell("t", baseline or "a", "-" if baseline else "full", 10, 0, [], tmp_path, get(task), baseline)
    assert result_row(cell, metrics)["score"] == pytest.approx(score)


def test_the_shipped_studies_load_and_plan_their_whole_grid(monkeypatch):
    """configs/study/*.yaml (run from the repository root): every pretrain entry's overrides are valid recipe keys,
    and the grid has the cells the config's comment promises."""
    from warmstart.studies.grid import plan_cells

    root = Path(__file__).parents[2]
    monkeypatch.chdir(root)
    expected = {"relatedness.yaml": None,
                "small_budget_search.yaml": 12 * 2 * 2 + 2 * 2,  # inits x labels x seeds, + TF-IDF per labels x seed
                "small_budget_finetune.yaml": 4 * 2 * 2 * 3 + 4 * 2 * 2}  # tasks x labels x seeds x strategies, + TF-IDF
    for name, cells in expected.items():
        cfg = load_config(StudyConfig, root / "configs" / "study" / name)
        for spec in cfg.pretrain.values():
            load_config(PretrainConfig, spec.recipe, spec.overrides)  # an unknown key or bad value raises here
        inits = {i: "scratch" if i == "scratch" else str(Path(cfg.output_dir) / "pretrained" / i) for i in cfg.inits}
        planned = plan_cells(cfg, inits)
        if cells is not None:
            assert len(planned) == cells
        assert {c.init for c in planned} >= set(cfg.inits)


@pytest.mark.parametrize("baselines, want", [
    ([], ["tfidf_logreg"]),                       # the task's classic one by default
    (["tfidf", "setfit"], ["tfidf_logreg", "setfit"]),
    (["setfit", "setfit"], ["setfit"]),
])
def test_a_study_fits_the_baselines_it_names_beside_every_cell(sentiment_csv, tmp_path, baselines, want):
    from warmstart.config import TaskSpec
    from warmstart.studies.grid import plan_cells

    (tmp_path / "r.yaml").write_text(f"data: {{path: {sentiment_csv}}}\n", encoding="utf-8")
    spec = TaskSpec(recipe=str(tmp_path / "r.yaml"), labels=[10], baselines=baselines)
    cfg = StudyConfig(output_dir=str(tmp_path / "study"), tasks={"rt": spec}, inits=["/ckpt"], seeds=2)
    cells = [c for c in plan_cells(cfg, {"/ckpt": "/ckpt"}) if c.baseline]
    assert [c.baseline for c in cells] == want * 2
    folders = {c.baseline: c.folder.name for c in cells if c.seed == 1}
    assert folders.get("tfidf_logreg", "baseline-10-seed1") == "baseline-10-seed1"  # an earlier study's folder
    assert folders.get("setfit", "setfit-10-seed1") == "setfit-10-seed1"


def test_a_baseline_that_does_not_fit_the_task_is_refused_before_work(tmp_path):
    from warmstart.config import TaskSpec, validate
    from warmstart.studies.grid import baselines_of
    from warmstart.tasks.registry import get

    with pytest.raises(WarmstartError, match="baseline 'setfit' does not apply to task image_classification"):
        baselines_of(TaskSpec(recipe="r", labels=[10], baselines=["setfit"]), get("image_classification"))
    with pytest.raises(WarmstartError, match="unknown value; use tfidf"):
        validate(StudyConfig(tasks={"t": TaskSpec(recipe="r", labels=[1], baselines=["bert"])}))
    assert baselines_of(TaskSpec(recipe="r", labels=[1], baseline=False, baselines=["setfit"]),
                        get("classification")) == []


@pytest.mark.parametrize("overrides, metric", [([], "accuracy"), (["train.class_balance=adjusted"], "balanced_accuracy")])
def test_a_task_that_balances_its_classes_is_compared_by_balanced_accuracy(sentiment_csv, tmp_path, overrides, metric):
    """A study's cells (and its rivals) are scored as their runs choose: balanced accuracy where the task's
    overrides balance the classes, the task's own metric otherwise."""
    from warmstart.config import TaskSpec
    from warmstart.studies.grid import plan_cells, result_row

    (tmp_path / "r.yaml").write_text(f"data: {{path: {sentiment_csv}}}\n", encoding="utf-8")
    spec = TaskSpec(recipe=str(tmp_path / "r.yaml"), labels=[10], overrides=overrides)
    cfg = StudyConfig(output_dir=str(tmp_path / "study"), tasks={"rt": spec}, inits=["/ckpt"], seeds=1)
    cells = plan_cells(cfg, {"/ckpt": "/ckpt"})
    assert len(cells) == 2 and any(c.baseline for c in cells)
    for cell in cells:
        row = result_row(cell, {"accuracy": 0.9, "balanced_accuracy": 0.6, "macro_f1": 0.5})
        assert row["metric"] == metric and row["score"] == (0.6 if overrides else 0.9)
