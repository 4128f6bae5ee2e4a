"""Fine-tuning steps wait for the device only where transformers itself does (issue 23): in every task and
strategy, the only read-back inside a training step is transformers' check of the padding mask (host_waits.py);
the loop, the strategies and each task's loss add none. Evaluation reads its scores back, as it must, and is
not recorded."""

from __future__ import annotations

import pytest
import torch
from host_waits import TRANSFORMERS_MASK_CHECK, HostWaits

import warmstart
import warmstart.tasks.finetune as finetune_module


@pytest.fixture
def step_waits(monkeypatch):
    """A HostWaits that records inside the training steps of `fit` only."""
    waits = HostWaits()
    loop = finetune_module.train_loop

    def recorded(model, optimizer, batches, step_fn, *args, **kwargs):
        def step(batch):
            with waits:
                return step_fn(batch)
        return loop(model, optimizer, batches, step, *args, **kwargs)

    monkeypatch.setattr(finetune_module, "train_loop", recorded)
    return waits


TRAIN = {"max_steps": 3, "precision": "fp32", "eval_every": 100, "max_length": 32}


@pytest.mark.parametrize("strategy", ["full", "lp_ft", "lora", "llrd", "l2sp", "gradual_unfreeze"])
def test_classification_steps(strategy, pretrained, sentiment_csv, tmp_path, step_waits):
    warmstart.finetune(output_dir=str(tmp_path / "run"), init=str(pretrained), data={"path": str(sentiment_csv)},
                       train={**TRAIN, "strategy": strategy})
    assert step_waits.seen, "the recorder saw no step"  # padded sentences: transformers' check ran
    assert step_waits.besides(TRANSFORMERS_MASK_CHECK) == []


@pytest.mark.parametrize("task", ["token_classification", "summarization", "response_selection", "multi_label"])
def test_other_text_task_steps(task, pretrained, tmp_path, step_waits):
    from tests.tasks.test_multi_label import _table
    from tests.tasks.test_response_selection import write_dialogue
    from tests.tasks.test_summarization import write_documents
    from tests.tasks.test_token_classification import write_ner_folder

    data = {"token_classification": lambda p: write_ner_folder(p) or p,
            "summarization": lambda p: write_documents(p, 30, 0) or p,
            "response_selection": lambda p: write_dialogue(p) or p,
            "multi_label": _table}[task](
        tmp_path / ("ner" if task == "token_classification" else f"{task}.jsonl"))
    columns = {"label_column": "labels"} if task == "multi_label" else {}  # (its positives weighted: no read-back)
    warmstart.finetune(task=task, output_dir=str(tmp_path / "run"), init=str(pretrained),
                       data={"path": str(data), "candidates": 4, **columns}, train={**TRAIN, "negatives": 3})
    assert step_waits.seen
    assert step_waits.besides(TRANSFORMERS_MASK_CHECK) == []


def test_image_classification_steps(shapes_idx, tmp_path, step_waits):
    """Views made on the model's device from parameters drawn on the host: no read-back at all."""
    idx = {"sources": [str(shapes_idx / "train-images-idx3-ubyte.gz")],
           "test_sources": [str(shapes_idx / "t10k-images-idx3-ubyte.gz")], "labels": 30, "validation_per_class": 5}
    run = warmstart.finetune(task="image_classification", init="scratch", output_dir=str(tmp_path / "run"),
                             model={"image_size": 16, "widths": [8, 16], "depths": [1, 1]}, data=idx,
                             train={"max_steps": 3, "precision": "fp32", "strategy": "full", "batch_size": 10})
    assert run.metrics["steps"] == 3
    assert step_waits.seen == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: torch's sync debug mode")
def test_image_classification_steps_never_synchronise_on_cuda(shapes_idx, tmp_path, monkeypatch):
    """What the CPU recorder cannot see: a plain copy from the host (a list of means, view parameters moved with
    .to()) synchronises the stream on a GPU. torch's sync debug mode raises at any synchronising call in a step
    (the first step allocates, and evaluation reads back: neither is checked)."""
    loop, calls = finetune_module.train_loop, []

    def checked(model, optimizer, batches, step_fn, *args, **kwargs):
        def step(batch):
            calls.append(1)
            if len(calls) == 1:
                return step_fn(batch)
            torch.cuda.set_sync_debug_mode("error")
            try:
                return step_fn(batch)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return loop(model, optimizer, batches, step, *args, **kwargs)

    monkeypatch.setattr(finetune_module, "train_loop", checked)
    idx = {"sources": [str(shapes_idx / "train-images-idx3-ubyte.gz")],
           "test_sources": [str(shapes_idx / "t10k-images-idx3-ubyte.gz")], "labels": 30, "validation_per_class": 5}
    warmstart.finetune(task="image_classification", init="scratch", output_dir=str(tmp_path / "run"),
                       model={"image_size": 16, "widths": [8, 16], "depths": [1, 1]}, data=idx,
                       train={"max_steps": 3, "precision": "fp32", "strategy": "full", "batch_size": 10})
    assert len(calls) >= 3
