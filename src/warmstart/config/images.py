"""Config dataclasses of the image commands (`warmstart pretrain|finetune` with an image recipe); loaded, like
the text ones, by `warmstart.config.load_config`."""

from __future__ import annotations

from dataclasses import dataclass

from warmstart.config.finetune import FinetuneTrainConfig
from warmstart.config.pretrain import TrainConfig
from warmstart.config.schema import knob

IMAGE_OBJECTIVES = ("simclr", "autoencoder")


@dataclass
class AugmentConfig:
    """SimCLR's view distribution (Chen et al., 2020), batched in data/vision.py. Colour jitter's saturation
    and hue, and random greyscale, apply to colour images only."""

    crop_min_scale: float = knob(0.2, "random resized crop: area fraction in [crop_min_scale, 1]", gt=0, le=1)
    flip_p: float = knob(0.5, "probability of a horizontal flip", ge=0, le=1)
    jitter_p: float = knob(0.8, "probability of colour jitter", ge=0, le=1)
    brightness: float = knob(0.4, "colour jitter: brightness strength", ge=0)
    contrast: float = knob(0.4, "colour jitter: contrast strength", ge=0)
    saturation: float = knob(0.4, "colour jitter: saturation strength (colour images)", ge=0)
    hue: float = knob(0.1, "colour jitter: hue shift (colour images)", ge=0, le=0.5)
    greyscale_p: float = knob(0.2, "probability of greyscale (colour images)", ge=0, le=1)
    blur_p: float = knob(0.0, "probability of a Gaussian blur (at 28-32 px a blur wipes out the image)", ge=0, le=1)


@dataclass
class ImageDataConfig:
    """Image folders (a subfolder per class, or flat), IDX, .npy/.npz, or an HF dataset with an image column."""

    sources: list[str] = knob(help="image folders, IDX files, .npy/.npz, HF dataset folders or hub ids", factory=list)
    test_sources: list[str] = knob(help="fine-tuning: the test images", factory=list)
    image_column: str = knob("image", "the image column of HF datasets")
    label_column: str = knob("label", "the label column of HF datasets")
    split: str = knob("train", "the split of hub datasets")
    load_size: int | None = knob(None, "resize (shorter side + centre crop) while loading; needed for mixed sizes",
                                 ge=1)
    strict: bool = knob(False, "true: an unreadable image is an error; false: skipped, counted and named")
    labels: int | None = knob(None, "fine-tuning: a seeded, class-balanced sample of this many training images "
                                    "in all (as text's data.labels)", ge=1)
    labels_per_class: int | None = knob(None, "deprecated alias: data.labels = labels_per_class x classes", ge=1)
    validation_per_class: int | None = knob(None, "fine-tuning: an explicit dev set of this many images per class "
                                                  "beyond the labels (default: choose inside them)", ge=1)


    def check(self) -> None:
        from warmstart.errors import WarmstartError

        if self.labels is not None and self.labels_per_class is not None:
            raise WarmstartError("data.labels and data.labels_per_class both set; give data.labels (the total) only")


@dataclass
class ImageModelConfig:
    """A small ResNet or ViT built from `transformers` configs (or `init`: any HF ResNet/ViT folder)."""

    init: str | None = knob(None, "continue from this HF ResNet / ViT folder")
    backbone: str = knob("resnet", "the encoder family", choices=("resnet", "vit"))
    image_size: int = knob(32, "the network's input side: views are cropped / resized to it", ge=8)
    widths: list[int] = knob(help="resnet: stage widths", factory=lambda: [64, 128, 256], ge=1)
    depths: list[int] = knob(help="resnet: blocks per stage", factory=lambda: [1, 1, 1], ge=1)
    patch_size: int = knob(4, "vit: patch side", ge=1)
    hidden_size: int = knob(192, "vit: hidden width", ge=8)
    num_layers: int = knob(6, "vit: transformer layers", ge=1)
    num_heads: int = knob(3, "vit: attention heads (must divide hidden_size)", ge=1)

    def check(self) -> None:
        from warmstart.errors import WarmstartError

        if self.backbone == "resnet" and (not self.widths or len(self.widths) != len(self.depths)):
            raise WarmstartError(f"model.widths={self.widths} and model.depths={self.depths}: give one width and "
                                 "one depth per ResNet stage")
        if self.backbone == "vit" and self.hidden_size % self.num_heads:
            raise WarmstartError(f"model.num_heads={self.num_heads} does not divide model.hidden_size="
                                 f"{self.hidden_size}")
        if self.backbone == "vit" and self.image_size % self.patch_size:
            raise WarmstartError(f"model.image_size={self.image_size} is not a multiple of model.patch_size="
                                 f"{self.patch_size}")


