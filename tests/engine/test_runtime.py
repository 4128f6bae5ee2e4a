"""One home for device and precision (issue 23.1): WARMSTART_DEVICE overrides detection, and every entry point
hands every model it runs to the one placement function, so a GPU can never meet a model left on the CPU.

The check works on a CPU-only machine: `place()` records the weights it placed, and a global forward hook
records any weight that runs without having been placed, whichever command runs it."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import torch

import warmstart
from warmstart.engine.runtime import DEVICE_ENV, device, place, track_placement, was_placed
from warmstart.errors import WarmstartError


@pytest.fixture
def unplaced():
    """Names of modules whose weights ran without having gone through `place()`."""
    track_placement(True)
    found: list[str] = []

    def hook(module, args):
        for name, p in module.named_parameters(recurse=False):
            if not was_placed(p):
                found.append(f"{type(module).__name__}.{name}")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    yield found
    handle.remove()
    track_placement(False)


def test_the_device_override(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert device() == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV, "tpu")
    with pytest.raises(WarmstartError, match="WARMSTART_DEVICE=tpu: use cpu, cuda or cuda:N"):
        device()
    if not torch.cuda.is_available():
        monkeypatch.setenv(DEVICE_ENV, "cuda:0")
        with pytest.raises(WarmstartError, match="no CUDA device"):
            device()


@pytest.mark.parametrize("choice, local_rank, expected", [
    ("cuda", "1", "cuda:1"),  # with an index always: a tensor on the GPU says cuda:N, and cuda != cuda:0
    ("cuda:3", "1", "cuda:3"),
    ("", "0", "cuda:0"),  # detected
    ("cpu", "1", "cpu"),
])
def test_the_device_always_has_an_index(choice, local_rank, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # device() only names it
    monkeypatch.setenv(DEVICE_ENV, choice)
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    assert device() == torch.device(expected)



@pytest.mark.parametrize("given, cuda, expected", [
    (None, False, "cpu"),  # told, so its import no longer warns "Setting accelerator to CPU ... unable to detect it"
    (None, True, None),  # on a GPU its own detection finds CUDA, as warmstart does
    ("xpu", False, "xpu"),  # the user's own choice stays
])
def test_deepspeed_is_told_the_device_before_a_checkpoint_is_written(given, cuda, expected, tmp_path, monkeypatch):
    from transformers import BertConfig, BertModel

    from warmstart.engine.checkpoint import save_hf

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.delenv("DS_ACCELERATOR", raising=False)
    if given:
        monkeypatch.setenv("DS_ACCELERATOR", given)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)  # device() only names it
    save_hf(tmp_path, BertModel(BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                                           intermediate_size=8)), None)
    assert (tmp_path / "model.safetensors").is_file()
    assert os.environ.get("DS_ACCELERATOR") == expected

def test_a_checkpoint_is_written_without_importing_deepspeed(tmp_path):
    """save_pretrained's unwrapping asked accelerate, which imported DeepSpeed and MLflow to ask (1.4 s a
    process); a fresh process writes a checkpoint with neither imported."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from transformers import BertConfig, BertModel; "
            "from warmstart.engine.checkpoint import save_hf; save_hf(Path(sys.argv[1]), BertModel(BertConfig("
            "vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)), None); "
            "print([m for m in ('deepspeed', 'mlflow') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]" and (tmp_path / "model.safetensors").is_file()


def test_once_deepspeed_is_imported_accelerate_unwraps_as_before(monkeypatch):
    import importlib.util
    import sys
    import types

    import accelerate.utils.other as other
    from accelerate.utils.imports import is_deepspeed_available

    from warmstart.engine.runtime import deepspeed_only_once_loaded

    deepspeed_only_once_loaded()
    deepspeed_only_once_loaded()  # once: not a wrapper around a wrapper
    assert other.is_deepspeed_available.warmstart_lazy
    installed = importlib.util.find_spec("deepspeed")
    monkeypatch.delitem(sys.modules, "deepspeed", raising=False)
    assert other.is_deepspeed_available() is False  # nothing can be a DeepSpeedEngine yet
    loaded = types.ModuleType("deepspeed")  # as if imported (the real import takes seconds)
    loaded.__spec__ = installed
    monkeypatch.setitem(sys.modules, "deepspeed", loaded)
    assert other.is_deepspeed_available() is (installed is not None) is is_deepspeed_available()


