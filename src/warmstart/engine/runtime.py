"""Where and how a run computes: the device, bf16 or fp32, and the number of CPU threads."""

from __future__ import annotations

import os
import time
import types
from contextlib import nullcontext

import torch

from warmstart.engine.dropout import use_fast_dropout
from warmstart.errors import WarmstartError

DEVICE_ENV = "WARMSTART_DEVICE"  # cpu | cuda | cuda:N: overrides the detection below


def device() -> torch.device:
    """The device every model and batch goes to: `WARMSTART_DEVICE` when set; else CUDA when there is one (the
    process's own GPU, `cuda:LOCAL_RANK`, under a multi-process launch), else the CPU."""
    choice = os.environ.get(DEVICE_ENV, "").strip().lower()
    if choice:
        if choice != "cpu" and not (choice == "cuda" or (choice.startswith("cuda:") and choice[5:].isdigit())):
            raise WarmstartError(f"{DEVICE_ENV}={choice}: use cpu, cuda or cuda:N")
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise WarmstartError(f"{DEVICE_ENV}={choice}, but this machine has no CUDA device torch can use")
        if choice == "cpu":
            return torch.device("cpu")
    elif not torch.cuda.is_available():
        return torch.device("cpu")
    # always with an index: a tensor on the GPU says cuda:0, and torch.device("cuda") != torch.device("cuda:0")
    return torch.device(choice if choice.startswith("cuda:") else f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")



def deepspeed_follows_device() -> None:
    """Tell DeepSpeed, before anything imports it, to compute where warmstart does when that is the CPU.
    DeepSpeed picks its accelerator itself at import: CUDA when torch sees a GPU, else the CPU with a warning
    ("Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to detect it") that every
    run where it is installed printed, since transformers' `save_pretrained` imports it. Same choice, no line;
    and a CPU run on a GPU machine (`WARMSTART_DEVICE=cpu`) no longer meets a CUDA DeepSpeed. A user's own
    `DS_ACCELERATOR` is left as it is."""
    if "DS_ACCELERATOR" not in os.environ and device().type == "cpu":
        os.environ["DS_ACCELERATOR"] = "cpu"


def deepspeed_only_once_loaded() -> None:
    """transformers' `save_pretrained` unwraps the model with accelerate's `extract_model_from_parallel`, which
    imports DeepSpeed (and, through it, MLflow) wherever it is installed, only to ask whether the model is a
    DeepSpeedEngine: 1.4 s at a process's first save, 2.7 s cold (`python -X importtime -c "import deepspeed"`),
    paid by every command that writes a checkpoint. An object can only be a DeepSpeedEngine once deepspeed is
    imported, so accelerate's check is skipped until it is; a DeepSpeed run imports it at its start and is
    unwrapped as before (tests/engine/test_runtime.py)."""
    import sys

    import accelerate.utils.other as other

    if getattr(other.is_deepspeed_available, "warmstart_lazy", False):
        return
    available = other.is_deepspeed_available

    def loaded_and_available() -> bool:
        return "deepspeed" in sys.modules and available()

    loaded_and_available.warmstart_lazy = True  # type: ignore[attr-defined]
    other.is_deepspeed_available = loaded_and_available

_PLACED: set[int] | None = None  # ids of the parameters `place` has put on the device, while tracking


def track_placement(on: bool = True) -> None:
    """Record what `place` puts on the device (tests check that every weight that runs was placed)."""
    global _PLACED
    _PLACED = set() if on else None


def was_placed(parameter: torch.Tensor) -> bool:
    return _PLACED is not None and id(parameter) in _PLACED


def uses_channels_last(model: torch.nn.Module) -> bool:
    """Whether a model's convolutions run channels-last: ResNets (an HF config with model_type 'resnet', the
    model's own or a submodule's), the memory format oneDNN's CPU convolutions run fastest in. One rule for
    weights (`place`) and inputs (models/images.map_images, the training steps): a model placed one way and fed
    the other runs other kernels, and on a GPU with cuDNN's TF32 the two disagreed by 5e-4 (issue 23)."""
    return any(getattr(getattr(m, "config", None), "model_type", None) == "resnet" for m in model.modules())


def place(model: torch.nn.Module, channels_last: bool | None = None) -> torch.nn.Module:
    """Put a model where the run computes: the one function that moves models (batches: `to_device`).
    `channels_last`: the weights' memory format; None: `uses_channels_last(model)`. On a CPU its dropout
    modules draw their masks the faster way (engine/dropout.py)."""
    if channels_last is None:
        channels_last = uses_channels_last(model)
    model = model.to(device(), memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    if device().type == "cpu":
        use_fast_dropout(model)
    if _PLACED is not None:
        _PLACED.update(id(p) for p in model.parameters())
    return model


def require_placed(model: torch.nn.Module, where: str) -> None:
    """Refuse, in one line, a model whose weights are not where `to_device` sends the batches: otherwise the first
    forward fails deep inside torch ("Expected all tensors to be on the same device"), or, worse, a model half
    moved trains on two devices. Sharded weights (FSDP's DTensors, CPU offload included) are the engine's to
    place and are not checked."""
    dev = device()
    for name, p in model.named_parameters():
        if type(p).__name__ != "DTensor" and not hasattr(p, "ds_tensor") and p.device != dev:
            raise WarmstartError(f"{where}: the model's weight {name} is on {p.device} but the batches go to {dev}; "
                                 "put the model there first with warmstart.engine.runtime.place(model)")


def to_device(batch: dict[str, torch.Tensor] | torch.Tensor, non_blocking: bool = False,
              to: torch.device | None = None):
    """A batch (a dict of tensors and dicts of them, or one tensor) where the run computes (or `to`); a dict's
    plain numbers stay as they are.
    `non_blocking` to a GPU copies from pinned memory, so the host goes on queueing work (a plain copy from
    pageable memory synchronises the stream: the host waits for every queued kernel); the caller must not change
    the host tensors afterwards (the loops make fresh ones)."""
    dev = device() if to is None else torch.device(to)
    pin = non_blocking and dev.type == "cuda"

    def move(t: torch.Tensor) -> torch.Tensor:
        if t.device == dev:
            return t
        return (t.pin_memory() if pin and t.device.type == "cpu" else t).to(dev, non_blocking=non_blocking)

    def walk(v):
        if isinstance(v, torch.Tensor):
            return move(v)
        return {k: walk(x) for k, x in v.items()} if isinstance(v, dict) else v

    return walk(batch)


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compiled(fn, mode: str = "default"):
    """`torch.compile(fn)` with fixed shapes (the callers make them fixed). `mode`: reduce-overhead replays the
    step as CUDA graphs (launch overhead gone; on a CPU it is the default); max-autotune also searches matmul
    kernels. Compiling the function, not the module, leaves the modules and their state-dict keys plain."""
    if mode not in COMPILE_MODES:
        raise WarmstartError(f"compile mode '{mode}': use one of {', '.join(COMPILE_MODES)}")
    return torch.compile(_own_code(fn), dynamic=False, mode=None if mode == "default" else mode)


def _own_code(fn):
    """`fn` (a function or a bound method) as a new function with a code object of its own. Dynamo keeps its
    compiled graphs on the code object and compiles one code object at most 8 times (`recompile_limit`): every
    job of one class shares `_loss`'s code, so a process that trains a 9th config (a study, a sweep, a notebook)
    ran it eagerly, with only a warning (measured: of 10 widths in one process, the 9th and 10th ran uncompiled). With a code object of its
    own, each job's recompiles count apart."""
    func = getattr(fn, "__func__", fn)
    copy = types.FunctionType(func.__code__.replace(), func.__globals__, func.__name__, func.__defaults__,
                              func.__closure__)
    copy.__kwdefaults__, copy.__qualname__ = func.__kwdefaults__, func.__qualname__
    return types.MethodType(copy, fn.__self__) if hasattr(fn, "__func__") else copy


_CPU_BF16_FASTER: bool | None = None


def use_bf16(precision: str) -> bool:
    """Resolve `precision` (auto | bf16 | fp32). `auto` picks bf16 on CUDA when supported; on CPU it times a
    bf16 and an fp32 linear layer once per process: bf16 is ~5x faster with AMX (Sapphire Rapids), half as fast
    as fp32 on a Xeon with AVX512-BF16 alone, and twice as fast on an AMD EPYC (Zen 4) with AVX512-BF16 alone
    (benchmarks/results/pretrain_throughput.md): the instruction set does not decide it."""
    global _CPU_BF16_FASTER
    if precision == "fp32" and torch.cuda.is_available():
        # fp32 means IEEE fp32: cuDNN's TF32 convolutions (PyTorch's default) differ by ~1e-3 between
        # algorithms, so a prediction made in another batch size would not reproduce the run's
        torch.backends.cudnn.allow_tf32 = False
    if precision in ("bf16", "fp32"):
        return precision == "bf16"
    if precision != "auto":
        raise WarmstartError(f"precision: unknown value '{precision}'; use auto, bf16 or fp32")
    if device().type == "cuda":
        return torch.cuda.is_bf16_supported()
    if _CPU_BF16_FASTER is None:
        x, lin = torch.randn(2048, 256), place(torch.nn.Linear(256, 1024))  # on the CPU: this branch

        def timed(bf16: bool) -> float:
            with torch.no_grad(), autocast(bf16):
                lin(x)
                t = time.perf_counter()
                for _ in range(5):
                    lin(x)
                return time.perf_counter() - t

        # interleaved rounds, the fastest of each: a burst of load during one round cannot flip the choice (with
        # bf16 and fp32 timed twice each in turn, one of six ELECTRA runs on an AMD EPYC chose fp32, at half speed)
        rounds = [(timed(True), timed(False)) for _ in range(4)]
        _CPU_BF16_FASTER = min(b for b, _ in rounds) < 0.8 * min(f for _, f in rounds)
    return _CPU_BF16_FASTER


def autocast(enabled: bool):
    """bf16 autocast on CPU (AMX) or CUDA; a no-op when disabled."""
    return torch.autocast(device().type, dtype=torch.bfloat16) if enabled else nullcontext()


def set_threads(n: int | None) -> None:
    torch.set_num_threads(n or os.cpu_count() or 1)
