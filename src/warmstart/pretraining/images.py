"""Image pretraining: unlabelled images -> batched views -> ResNet/ViT (SimCLR or denoising autoencoder) -> an
HF checkpoint that `transformers.AutoModel.from_pretrained` loads.

The run itself (claim, processes, resume, loop, saving) is the skeleton's (run.py), shared with text; this
module supplies the images, the encoder and its objective head, one step and the kNN monitor.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from warmstart.config import ImagePretrainConfig
from warmstart.data.images import ImageSet, image_batches, load_images
from warmstart.data.vision import apply_view, channel_stats, draw_view, take
from warmstart.engine.checkpoint import save_hf
from warmstart.engine.distributed import Cluster, full_state_dict
from warmstart.engine.loop import LoopState
from warmstart.engine.runtime import compiled, uses_channels_last
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
from warmstart.objectives.autoencoder import Decoder, apply_corruption, draw_corruption, reconstruction_loss
from warmstart.objectives.simclr import ProjectionHead, nt_xent_loss
from warmstart.pretraining.run import run

HEAD_FILE = "objective_head.safetensors"  # projection head / decoder: resumable state, not part of the encoder


def knn_monitor(data: ImageSet, seed: int, bank: int = 5000, queries: int = 1000):
    """A fixed labelled subset for watching kNN accuracy during pretraining (labels are never trained on).
    -> (bank images, bank labels, query images, query labels) or None when the data has no labels."""
    if data.labels is None or len(data) < 20:
        return None
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 12345))
    n_bank = min(bank, len(data) * 4 // 5)
    b, q = order[:n_bank], order[n_bank:n_bank + queries]
    return data.images[b], data.labels[b], data.images[q], data.labels[q]


class ImagePretraining:
    """The image job the skeleton runs (see run.Job)."""

    unit = "images"
    # no early stopping: the monitor's kNN accuracy reads labels, which pretraining must not choose with
    watch = None

    def __init__(self, cfg: ImagePretrainConfig, group: Cluster, resume_dir: Path, resume: bool, bf16: bool):
        tc, oc, mc = cfg.train, cfg.objective, cfg.model
        if tc.compile and group.sharded:
            raise WarmstartError("train.compile is not supported with sharded (fsdp, deepspeed) training; "
                                 "set train.compile=false")
        self.cfg, self.group, self.bf16 = cfg, group, bf16
        self.data = load_images(cfg.data.sources, cfg.data.load_size, cfg.data.strict, cfg.data.image_column,
                                cfg.data.label_column, cfg.data.split)
        self.data_key = images_key(self.data.images)
        self.batches_per_epoch = len(self.data.images) // tc.batch_size  # train.max_epochs counts these
        channels = self.data.images.shape[1]
        known = read_preprocessor(mc.init) if mc.init else None
        self.mean, self.std = (known[1], known[2]) if known else channel_stats(self.data.images)
        self.size = mc.image_size
        self.backbone = build_image_backbone(mc, channels, tc.seed)
        use_tiny_map_convs(self.backbone)  # the last ResNet stage's 2x2 maps as one matmul (same weights and keys)
        dim = image_feature_dim(self.backbone.config)
        self.head = ProjectionHead(dim, dim, oc.projection_dim) if oc.name == "simclr" else \
            Decoder(dim, channels, self.size)
        self.model = torch.nn.ModuleDict({"backbone": self.backbone, "head": self.head})
        if resume:
            self.backbone.load_state_dict(load_file(resume_dir / "model.safetensors"))
            self.head.load_state_dict(load_file(resume_dir / HEAD_FILE))
        # oneDNN's fast CPU convolution layout; FSDP2 shards contiguous weights only
        self.channels_last = uses_channels_last(self.backbone) and not group.sharded
        self.views = torch.Generator().manual_seed(tc.seed)  # augmentation randomness: resumable, same everywhere
        self.norm = {"mean": torch.tensor(self.mean), "std": torch.tensor(self.std)}  # moves with each batch
        # train.compile: the views (a few dozen small elementwise kernels, fused) and the encoder + head, as
        # functions (the modules and their state-dict keys stay plain); fixed shapes: whole batches only
        self.make_views = compiled(self._views, tc.compile_mode) if tc.compile else self._views
        self.project = compiled(self._project, tc.compile_mode) if tc.compile else self._project
        self.monitor = knn_monitor(self.data, tc.seed)
        self.preprocessor = json.dumps(preprocessor_config(self.size, self.mean, self.std), indent=2)
        self.setup_seconds = 0.0

    def describe(self) -> str:
        tc = self.cfg.train
        return (f"{describe(self.backbone)}; {len(self.data):,} images {tuple(self.data.images.shape[1:])} -> "
                f"{self.size} px; {self.cfg.objective.name}, batch {tc.batch_size}x{tc.grad_accum}")

    def objective(self, pixels: torch.Tensor, project: bool = True) -> torch.Tensor:
        """(B, C, S, S) -> (B, P) projections or decoded images when `project`, else (B, D) features."""
        return self.project(pixels) if project else image_features(self.backbone, pixels)

    def _project(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(image_features(self.backbone, pixels))

    def batches(self, state: LoopState):
        for epoch, index, batch in image_batches(self.data.images, self.cfg.train.batch_size, self.cfg.train.seed,
                                                 state.epoch, state.index):
            yield epoch, index, self.prepare(batch)

    def prepare(self, batch: dict) -> dict:
        """The host half of a step, before the batch moves (as text.TextPretraining.prepare: the device then waits
        on nothing the host computes): the random parameters of the global batch's views, drawn alike in every
        process, and this process's rows of them and of the uint8 images; the autoencoder's noise and masks.
        The pixels are made on the device (`_views`). -> `images` uint8 (b, C, H, W), `views` (simclr: two
        data.vision.ViewParams) or `view` + `corruption`, `norm`, and `count`, the global batch's images."""
        oc, size, images = self.cfg.objective, self.size, batch["images"]
        n, channels = images.shape[:2]
        rows = self.group.rows(n) if self.group.world > 1 else slice(None)
        local = images[rows]
        prepared = {"images": local, "norm": self.norm, "count": n}
        if oc.name == "simclr":  # two views, drawn one after the other (the order seeded runs have always had)
            views = [take(draw_view(n, channels, oc.augment, size, self.views), rows) for _ in range(2)]
            return {**prepared, "views": {"1": views[0], "2": views[1]}}
        view = take(draw_view(n, channels, oc.augment, size, self.views), rows)
        return {**prepared, "view": view, "corruption": draw_corruption(
            (len(local), channels, size, size), oc.noise_std, oc.mask_fraction, self.views)}

    def count(self, batch: dict) -> int:
        return batch["count"]

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _views(self, batch: dict) -> dict[str, torch.Tensor]:
        """The device half: pixels from the prepared (and moved) batch. -> `views` (2b, C, S, S) (simclr) or
        `noisy` / `clean` (b, C, S, S)"""
        images, mean, std, size = batch["images"], batch["norm"]["mean"], batch["norm"]["std"], self.size
        if "views" in batch:
            return {"views": self._layout(torch.cat([apply_view(images, v, size, mean, std)
                                                     for v in batch["views"].values()]))}
        clean = apply_view(images, batch["view"], size, mean, std)
        return {"noisy": self._layout(apply_corruption(clean, batch["corruption"])), "clean": clean}

    def step(self, forward, batch: dict, progress: float) -> dict:
        pixels = self.make_views({k: v for k, v in batch.items() if k != "count"})
        if "views" in pixels:
            z1, z2 = forward(pixels["views"]).chunk(2)  # (B, P) each
            return {"loss": nt_xent_loss(z1, z2, self.cfg.objective.temperature)}
        return {"loss": reconstruction_loss(forward(pixels["noisy"]), pixels["clean"])}

    def evaluate(self, forward) -> dict:
        if self.monitor is None or not (self.group.main or self.group.sharded):  # sharded: every process takes part
            return {}
        bank_x, bank_y, query_x, query_y = self.monitor
        def features(images: torch.Tensor) -> torch.Tensor:
            return map_images(lambda x: forward(x, False), self.backbone, images, self.size, self.mean, self.std,
                              self.bf16)

        bank_f, query_f = features(bank_x), features(query_x)
        return {"val_knn_acc": round(knn_accuracy(bank_f, bank_y, query_f, query_y), 4)}

    def gather(self) -> dict:
        return {"backbone": full_state_dict(self.backbone, self.group), "head": full_state_dict(self.head, self.group)}

    def write(self, folder: Path, whole: dict, files: dict[str, str], final: bool) -> None:
        save_hf(folder, self.backbone, None, {**files, PREPROCESSOR_FILE: self.preprocessor},
                state_dict=whole["backbone"])
        if not final:  # resumable state only: the final folder is the encoder alone
            save_file({k: v.contiguous() for k, v in whole["head"].items()}, folder / HEAD_FILE)

    def rng_state(self) -> dict:
        return {"views_rng": self.views.get_state()}

    def load_rng_state(self, saved: dict) -> None:
        self.views.set_state(saved["views_rng"])

    def summary(self, state: LoopState) -> dict:
        return {"epochs": round(state.tokens / len(self.data), 2)}


def images_key(images: torch.Tensor) -> str:
    """Content hash of the training images (uint8): --resume refuses other data."""
    import hashlib

    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:24]


def run_image_pretrain(cfg: ImagePretrainConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Pretrain an image encoder; write the HF checkpoint to `cfg.output_dir`. Returns that folder."""
    inputs = {"model.init": cfg.model.init, **{f"data.sources[{i}]": s for i, s in enumerate(cfg.data.sources)}}
    return run(cfg, ImagePretraining, inputs, resume, overwrite)
