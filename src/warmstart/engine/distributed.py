"""Data parallelism across processes (`accelerate launch` or `torchrun`; gloo on CPU, NCCL on GPUs).

Every process builds the same global batch (the data order and the masking are seeded), trains on its
slice of rows, and averages gradients before each optimizer step, so N processes follow the loss curve
of one process with the same global batch. accelerate's `PartialState` sets up the process group from
the launcher's environment. Two ways to keep the weights:
- `ddp`: every process holds all weights; the gradient averaging is written here because the objectives
  call the encoder's submodules directly (sparse MLM head, ELECTRA's generator), which DDP's forward
  hooks would not see.
- `fsdp`: torch's FSDP2 (`fully_shard`) shards weights, gradients and optimizer state over the processes
  (what ZeRO-3 does); the objective becomes the root module's forward so FSDP gathers the weights it
  uses, and each layer of a ModuleList (transformer layers, ResNet stages) is its own unit. Checkpoints
  are gathered whole, so a sharded run resumes in any number of processes and saves plain HF folders.
- `deepspeed`: the DeepSpeed engine (ZeRO stage 1-3 from an accelerate DeepSpeed config) around the same
  root module; it reduces, clips and steps. Its partitioned optimizer state is saved in DeepSpeed's own
  format inside the checkpoint folder (`deepspeed/`); the weights are gathered into the HF files.
Rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from warmstart.engine.checkpoint import atomic_folder
from warmstart.engine.runtime import deepspeed_follows_device, device
from warmstart.errors import WarmstartError

PARALLEL_MODES = ("auto", "ddp", "fsdp", "deepspeed")
ENGINE_DIR = "deepspeed"  # DeepSpeed's partitioned state, inside a resumable checkpoint


@dataclass(frozen=True)
class Cluster:
    rank: int = 0
    world: int = 1
    mode: str = "ddp"  # ddp | fsdp | deepspeed (see the module docstring)

    @property
    def sharded(self) -> bool:
        """State is split over the processes: saving it (and the kNN monitor) is collective."""
        return self.mode != "ddp"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def rows(self, batch_size: int) -> slice:
        """This process's rows of a global batch (equal shares; the last takes any remainder)."""
        share = batch_size // self.world
        return slice(self.rank * share, batch_size if self.rank == self.world - 1 else (self.rank + 1) * share)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def parallel_mode(setting: str) -> str:
    """`train.parallel` resolved: `auto` follows an `accelerate launch` config (FSDP, DeepSpeed), else ddp."""
    if setting not in PARALLEL_MODES:
        raise WarmstartError(f"train.parallel: unknown value '{setting}'; use {', '.join(PARALLEL_MODES)}")
    if setting == "auto":
        return "fsdp" if _env_true("ACCELERATE_USE_FSDP") else \
            "deepspeed" if _env_true("ACCELERATE_USE_DEEPSPEED") else "ddp"
    return setting


def cluster(parallel: str = "auto") -> Cluster:
    """The process group of a multi-process launch, started on first use; a single process otherwise."""
    mode = parallel_mode(parallel)
    deepspeed_follows_device()  # before DeepSpeed's import picks an accelerator of its own
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Cluster()
    where = device()
    if where.type == "cuda":  # one GPU per process: NCCL refuses two processes on one GPU ("Duplicate GPU")
        local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        if local > torch.cuda.device_count():
            raise WarmstartError(f"{local} processes on this machine but {torch.cuda.device_count()} GPU(s); launch at "
                                 "most one process per GPU (--nproc_per_node / num_processes), or run on the CPU "
                                 "with WARMSTART_DEVICE=cpu")
        torch.cuda.set_device(where)
    if not dist.is_initialized():
        from accelerate import PartialState

        if mode == "deepspeed" and where.type != "cuda":
            _skip_deepspeed_shm_build()
        PartialState(cpu=where.type != "cuda")
    return Cluster(dist.get_rank(), dist.get_world_size(), mode)