def test_a_model_left_off_the_device_is_refused_in_one_line(monkeypatch):
    """On a CPU machine a stand-in for a GPU: the meta device, where the batches would go."""
    import warmstart.engine.runtime as runtime
    from warmstart.engine.loop import Budget, LoopSettings, make_optimizer, train_loop

    monkeypatch.setattr(runtime, "device", lambda: torch.device("meta"))
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(WarmstartError, match=r"^train_loop: the model's weight 0.weight is on cpu but the batches "
                                             r"go to meta; put the model there first"):
        train_loop(model, make_optimizer(model, 1e-3, 0.0), iter([]), lambda b: b, Budget(max_steps=1),
                   LoopSettings())
    runtime.require_placed(model.to("meta"), "train_loop")  # placed: no complaint


def test_more_processes_than_gpus_is_one_line_before_any_work(monkeypatch):
    from warmstart.engine.distributed import cluster

    if torch.cuda.is_available():
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(torch.cuda.device_count() + 1))
    else:  # a stand-in for a machine with one GPU fewer than processes: a CUDA device that is not there
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    with pytest.raises(WarmstartError, match="processes on this machine but .* GPU"):
        cluster("ddp")


def test_every_text_entry_point_places_what_it_runs(pretrained, corpus_file, sentiment_csv, tmp_path, unplaced):
    from tests.tasks.test_response_selection import write_dialogue
    from tests.tasks.test_summarization import write_documents
    from tests.tasks.test_token_classification import write_ner_folder

    common = {"corpus": {"sources": [str(corpus_file)], "cache_dir": str(tmp_path / "cache")},
              "tokenizer": {"from_checkpoint": str(pretrained)},
              "model": {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "max_seq_len": 32},
              "train": {"batch_size": 8, "max_steps": 2, "precision": "fp32", "eval_every": 1}}
    warmstart.pretrain(output_dir=str(tmp_path / "mlm"), **common)
    warmstart.pretrain(output_dir=str(tmp_path / "electra"), objective={"name": "electra", "nsp": False}, **common)
    ft = {"init": str(pretrained), "train": {"max_steps": 2, "precision": "fp32", "eval_every": 1, "max_length": 32}}
    for strategy in ("full", "lp_ft", "lora"):
        run = warmstart.finetune(output_dir=str(tmp_path / f"ft-{strategy}"), data={"path": str(sentiment_csv)},
                                 forgetting={"texts": [str(corpus_file)], "samples": 8},
                                 **{**ft, "train": {**ft["train"], "strategy": strategy}})
    pd.DataFrame({"text": ["good film"]}).to_csv(tmp_path / "rows.csv", index=False)
    warmstart.predict(run.output_dir, tmp_path / "rows.csv")
    warmstart.Predictor(run.output_dir).predict(["good film"])  # rows in memory, the model kept for the next call
    write_ner_folder(tmp_path / "ner")
    write_documents(tmp_path / "docs.jsonl", 30, 0)
    write_dialogue(tmp_path / "dialogue.jsonl")
    for task, data in (("token_classification", tmp_path / "ner"), ("summarization", tmp_path / "docs.jsonl"),
                       ("response_selection", tmp_path / "dialogue.jsonl")):
        run = warmstart.finetune(task=task, output_dir=str(tmp_path / task), data={"path": str(data), "candidates": 4},
                                 **{**ft, "train": {**ft["train"], "negatives": 3}})
        assert run.metrics["scored_split"] == "test"
    warmstart.predict(tmp_path / "token_classification", tmp_path / "ner" / "test.conll", tmp_path / "tags.jsonl")
    (tmp_path / "t.yaml").write_text(json.dumps({"data": {"path": str(sentiment_csv)}, "train": {"precision": "fp32"}}))
    warmstart.rank(str(tmp_path / "t.yaml"), [pretrained, tmp_path / "mlm"], output=tmp_path / "r.csv")
    assert not unplaced, sorted(set(unplaced))


