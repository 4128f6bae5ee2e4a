"""`train.compile` traces a pretraining step once: one graph (no graph break) that every batch of the run fits
(issue 23). A batch of a new shape recompiles: seconds on a CPU, and after 8 shapes dynamo runs the rest
eagerly, with a warning in a log nobody reads; CUDA graphs (`train.compile_mode=reduce-overhead`) replay one shape
only. Traced here with a counting backend and `fullgraph=True`, which raises at a graph break."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from conftest import tiny_pretrain_config
from torch._dynamo.testing import CompileCounter

import warmstart.pretraining.images as images
import warmstart.pretraining.text as text
from warmstart.config import ImagePretrainConfig, load_config
from warmstart.engine.distributed import Cluster
from warmstart.engine.loop import Budget, LoopSettings, LoopState, make_optimizer, train_loop
from warmstart.engine.runtime import place


@pytest.fixture
def counted(monkeypatch):
    """The jobs' `compiled` with a backend that counts the frames it is given (each recompile is one more)."""
    torch._dynamo.reset()  # dynamo's caches are per process: start from none
    counter = CompileCounter()
    real = torch.compile

    def compiled(fn, mode="default"):
        return real(fn, backend=counter, dynamic=False, fullgraph=True)

    monkeypatch.setattr(text, "compiled", compiled)
    monkeypatch.setattr(images, "compiled", compiled)
    yield counter
    torch._dynamo.reset()


def _train(job, batches: list) -> None:
    train_loop(job.model, make_optimizer(job.model, 1e-3, 0.01), iter(batches), lambda b: job.step(job.objective, b, 0.5),
               Budget(max_steps=len(batches)), LoopSettings(log_every=1000, bf16=False), tokens_fn=job.count)


@pytest.mark.parametrize("objective", [
    ("objective.nsp=false",),  # packed blocks: one shape by construction
    ("objective.nsp=true",),  # sentence pairs, bucketed by length: one width a batch until padded
    ("objective.name=electra", "objective.nsp=false"),
    ("objective.nsp=false", "objective.sparse_prediction=false"),  # the dense head
    ("objective.nsp=false", "objective.whole_word_mask=true"),
])
def test_a_compiled_text_step_is_traced_once(objective, counted, corpus_file, tmp_path):
    cfg = tiny_pretrain_config(corpus_file, tmp_path / "run", tmp_path / "cache", "train.compile=true",
                               "model.max_seq_len=64", *objective)
    job = text.TextPretraining(cfg, Cluster(), Path(tmp_path / "none"), False, False)
    place(job.model)
    raw = [b for _, _, b in itertools.islice(job.data.iterate(), 6)]
    batches = [(0, i, job.prepare(b)) for i, b in enumerate(raw)]
    if "objective.nsp=true" in objective:  # the case is real: the raw widths differ
        assert len({b["input_ids"].shape[1] for b in raw}) > 1
    _train(job, batches[:1])
    assert counted.frame_count == 1
    _train(job, batches[1:])
    assert counted.frame_count == 1, f"{objective}: a batch of the run recompiled the step"
    assert job.val_batches and job.evaluate(job.objective)  # held-out batches run eagerly: no second compile
    assert counted.frame_count == 1, f"{objective}: evaluating compiled the loss again (no_grad)"
    _train(job, batches)
    assert counted.frame_count == 1


def test_padding_for_one_shape_changes_no_loss(corpus_file, tmp_path):
    """The widened pairs (padding not attended, labels -100) give the eager loss of the unpadded batch."""
    common = ("objective.nsp=true", "model.max_seq_len=64")
    eager = text.TextPretraining(tiny_pretrain_config(corpus_file, tmp_path / "a", tmp_path / "cache", *common),
                                 Cluster(), tmp_path / "none", False, False)
    raw = next(b for _, _, b in eager.data.iterate() if b["input_ids"].shape[1] < 64)
    prepared = eager.prepare(raw, torch.Generator().manual_seed(0))
    eager.cfg.train.compile = True  # prepare only reads the flag: the same model, widened batch
    widened = eager.prepare(raw, torch.Generator().manual_seed(0))
    assert prepared["input_ids"].shape[1] < 64 == widened["input_ids"].shape[1]
    assert widened["tokens"] == prepared["tokens"]
    eager.model.eval()
    with torch.no_grad():
        a, b = (eager.objective(text.tensors(p)) for p in (prepared, widened))
    for k in ("mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc"):
        assert float(b[k]) == pytest.approx(float(a[k]), abs=1e-5), k


@pytest.mark.parametrize("objective", ["simclr", "autoencoder"])
def test_a_compiled_image_step_is_traced_once(objective, counted, shapes_idx, tmp_path):
    cfg = load_config(ImagePretrainConfig, None, [
        f"output_dir={tmp_path / 'run'}", f"data.sources=[{shapes_idx / 'train-images-idx3-ubyte.gz'}]",
        "model.image_size=16", "model.widths=[8,16]", "model.depths=[1,1]", "objective.projection_dim=8",
        "train.batch_size=16", "train.precision=fp32", "train.compile=true", f"objective.name={objective}",
        "objective.augment.blur_p=0.5", "objective.augment.greyscale_p=0.5"])
    job = images.ImagePretraining(cfg, Cluster(), tmp_path / "none", False, False)
    place(job.model, channels_last=job.channels_last)
    batches = list(itertools.islice(job.batches(LoopState()), 5))
    _train(job, batches[:1])
    first = counted.frame_count
    assert first >= 1
    _train(job, batches[1:])
    assert counted.frame_count == first, f"{objective}: a batch of the run recompiled the step"