@dataclass
class ImageObjectiveConfig:
    name: str = knob("simclr", "simclr (NT-Xent on two views) | autoencoder (denoising, decoded from pooled "
                               "features)", choices=IMAGE_OBJECTIVES)
    temperature: float = knob(0.2, "simclr: NT-Xent temperature", gt=0)
    projection_dim: int = knob(128, "simclr: projection head output", ge=1)
    noise_std: float = knob(0.5, "autoencoder: Gaussian noise on the normalised input", ge=0)
    mask_fraction: float = knob(0.25, "autoencoder: fraction of 4x4 patches zeroed out", ge=0, lt=1)
    augment: AugmentConfig = knob(help="the views", factory=AugmentConfig)


@dataclass
class ImagePretrainConfig:
    output_dir: str = knob("runs/pretrain-images", "the run folder (owned by this run)")
    data: ImageDataConfig = knob(help="the unlabelled images", factory=ImageDataConfig)
    model: ImageModelConfig = knob(help="the encoder", factory=ImageModelConfig)
    objective: ImageObjectiveConfig = knob(help="the pretraining objective", factory=ImageObjectiveConfig)
    train: TrainConfig = knob(help="the training loop", factory=TrainConfig)


@dataclass
class ImageTrainConfig(FinetuneTrainConfig):
    """Image fine-tuning knobs: the shared ones (with image defaults, see ImageFinetuneConfig) and augmentation."""

    augment: bool = knob(True, "light crop + flip on the training images (crop_min_scale 0.6, no colour jitter)")


def _image_train_defaults() -> ImageTrainConfig:
    # a fresh head over conv features learns at a higher rate, over more epochs of few images, than text
    return ImageTrainConfig(lr=1e-3, batch_size=64, max_epochs=100, patience=5)


@dataclass
class ImageForgettingConfig:
    """kNN accuracy drop and CKA on the probe task: `memory` training images vote for `queries` test images."""

    measure: bool = knob(False, "measure forgetting after fine-tuning")
    memory: int = knob(2000, "training images that vote", ge=1)
    queries: int = knob(1000, "test images voted on", ge=1)


@dataclass
class ImageFinetuneConfig:
    output_dir: str = knob("runs/finetune-images", "the run folder (published whole at the end; owned by this run)")
    task: str = knob("image_classification", "image_classification")
    init: str = knob("", "an HF image encoder folder, or 'scratch'")
    architecture: str | None = knob(None, "scratch: copy this folder's architecture (else the model section)")
    trust_pickled_weights: bool = knob(False, "allow an `init` folder with pickled (.bin) weights only")
    model: ImageModelConfig = knob(help="scratch: the encoder's size", factory=ImageModelConfig)
    data: ImageDataConfig = knob(help="the labelled images", factory=ImageDataConfig)
    train: ImageTrainConfig = knob(help="the fine-tuning loop and strategy", factory=_image_train_defaults)
    forgetting: ImageForgettingConfig = knob(help="forgetting measures (off by default)",
                                             factory=ImageForgettingConfig)


ImageFinetuneTrainConfig = ImageTrainConfig  # the earlier name
