"""Image encoders: small ResNet / ViT builders, the features a classifier head sees, and the encoder's I/O
(its preprocessor config, batched evaluation-transform passes), shared by pretraining, fine-tuning, rank and
predict."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from warmstart.config import ImageModelConfig
from warmstart.data.vision import eval_transform
from warmstart.engine.runtime import autocast, require_placed, to_device, uses_channels_last
from warmstart.errors import WarmstartError
from warmstart.models.common import load_pretrained


def image_backbone_config(cfg: ImageModelConfig, channels: int):
    """A `transformers` ResNet (basic blocks) or ViT config for small images."""
    from transformers import ResNetConfig, ViTConfig

    if cfg.backbone == "resnet":
        # HF's ResNet stem is a 7x7 stride-2 conv + max-pool (4x down): a 32 px input gives 8x8 maps
        return ResNetConfig(num_channels=channels, embedding_size=cfg.widths[0], hidden_sizes=list(cfg.widths),
                            depths=list(cfg.depths), layer_type="basic", downsample_in_first_stage=False)
    if cfg.backbone == "vit":
        if cfg.image_size % cfg.patch_size:
            raise WarmstartError(f"model.image_size={cfg.image_size} is not a multiple of model.patch_size={cfg.patch_size}")
        return ViTConfig(image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=channels,
                         hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                         num_attention_heads=cfg.num_heads, intermediate_size=4 * cfg.hidden_size,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    raise WarmstartError(f"model.backbone: unknown backbone '{cfg.backbone}'; use resnet or vit")


def build_image_backbone(cfg: ImageModelConfig, channels: int, seed: int, trust_pickled: bool = False):
    """A fresh ResNetModel / ViTModel (no pooler: features are the [CLS] state), or `cfg.init` loaded."""
    from transformers import AutoModel, ViTModel

    torch.manual_seed(seed)
    if cfg.init:
        model = load_pretrained(AutoModel, cfg.init, trust_pickled)
        if model.config.model_type not in ("resnet", "vit"):
            raise WarmstartError(f"{cfg.init}: a {model.config.model_type} model; image encoders are resnet or vit")
        return model
    config = image_backbone_config(cfg, channels)
    if config.model_type == "vit":
        return ViTModel(config, add_pooling_layer=False)
    return AutoModel.from_config(config)


def image_features(base_model, pixel_values: torch.Tensor) -> torch.Tensor:
    """What a classifier head sees, as HF's *ForImageClassification computes it. (B, C, H, W) -> (B, D)"""
    out = base_model(pixel_values=pixel_values)
    if base_model.config.model_type == "resnet":
        return out.pooler_output.flatten(1)  # global average pool
    return out.last_hidden_state[:, 0]  # vit: [CLS] after the final LayerNorm


def image_feature_dim(config) -> int:
    return config.hidden_sizes[-1] if config.model_type == "resnet" else config.hidden_size


PREPROCESSOR_FILE = "preprocessor_config.json"


def preprocessor_config(size: int, mean: list[float], std: list[float]) -> dict:
    """The HF image-processor file, so the checkpoint says how to feed it (resize, rescale, normalise)."""
    return {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": size, "width": size},
            "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": mean, "image_std": std}


def read_preprocessor(folder: str | Path) -> tuple[int, list[float], list[float]] | None:
    """(size, mean, std) from a checkpoint's preprocessor_config.json, or None when it has none."""
    path = Path(folder) / PREPROCESSOR_FILE
    if not path.is_file():
        return None
    p = json.loads(path.read_text(encoding="utf-8"))
    size = p.get("size", {})
    side = size.get("height") or size.get("shortest_edge") if isinstance(size, dict) else size
    return int(side), list(p.get("image_mean", [0.5])), list(p.get("image_std", [0.5]))


@torch.no_grad()
def map_images(fn, model, images: torch.Tensor, size: int, mean, std, bf16: bool, batch_size: int = 512,
               progress=None) -> torch.Tensor:
    """`fn(pixel_values) -> (B, K)` over uint8 images with the evaluation transform, in eval mode, on the
    model's device and memory format (channels-last for a ResNet). (N, C, H, W) -> (N, K) float32 on CPU.
    One home for feature extraction, fine-tuning predictions and `warmstart predict`, so they agree exactly."""
    require_placed(model, "map_images")
    was_training = model.training
    model.eval()
    channels_last = uses_channels_last(model)
    out = []
    for s in range(0, len(images), batch_size):
        x = to_device(eval_transform(images[s:s + batch_size], size, mean, std))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(bf16):
            out.append(fn(x).float().cpu())
        if progress is not None:
            progress(len(x))
    model.train(was_training)
    return torch.cat(out)


def encode_images(backbone, images: torch.Tensor, size: int, mean, std, bf16: bool) -> torch.Tensor:
    """Frozen features of uint8 images. (N, C, H, W) -> (N, D) float32"""
    return map_images(lambda x: image_features(backbone, x), backbone, images, size, mean, std, bf16)
