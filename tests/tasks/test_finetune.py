import pytest
import torch

from warmstart.config import FinetuneConfig, load_config
from warmstart.errors import WarmstartError
from warmstart.tasks.finetune import pad, split_examples, split_files, take


def test_split_examples_is_seeded_sized_and_keeps_groups_together():
    items = [f"q{i % 25}-{i}" for i in range(100)]  # 25 groups of 4
    a = split_examples(items, 0, 0.2, 0.2, group=lambda x: x.split("-")[0])
    assert a == split_examples(items, 0, 0.2, 0.2, group=lambda x: x.split("-")[0])
    assert [len(a[s]) for s in ("train", "validation", "test")] == [60, 20, 20]
    groups = {s: {x.split("-")[0] for x in a[s]} for s in a}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["validation"]
    assert split_examples(items, 1, 0.2, 0.2)["test"] != split_examples(items, 2, 0.2, 0.2)["test"]


def test_take_is_a_seeded_ordered_subsample():
    items = list(range(50))
    sub = take(items, 10, 0)
    assert len(sub) == 10 and sub == sorted(sub) and sub == take(items, 10, 0)
    assert take(items, None, 0) is items and take(items, 99, 0) is items


def test_split_files_recognises_dev_and_needs_train(tmp_path):
    for name in ("train.conll", "dev.conll", "test.conll", "README.md"):
        (tmp_path / name).write_text("x\n")
    assert {k: v.name for k, v in split_files(tmp_path).items()} == \
        {"train": "train.conll", "validation": "dev.conll", "test": "test.conll"}
    (tmp_path / "train.conll").unlink()
    with pytest.raises(WarmstartError, match="no train file"):
        split_files(tmp_path)


def test_pad_right_pads_with_the_fill_value():
    assert pad([[1, 2, 3], [4]], 0).tolist() == [[1, 2, 3], [4, 0, 0]]
    assert pad([[1], [2, 3]], 0, fill=-100).tolist() == [[1, -100], [2, 3]]
    assert pad([[5]], 0).dtype == torch.long


def test_unknown_task_and_unavailable_strategy_are_one_line_errors(pretrained, tmp_path):
    from warmstart.tasks.registry import run_task

    with pytest.raises(WarmstartError, match="unknown task 'ner'; use classification, multi_label, token_classification"):
        run_task(load_config(FinetuneConfig, None, ["task=ner", f"init={pretrained}"]))
    cfg = load_config(FinetuneConfig, None, ["task=summarization", f"init={pretrained}", "train.strategy=lp_ft",
                                             f"data.path={tmp_path}"])
    with pytest.raises(WarmstartError, match="'lp_ft' is not available for task summarization; use full"):
        run_task(cfg)


def _sentence_transformers_layout(folder, mode: str) -> None:
    import json

    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]),
        encoding="utf-8")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": mode}), encoding="utf-8")


@pytest.mark.parametrize("pooling, layout, init, strategy, expected", [
    ("auto", "mean", "folder", "full", "mean"),  # MiniLM: the embeddings it was trained for
    ("auto", "cls", "folder", "lp_ft", "cls_token"),  # BGE: the [CLS] state it embeds with, not the HF pooler
    ("auto", None, "folder", "full", "cls"),  # a plain HF folder: the HF classifier's pooler
    ("auto", "max", "folder", "full", "cls"),  # a pooling warmstart does not have
    ("auto", None, "scratch", "full", "cls"),
    ("auto", "cls", "folder", "setfit", "cls_token"),  # SetFit trains the body's own embedding
    ("auto", None, "folder", "setfit", "mean"),  # and mean-pools a plain encoder, as the setfit library does
    ("auto", None, "scratch", "setfit", "mean"),
    ("cls", "mean", "folder", "full", "cls"),  # the user's choice stands
    ("mean", None, "folder", "linear_probe", "mean"),
])
def test_auto_pooling_follows_the_init(tmp_path, pooling, layout, init, strategy, expected):
    from warmstart.tasks.finetune import chosen_pooling

    if layout:
        _sentence_transformers_layout(tmp_path, layout)
    assert chosen_pooling(pooling, str(tmp_path) if init == "folder" else init, strategy) == expected


@pytest.mark.slow
@pytest.mark.parametrize("layout, strategy, expected", [("mean", "linear_probe", "mean"),
                                                      ("cls", "linear_probe", "cls_token"),
                                                      ("cls", "setfit", "cls_token")])
def test_a_run_records_the_pooling_it_used(layout, strategy, expected, pretrained, sentiment_csv, tmp_path):
    """`train.pooling: auto` on a sentence-transformers folder fine-tunes with its pooling, and the run's metrics
    and saved config name it, so `warmstart predict` pools the same way."""
    import shutil

    import yaml

    from warmstart.tasks.registry import run_task

    init = tmp_path / "encoder"
    shutil.copytree(pretrained, init)
    _sentence_transformers_layout(init, layout)
    cfg = load_config(FinetuneConfig, None, [f"output_dir={tmp_path / 'ft'}", f"init={init}",
                                             f"data.path={sentiment_csv}", "data.labels=20",
                                             f"train.strategy={strategy}", "train.precision=fp32",
                                             "train.setfit.num_iterations=1"])
    assert cfg.train.pooling == "auto"
    metrics = run_task(cfg)
    assert metrics["pooling"] == expected
    saved = yaml.safe_load((tmp_path / "ft" / "warmstart_config.yaml").read_text(encoding="utf-8"))
    assert saved["train"]["pooling"] == expected


@pytest.mark.parametrize("task", ["classification", "token_classification", "summarization", "response_selection"])
def test_a_max_length_beyond_the_inits_positions_is_one_line_before_any_work(pretrained, sentiment_csv, tmp_path,
                                                                             task):
    """It failed deep inside the embeddings on the first long text ("The size of tensor a (3002) must match the size
    of tensor b (512)"), after the run had begun; the tiny init has 512 positions."""
    from warmstart.tasks.registry import run_task

    cfg = load_config(FinetuneConfig, None, [f"task={task}", f"init={pretrained}", f"data.path={sentiment_csv}",
                                             "train.max_length=513", f"output_dir={tmp_path / 'run'}"])
    with pytest.raises(WarmstartError, match=f"train.max_length=513: {pretrained} has position embeddings for 512 "
                                             "tokens; set train.max_length to at most 512"):
        run_task(cfg)
    assert not (tmp_path / "run").exists()