def _skip_deepspeed_shm_build() -> None:
    """On a CPU, DeepSpeed's first start compiles a shared-memory all-reduce with g++ (70 s on 2 AMD EPYC cores,
    and an error without a compiler) that only its inference all-reduce calls; training reduces through the
    process group. DeepSpeed has no switch for it, so the op is marked unbuildable for this process."""
    try:
        import deepspeed.ops
    except ImportError:
        return  # the engine says so in one line when it starts (deepspeed_engine)
    compatible = getattr(deepspeed.ops, "__compatible_ops__", None)  # probed lazily, once per process
    if isinstance(compatible, dict):
        compatible["deepspeed_shm_comm"] = False


def shutdown() -> None:
    """Leave the process group cleanly. Without it gloo's threads can outlive the interpreter's teardown and
    abort the process ("terminate called without an active exception"), failing a run that finished."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """All-reduce the gradients as one flat buffer (one collective per step, as DDP's buckets do)."""
    grads = [p.grad for p in params if p.grad is not None]
    if world <= 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def agree_max(value: float, world: int) -> float:
    """The largest value over processes, so that time budgets end on the same step everywhere."""
    if world <= 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t)


def mean_over_processes(values: dict[str, float], world: int) -> dict[str, float]:
    if world <= 1 or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(values, (t / world).tolist(), strict=True))


def broadcast_parameters(model: torch.nn.Module, world: int) -> None:
    """Start every process from rank 0's weights (as DDP does when it wraps a model)."""
    if world > 1:
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, src=0)


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


# ---------------------------------------------------------------- fsdp
class ShardedObjective(torch.nn.Module):
    """`model` with the objective as its forward, so that FSDP's hooks gather the root's weights (embeddings,
    heads) around every objective call, whichever submodules the objective calls."""

    def __init__(self, model: torch.nn.Module, objective: Callable):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, *args, **kwargs):
        return self.objective(*args, **kwargs)


