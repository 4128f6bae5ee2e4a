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

    with pytest.raises(WarmstartError, match="unknown task 'ner'; use classification, token_classification"):
        run_task(load_config(FinetuneConfig, None, ["task=ner", f"init={pretrained}"]))
    cfg = load_config(FinetuneConfig, None, ["task=summarization", f"init={pretrained}", "train.strategy=lp_ft",
                                             f"data.path={tmp_path}"])
    with pytest.raises(WarmstartError, match="'lp_ft' is not available for task summarization; use full"):
        run_task(cfg)