def test_auto_places_what_it_runs(pretrained, corpus_file, sentiment_csv, tmp_path, unplaced, monkeypatch):
    """warmstart auto: ranking, the timed step, adaptation, the cross-validated fits, the refit."""
    def no_minilm():
        raise WarmstartError("not installed here")

    monkeypatch.setattr("warmstart.models.common.minilm_folder", no_minilm)
    v = warmstart.auto(sentiment_csv, unlabelled=[corpus_file], candidates=[pretrained], budget="5m",
                       output_dir=tmp_path / "auto", labels=16).verdict
    assert v["unlabelled"].get("adapted") and any(r["pipeline"].startswith("setfit:") for r in v["pipelines"])
    assert not unplaced, sorted(set(unplaced))


@pytest.fixture
def conv_layouts():
    """The memory format of every convolution's weights that runs (strictly one: a weight that is both, e.g.
    1x1, is not counted). The fine-tuning run placed its ResNet channels-last and `warmstart predict` did not:
    on a GPU the two ran other cuDNN kernels and disagreed by 5e-4 (issue 23)."""
    found: set[str] = set()

    def hook(module, args):
        if isinstance(module, torch.nn.Conv2d):
            last, plain = module.weight.is_contiguous(memory_format=torch.channels_last), module.weight.is_contiguous()
            if last != plain:
                found.add("channels_last" if last else "contiguous")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    yield found
    handle.remove()


@pytest.mark.parametrize("build, expected", [
    (lambda: _resnet(), True),
    (lambda: torch.nn.ModuleDict({"backbone": _resnet(), "head": torch.nn.Linear(4, 2)}), True),
    (lambda: _vit(), False),  # a patch-embedding Conv2d, but the rest is a transformer
    (lambda: torch.nn.Conv2d(3, 2, 3), False),  # no HF config: left as the caller made it
])
def test_which_models_run_channels_last(build, expected):
    from warmstart.engine.runtime import uses_channels_last

    model = build()
    assert uses_channels_last(model) is expected
    placed = place(model)
    conv = next(m for m in placed.modules() if isinstance(m, torch.nn.Conv2d))
    # three input channels: a weight is in one format strictly, not both
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) is expected
    assert conv.weight.is_contiguous() is not expected


def _resnet():
    from transformers import ResNetConfig, ResNetModel

    return ResNetModel(ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8], depths=[1]))


def _vit():
    from transformers import ViTConfig, ViTModel

    return ViTModel(ViTConfig(image_size=8, patch_size=4, num_channels=3, hidden_size=8, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=16))


def test_every_image_entry_point_places_what_it_runs(shapes_idx, tmp_path, unplaced, conv_layouts):
    data = {"sources": [str(shapes_idx / "train-images-idx3-ubyte.gz")]}
    model = {"image_size": 16, "widths": [8, 16], "depths": [1, 1]}
    train = {"batch_size": 16, "max_steps": 2, "precision": "fp32", "eval_every": 1}
    pre = warmstart.pretrain(output_dir=str(tmp_path / "simclr"), data=data, model=model, train=train,
                             objective={"name": "simclr", "projection_dim": 8})
    warmstart.pretrain(output_dir=str(tmp_path / "ae"), data=data, model=model, train=train,
                       objective={"name": "autoencoder"})
    run = warmstart.finetune(task="image_classification", init=str(pre.output_dir), output_dir=str(tmp_path / "ft"),
                             data={**data, "test_sources": [str(shapes_idx / "t10k-images-idx3-ubyte.gz")],
                                   "labels": 30, "validation_per_class": 5},
                             train={"max_steps": 2, "precision": "fp32", "strategy": "lp_ft", "batch_size": 10},
                             forgetting={"measure": True, "memory": 20, "queries": 10})
    warmstart.predict(run.output_dir, shapes_idx / "t10k-images-idx3-ubyte.gz", tmp_path / "p.csv")
    (tmp_path / "r.yaml").write_text(json.dumps({"task": "image_classification", "data": {
        **data, "test_sources": [str(shapes_idx / "t10k-images-idx3-ubyte.gz")], "labels": 30},
        "train": {"precision": "fp32"}}))
    warmstart.rank(str(tmp_path / "r.yaml"), [pre.output_dir], output=tmp_path / "r.csv")
    assert not unplaced, sorted(set(unplaced))
    assert conv_layouts == {"channels_last"}, "every ResNet runs channels-last: training, evaluation, predict, rank"