def shard(model: torch.nn.Module, objective: Callable) -> ShardedObjective:
    """Apply FSDP2 to `model` (in place; its parameters become DTensor shards) and return the callable root.

    Units: every child of a ModuleList (transformer layers, ResNet stages), or the classes named in an
    accelerate FSDP config (`fsdp_transformer_layer_cls_to_wrap`); the rest (embeddings, tied heads) lives in
    the root. `fsdp_reshard_after_forward: false` (or sharding strategy SHARD_GRAD_OP) keeps the gathered
    weights from forward to backward (ZeRO-2-like: more memory, less communication)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard

    names = {n.strip() for n in os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "").split(",") if n.strip()}
    reshard = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() != "false" and \
        os.environ.get("FSDP_SHARDING_STRATEGY", "FULL_SHARD").upper() not in ("SHARD_GRAD_OP", "2")
    where = device()
    offload = CPUOffloadPolicy() if _env_true("FSDP_OFFLOAD_PARAMS") and where.type == "cuda" else OffloadPolicy()
    # the mesh on the run's device: left to itself, fully_shard builds a CUDA mesh whenever CUDA exists, and on
    # a machine with one GPU a CPU (gloo) run's second process then asks for a GPU that is not there
    mesh = init_device_mesh(where.type, (dist.get_world_size(),))
    if names:
        units = [m for m in model.modules() if type(m).__name__ in names]
    else:
        units = [child for m in model.modules() if isinstance(m, torch.nn.ModuleList) for child in m]
    if not units and names:
        raise WarmstartError(f"fsdp_transformer_layer_cls_to_wrap={','.join(sorted(names))} matches no module of "
                             f"{type(model).__name__}; name its layer class (e.g. BertLayer) or leave it empty")
    for unit in units:
        fully_shard(unit, mesh=mesh, reshard_after_forward=reshard, offload_policy=offload)
    root = ShardedObjective(model, objective)
    fully_shard(root, mesh=mesh, reshard_after_forward=reshard, offload_policy=offload)
    return root


def _whole(t: torch.Tensor) -> torch.Tensor:
    from torch.distributed.tensor import DTensor

    return t.full_tensor() if isinstance(t, DTensor) else t


def full_state_dict(module: torch.nn.Module, group: Cluster) -> dict[str, torch.Tensor]:
    """`module`'s weights, whole, on CPU. Sharded: a collective (every process calls it, in the same order);
    tied weights stay one tensor, so `save_pretrained` stores them once."""
    if not group.sharded:
        return module.state_dict()
    if any(hasattr(p, "ds_tensor") for p in module.parameters()):  # ZeRO-3 partitions: gather them for a moment
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
            state = {key: value.detach().clone().cpu() for key, value in module.state_dict().items()}
    else:
        state = {key: _whole(value).detach().cpu() for key, value in module.state_dict().items()}
    # the state dict has one tensor per name; tie the gathered copies again (decoder = word embeddings)
    tied: dict[int, list[str]] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        tied.setdefault(id(p), []).append(name)
    for names in tied.values():
        for name in names[1:]:
            if name in state and names[0] in state:
                state[name] = state[names[0]]
    return state


def full_optimizer_state(optimizer: torch.optim.Optimizer, group: Cluster) -> dict | None:
    """`optimizer.state_dict()` with whole tensors (collective when sharded), in the single-process format,
    so a checkpoint resumes in any number of processes. None under DeepSpeed (its state is in ENGINE_DIR)."""
    if group.mode == "deepspeed":
        return None
    saved = optimizer.state_dict()
    if group.sharded:  # new dicts: the inner ones of state_dict() are the optimizer's live state
        saved["state"] = {i: {k: _whole(v).cpu() for k, v in s.items()} for i, s in saved["state"].items()}
    return saved


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load a whole optimizer state; where the parameters are shards, each process keeps its shard."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    params = [p for g in optimizer.param_groups for p in g["params"]]
    state = {}
    for i, s in saved["state"].items():
        p = params[int(i)]
        state[i] = {k: distribute_tensor(v.to(p.device), p.device_mesh, p.placements)
                    if isinstance(p, DTensor) and v.shape == p.shape else v for k, v in s.items()}
    optimizer.load_state_dict({**saved, "state": state})


# ---------------------------------------------------------------- deepspeed
def deepspeed_config(batch_size: int, grad_accum: int, max_grad_norm: float, world: int) -> dict:
    """The engine's config: an accelerate DeepSpeed config's file or ZeRO stage and offload settings, with the
    batch, accumulation and clipping that warmstart's config sets. warmstart owns the optimizer, the schedule
    and mixed precision (bf16 autocast), so a config that sets them is refused rather than silently ignored."""
    import json

    path = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    config: dict = {}
    if path and path.lower() != "none":
        try:
            with open(path, encoding="utf-8") as f:
                config = json.loads(f.read())
        except (OSError, ValueError) as e:
            raise WarmstartError(f"{path}: cannot read the DeepSpeed config ({e}); give a JSON file") from e
        clash = sorted(k for k in ("optimizer", "scheduler", "fp16", "bf16")
                       if k in config and config[k].get("enabled", True) not in (False, "false", "auto"))
        if clash:
            raise WarmstartError(f"{path}: remove {', '.join(clash)}: warmstart sets the optimizer and schedule "
                                 "(train.lr, train.schedule) and mixed precision (train.precision) itself")
    for k in ("fp16", "bf16"):  # "auto" in accelerate's templates: warmstart's autocast decides
        config.pop(k, None)
    zero = config.setdefault("zero_optimization", {})
    if "stage" not in zero or zero["stage"] == "auto":
        zero["stage"] = int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2"))
    for what in ("optimizer", "param"):
        where = os.environ.get(f"ACCELERATE_DEEPSPEED_OFFLOAD_{what.upper()}_DEVICE", "none")
        if where != "none" and f"offload_{what}" not in zero:
            zero[f"offload_{what}"] = {"device": where}
    config.update(train_micro_batch_size_per_gpu=batch_size // world, gradient_accumulation_steps=grad_accum,
                  train_batch_size=batch_size * grad_accum, zero_allow_untested_optimizer=True,
                  steps_per_print=10**9, wall_clock_breakdown=False)
    if config.get("gradient_clipping", "auto") == "auto":
        config["gradient_clipping"] = max_grad_norm or 0.0
    return config


def parallelize(model: torch.nn.Module, objective: Callable, new_optimizer: Callable[[], torch.optim.Optimizer],
                group: Cluster, batch_size: int, grad_accum: int, max_grad_norm: float):
    """(forward, optimizer, engine) for `group.mode`: `objective` itself and a new optimizer (ddp); the FSDP root
    around it, the optimizer made after sharding so it holds the shards (fsdp); the DeepSpeed engine and its
    optimizer (deepspeed). Call after `broadcast_parameters`, so every process shards the same weights."""
    if group.mode == "fsdp":
        forward = shard(model, objective)
        return forward, new_optimizer(), None
    optimizer = new_optimizer()
    if group.mode != "deepspeed":
        return objective, optimizer, None
    engine, optimizer = deepspeed_engine(model, objective, optimizer,
                                         deepspeed_config(batch_size, grad_accum, max_grad_norm, group.world))
    return engine, optimizer, engine


def save_collectively(final, write: Callable, engine, out, group: Cluster) -> None:
    """Every process calls it (after gathering what `write` needs): DeepSpeed's partitions are staged by all,
    then rank 0 writes `write(folder)` and the staged state into `final` in one atomic swap."""
    staged = stage_engine_state(engine, out, group) if engine is not None else None
    if not group.main:
        return

    def write_all(folder) -> None:
        write(folder)
        if staged is not None:
            shutil.move(staged, folder / ENGINE_DIR)
    atomic_folder(final, write_all)


def deepspeed_engine(model: torch.nn.Module, objective: Callable, optimizer: torch.optim.Optimizer,
                     config: dict):
    """(engine, its optimizer): the engine's forward runs `objective`; it owns backward, reduction, clipping and
    the step; warmstart's loop still sets the learning rate on the optimizer's groups."""
    try:
        import deepspeed
    except ImportError as e:
        raise WarmstartError("train.parallel=deepspeed needs DeepSpeed: pip install 'warmstart[deepspeed]'") from e
    engine, engine_optimizer, _, _ = deepspeed.initialize(model=ShardedObjective(model, objective),
                                                          optimizer=optimizer, config=config)
    return engine, engine_optimizer


def stage_engine_state(engine, out, group: Cluster):
    """Every process writes its part of DeepSpeed's state into a staging folder under `out` (collective);
    returns that folder, which rank 0 then moves into the atomically written checkpoint."""
    staging = Path(out) / ".deepspeed-staging"
    if group.main:
        shutil.rmtree(staging, ignore_errors=True)
    barrier(group.world)
    engine.save_checkpoint(str(staging), tag="state", save_latest=False)
    barrier(group.world)
    return staging


def resume_optimizer(optimizer: torch.optim.Optimizer, engine, saved: dict, folder) -> None:
    """Restore the optimizer from a resumable checkpoint: DeepSpeed's own folder under an engine, else the
    whole state (any process count, sharded or not)."""
    engine_dir = Path(folder) / ENGINE_DIR
    if engine is not None:
        if not engine_dir.is_dir():
            raise WarmstartError(f"{folder}: this checkpoint was not written under DeepSpeed; resume it without "
                                 "train.parallel=deepspeed (ddp or fsdp)")
        engine.load_checkpoint(str(engine_dir), tag="state")
    elif saved.get("optimizer") is None:
        raise WarmstartError(f"{folder}: this checkpoint's optimizer state is DeepSpeed's; resume it under the "
                             "same DeepSpeed launch")
    else:
        load_optimizer_state(optimizer, saved["optimizer"])
