"""Config dataclasses of the image commands (`warmstart pretrain|finetune` with an image recipe); loaded, like
the text ones, by `warmstart.config.load_config`."""

from __future__ import annotations

from dataclasses import dataclass, field

from warmstart.config.pretrain import TrainConfig
from warmstart.config.strategies import StrategySections


@dataclass
class AugmentConfig:
    """SimCLR's view distribution (Chen et al., 2020), batched in data/vision.py. Colour jitter's saturation
    and hue, and random greyscale, apply to colour images only."""

    crop_min_scale: float = 0.2  # random resized crop: area fraction in [crop_min_scale, 1]
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    greyscale_p: float = 0.2
    blur_p: float = 0.0  # SimCLR blurs on ImageNet; at 28-32 px a blur wipes out the image


@dataclass
class ImageDataConfig:
    """Image folders (a subfolder per class, or flat), IDX, .npy/.npz, or an HF dataset with an image column."""

    sources: list[str] = field(default_factory=list)
    test_sources: list[str] = field(default_factory=list)  # fine-tuning: the test split
    image_column: str = "image"
    label_column: str = "label"
    split: str = "train"  # for hub datasets
    load_size: int | None = None  # resize (shorter side + centre crop) while loading; needed for mixed sizes
    strict: bool = False  # true: an unreadable image is an error; false: skipped, counted and named
    labels_per_class: int | None = None  # fine-tuning: a seeded, class-balanced subsample of train
    validation_per_class: int = 10  # fine-tuning: held out from train for early stopping


@dataclass
class ImageModelConfig:
    """A small ResNet or ViT built from `transformers` configs (or `init`: any HF ResNet/ViT folder)."""

    init: str | None = None
    backbone: str = "resnet"  # resnet | vit
    image_size: int = 32  # the network's input side: views are cropped/resized to it
    widths: list[int] = field(default_factory=lambda: [64, 128, 256])  # resnet stages
    depths: list[int] = field(default_factory=lambda: [1, 1, 1])
    patch_size: int = 4  # vit
    hidden_size: int = 192
    num_layers: int = 6
    num_heads: int = 3


@dataclass
class ImageObjectiveConfig:
    name: str = "simclr"  # simclr (NT-Xent on two views) | autoencoder (denoising, decoded from pooled features)
    temperature: float = 0.2
    projection_dim: int = 128
    noise_std: float = 0.5  # autoencoder: Gaussian noise on the normalised input
    mask_fraction: float = 0.25  # autoencoder: fraction of 4x4 patches zeroed out
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ImagePretrainConfig:
    output_dir: str = "runs/pretrain-images"
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    objective: ImageObjectiveConfig = field(default_factory=ImageObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class ImageFinetuneTrainConfig(StrategySections):
    strategy: str = "full"  # as text: see strategies.py
    lr: float = 1e-3
    head_lr: float | None = None
    batch_size: int = 64
    max_epochs: int = 100
    max_steps: int | None = None
    patience: int = 5
    eval_every: int | None = None  # steps; default once per epoch
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    augment: bool = True  # light crop + flip on the training images (crop_min_scale 0.6, no colour jitter)
    precision: str = "auto"
    seed: int = 0
    save_model: bool = True
    report_to: str | None = None  # tensorboard (see tracking.py)


@dataclass
class ImageForgettingConfig:
    """kNN accuracy drop and CKA on the probe task: `memory` training images vote for `queries` test images."""

    measure: bool = False
    memory: int = 2000
    queries: int = 1000


@dataclass
class ImageFinetuneConfig:
    output_dir: str = "runs/finetune-images"
    init: str = ""  # an HF image encoder folder, or "scratch"
    architecture: str | None = None  # scratch: copy this folder's architecture (else the model section)
    trust_pickled_weights: bool = False
    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    train: ImageFinetuneTrainConfig = field(default_factory=ImageFinetuneTrainConfig)
    forgetting: ImageForgettingConfig = field(default_factory=ImageForgettingConfig)