def test_the_check_sees_a_model_that_was_not_placed(unplaced):
    from warmstart.engine.runtime import place

    placed, stray = place(torch.nn.Linear(2, 2)), torch.nn.Linear(2, 2)
    placed(torch.zeros(1, 2, device=device()))
    assert not unplaced
    stray(torch.zeros(1, 2))
    assert unplaced == ["Linear.weight", "Linear.bias"]


def test_to_device_moves_nested_tensors_and_keeps_plain_numbers():
    """A prepared image batch nests its views' parameters; every tensor moves, every plain number stays."""
    from warmstart.engine.runtime import to_device

    batch = {"images": torch.zeros(2, 1, 4, 4, dtype=torch.uint8), "count": 4,
             "views": {"1": {"theta": torch.zeros(2, 2, 3)}, "2": {"theta": torch.ones(2, 2, 3)}}}
    moved = to_device(batch, non_blocking=True)
    assert moved["count"] == 4 and moved["views"]["2"]["theta"].device == device()
    assert torch.equal(moved["views"]["2"]["theta"].cpu(), batch["views"]["2"]["theta"])
    assert moved["images"].dtype == torch.uint8


def test_each_compiled_job_counts_its_own_recompiles(monkeypatch):
    """Dynamo compiles one code object at most `recompile_limit` (8) times, then runs it eagerly: jobs of one
    class share their `_loss`'s code, so a process's 9th config (a study, a sweep) ran uncompiled. `compiled`
    gives each job a code object of its own; the graphs keep no job's weights alive."""
    import gc
    import weakref

    from torch._dynamo.testing import CompileCounter

    from warmstart.engine.runtime import compiled

    torch._dynamo.reset()
    counter, real = CompileCounter(), torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real(fn, backend=counter, dynamic=False))

    class Job:
        def __init__(self, width: int):
            self.layer = torch.nn.Linear(3, width)

        def _loss(self, x: torch.Tensor, *, scale: float = 2.0) -> torch.Tensor:
            return self.layer(x).sum() * scale

    x, jobs = torch.ones(2, 3), torch._dynamo.config.recompile_limit + 2
    for width in range(1, jobs + 1):  # a new parameter shape each: a recompile when the code is shared
        job = Job(width)
        loss = compiled(job._loss)
        assert torch.allclose(loss(x), job._loss(x)) and torch.allclose(loss(x, scale=1.0), job._loss(x) / 2)
    assert counter.frame_count == 2 * jobs, "a job past the limit ran eagerly"  # a graph for each scale
    assert loss._torchdynamo_orig_callable.__func__.__code__ is not Job._loss.__code__
    weight = weakref.ref(job.layer.weight)
    del job, loss
    gc.collect()
    assert weight() is None, "the compiled graphs kept the last job's weights alive"
    torch._dynamo.reset()


@pytest.mark.parametrize("bf16_ms, fp32_ms, chosen", [
    ([50, 13, 13, 13], [27, 27, 27, 27], True),   # a burst of load during one bf16 round: still bf16
    ([13, 13, 13, 13], [27, 60, 27, 27], True),
    ([30, 30, 30, 30], [27, 27, 27, 27], False),  # bf16 no faster (a Xeon with AVX512-BF16 alone): fp32
    ([23, 23, 23, 23], [27, 27, 27, 27], False),  # under 20% faster is not worth bf16's rounding
])
def test_auto_precision_on_the_cpu_times_interleaved_rounds(monkeypatch, bf16_ms, fp32_ms, chosen):
    """`precision: auto` times bf16 and fp32 in turn, four rounds, and compares the fastest of each."""
    import torch

    import warmstart.engine.runtime as runtime

    clock = []
    for b, f in zip(bf16_ms, fp32_ms, strict=True):
        clock += [0.0, b / 1e3, 0.0, f / 1e3]  # perf_counter before and after each timed run, bf16 first
    ticks = iter(clock)
    monkeypatch.setattr(runtime, "_CPU_BF16_FASTER", None)
    monkeypatch.setattr(runtime, "device", lambda: torch.device("cpu"))
    monkeypatch.setattr(runtime.time, "perf_counter", lambda: next(ticks))
    assert runtime.use_bf16("auto") is chosen
