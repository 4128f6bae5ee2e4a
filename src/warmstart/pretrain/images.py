"""`warmstart pretrain` for images: unlabelled images -> batched views -> ResNet/ViT (SimCLR or denoising
autoencoder) -> an HF checkpoint that `transformers.AutoModel.from_pretrained` loads.

The training loop, budgets, bf16, progress, resume and atomic checkpoints are the text pipeline's
(train.py, checkpoint.py); only the data and the objective differ.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from warmstart.config import CONFIG_FILENAME, ImagePretrainConfig, validate
from warmstart.data.images import ImageSet, image_batches, load_images
from warmstart.data.vision import augment, channel_stats, simclr_views
from warmstart.engine.checkpoint import (
    TRAINING_STATE,
    load_training_state,
    publish_into,
    rng_state,
    save_hf,
    set_rng_state,
)
from warmstart.engine.distributed import (
    barrier,
    broadcast_parameters,
    cluster,
    full_optimizer_state,
    full_state_dict,
    parallelize,
    resume_optimizer,
    save_collectively,
)
from warmstart.engine.loop import Budget, LoopSettings, LoopState, make_optimizer, train_loop
from warmstart.engine.runtime import device, set_threads, use_bf16
from warmstart.engine.tracking import tracking_dir
from warmstart.errors import WarmstartError
from warmstart.models.common import describe
from warmstart.models.images import (
    PREPROCESSOR_FILE,
    build_image_backbone,
    image_feature_dim,
    image_features,
    map_images,
    preprocessor_config,
    read_preprocessor,
)
from warmstart.models.probe import knn_accuracy
from warmstart.models.tiny_conv import use_tiny_map_convs
from warmstart.objectives.autoencoder import Decoder, corrupt, reconstruction_loss
from warmstart.objectives.simclr import ProjectionHead, nt_xent_loss
from warmstart.pretrain.run import prepare_run_folder

HEAD_FILE = "objective_head.safetensors"  # projection head / decoder: resumable state, not part of the encoder
OBJECTIVES = ("simclr", "autoencoder")


def knn_monitor(data: ImageSet, seed: int, bank: int = 5000, queries: int = 1000):
    """A fixed labelled subset for watching kNN accuracy during pretraining (labels are never trained on).
    -> (bank images, bank labels, query images, query labels) or None when the data has no labels."""
    if data.labels is None or len(data) < 20:
        return None
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 12345))
    n_bank = min(bank, len(data) * 4 // 5)
    b, q = order[:n_bank], order[n_bank:n_bank + queries]
    return data.images[b], data.labels[b], data.images[q], data.labels[q]


def run_image_pretrain(cfg: ImagePretrainConfig, resume: bool = False) -> Path:
    """Pretrain an image encoder; write the HF checkpoint to `cfg.output_dir`. Returns that folder."""
    t0 = time.perf_counter()
    out, tc, oc, mc = Path(cfg.output_dir), cfg.train, cfg.objective, cfg.model
    validate(cfg)
    budget = Budget(tc.max_steps, tc.max_tokens, tc.max_minutes)
    group = cluster(tc.parallel)
    if tc.batch_size % group.world:
        raise WarmstartError(f"train.batch_size={tc.batch_size} is not divisible by {group.world} processes")
    set_threads(tc.num_threads or max(1, (os.cpu_count() or 1) // group.world))
    bf16 = use_bf16(tc.precision)
    resume_dir = prepare_run_folder(out, resume, group.main, group.world)  # recovers a kill mid-save

    data = load_images(cfg.data.sources, cfg.data.load_size, cfg.data.strict, cfg.data.image_column,
                       cfg.data.label_column, cfg.data.split)
    channels = data.images.shape[1]
    known = read_preprocessor(mc.init) if mc.init else None
    mean, std = (known[1], known[2]) if known else channel_stats(data.images)
    size = mc.image_size
    backbone = build_image_backbone(mc, channels, tc.seed)
    use_tiny_map_convs(backbone)  # the last ResNet stage's 2x2 maps as one matmul (same weights and keys)
    dim = image_feature_dim(backbone.config)
    head = ProjectionHead(dim, dim, oc.projection_dim) if oc.name == "simclr" else Decoder(dim, channels, size)
    model = torch.nn.ModuleDict({"backbone": backbone, "head": head})
    if resume:
        backbone.load_state_dict(load_file(resume_dir / "model.safetensors"))
        head.load_state_dict(load_file(resume_dir / HEAD_FILE))
    # oneDNN's fast CPU convolution layout; FSDP2 shards contiguous weights only
    channels_last = backbone.config.model_type == "resnet" and not group.sharded
    model.to(device(), memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    broadcast_parameters(model, group.world)  # before sharding: every process cuts its shard from one tensor

    def encode(pixels: torch.Tensor, project: bool = True) -> torch.Tensor:
        """(B, C, S, S) -> (B, P) projections or decoded images when `project`, else (B, D) features."""
        features = image_features(backbone, pixels)
        return head(features) if project else features

    forward, optimizer, engine = parallelize(model, encode, lambda: make_optimizer(model, tc.lr, tc.weight_decay),
                                             group, tc.batch_size, tc.grad_accum, LoopSettings.max_grad_norm)
    views = torch.Generator().manual_seed(tc.seed)  # augmentation randomness: resumable, same on every process
    state = LoopState()
    if resume:
        saved = load_training_state(resume_dir)
        resume_optimizer(optimizer, engine, saved, resume_dir)
        state = LoopState(**saved["loop"])
        set_rng_state(saved["rng"])
        views.set_state(saved["views_rng"])
    elif group.main:
        shutil.rmtree(resume_dir, ignore_errors=True)
        (out / "training_log.jsonl").unlink(missing_ok=True)
    if group.main:
        print(f"warmstart pretrain: {describe(backbone)}; {len(data):,} images {tuple(data.images.shape[1:])} -> "
              f"{size} px; {oc.name}, batch {tc.batch_size}x{tc.grad_accum}, {'bf16' if bf16 else 'fp32'}"
              + (f", {group.world} processes" if group.world > 1 else "")
              + (f" ({group.mode}: sharded)" if group.sharded else ""))
    config_text = yaml.safe_dump(asdict(cfg), sort_keys=False)
    preprocessor = json.dumps(preprocessor_config(size, mean, std), indent=2)
    monitor = knn_monitor(data, tc.seed)

    def to_device(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device(), non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def step_fn(batch: dict) -> dict:
        images = batch["images"].cpu()  # views are drawn for the global batch, then each process takes its rows
        rows = group.rows(len(images)) if group.world > 1 else slice(None)
        if oc.name == "simclr":
            v1, v2 = simclr_views(images, oc.augment, size, mean, std, views)
            z = forward(to_device(torch.cat([v1[rows], v2[rows]])))  # (2B, P)
            z1, z2 = z.chunk(2)
            return {"loss": nt_xent_loss(z1, z2, oc.temperature)}
        clean = augment(images, oc.augment, size, mean, std, views)[rows]
        noisy = corrupt(clean, oc.noise_std, oc.mask_fraction, views)
        decoded = forward(to_device(noisy))
        return {"loss": reconstruction_loss(decoded, to_device(clean))}

    def eval_fn(state: LoopState) -> tuple[dict, bool]:
        if monitor is None or not (group.main or group.sharded):  # sharded weights: every process takes part
            return {}, False
        bank_x, bank_y, query_x, query_y = monitor
        bank_f = map_images(lambda x: forward(x, False), backbone, bank_x, size, mean, std, bf16)
        query_f = map_images(lambda x: forward(x, False), backbone, query_x, size, mean, std, bf16)
        return {"val_knn_acc": round(knn_accuracy(bank_f, bank_y, query_f, query_y), 4)}, False

    def save_resumable(state: LoopState) -> dict:
        whole = {"backbone": full_state_dict(backbone, group), "head": full_state_dict(head, group),
                 "optimizer": full_optimizer_state(optimizer, group)}  # collective when sharded

        def write(folder: Path) -> None:
            save_hf(folder, backbone, None, {CONFIG_FILENAME: config_text, PREPROCESSOR_FILE: preprocessor},
                    state_dict=whole["backbone"])
            save_file({k: v.contiguous() for k, v in whole["head"].items()}, folder / HEAD_FILE)
            torch.save({"optimizer": whole["optimizer"], "loop": asdict(state), "rng": rng_state(),
                        "views_rng": views.get_state()}, folder / TRAINING_STATE)
        save_collectively(resume_dir, write, engine, out, group)
        return whole

    settings = LoopSettings(lr=tc.lr, warmup_fraction=tc.warmup_fraction, schedule=tc.schedule,
                            grad_accum=tc.grad_accum, bf16=bf16, log_every=tc.log_every, eval_every=tc.eval_every,
                            save_every_minutes=tc.save_every_minutes, desc="pretrain", unit="images",
                            cluster=group, engine=engine, tracking_dir=tracking_dir(tc.report_to, out))
    state = train_loop(model, optimizer, image_batches(data.images, tc.batch_size, tc.seed, state.epoch, state.index),
                       step_fn, budget, settings, state, tokens_fn=lambda b: len(b["images"]),
                       eval_fn=eval_fn, save_fn=save_resumable, log_path=out / "training_log.jsonl")
    final = eval_fn(state)[0]
    whole = save_resumable(state) if group.main or group.sharded else None
    if not group.main:
        barrier(group.world)
        return out
    metrics = {"steps": state.step, "images": state.tokens, "epochs": round(state.tokens / len(data), 2),
               "train_seconds": round(state.seconds, 1), "images_per_s": round(state.tokens / max(state.seconds, 1e-9), 1),
               "wall_seconds": round(time.perf_counter() - t0, 1), **final}
    publish_into(out, lambda f: save_hf(f, backbone, None, {
        CONFIG_FILENAME: config_text, PREPROCESSOR_FILE: preprocessor, "metrics.json": json.dumps(metrics, indent=2)},
        state_dict=whole["backbone"]))
    print(f"warmstart pretrain: done, {state.step} steps, {state.tokens:,} images ({metrics['epochs']} epochs), "
          f"{metrics['images_per_s']:,.0f} images/s; " + " ".join(f"{k}={v}" for k, v in final.items())
          + f"\n  checkpoint: {out}")
    barrier(group.world)
    return out
