"""Batched image augmentation: SimCLR views, denoising corruption, and the evaluation transform.

Every transform works on a whole batch (B, C, H, W) at once with per-image random parameters drawn
from an explicit `torch.Generator`, so views are reproducible under a seed and part of the resumable
state. Written by hand because torchvision cannot be imported beside this machine's torch build, and
because batching the augmentation (one `grid_sample` for crop + flip + resize of the whole batch) is
what makes SimCLR fast on a CPU: per-image transforms in a DataLoader cost as much as the model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from warmstart.config import AugmentConfig

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale
LUMA = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _coin(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """(n,) bool, True with probability p."""
    return torch.rand(n, generator=gen) < p


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in [0, 1]."""
    return images.float().div_(255.0)


def resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float], ratio: tuple[float, float],
                 flip_p: float, gen: torch.Generator) -> torch.Tensor:
    """Random resized crop + horizontal flip in one bilinear `grid_sample`. (B, C, H, W) -> (B, C, size, size).

    Crop area ~ U(scale) of the image, aspect ratio log-uniform in `ratio`; sides longer than the image
    are clipped to it (torchvision re-draws up to 10 times instead; the difference is rare at scale < 1).
    """
    b = x.shape[0]
    area = _uniform(b, *scale, gen)
    log_ratio = _uniform(b, math.log(ratio[0]), math.log(ratio[1]), gen)
    aspect = torch.exp(log_ratio)
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the image side
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = w / 2 + (1 - w) * torch.rand(b, generator=gen)
    cy = h / 2 + (1 - h) * torch.rand(b, generator=gen)
    flip = torch.where(_coin(b, flip_p, gen), -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, 2 * cx - 1  # normalised coordinates in [-1, 1]
    theta[:, 1, 1], theta[:, 1, 2] = h, 2 * cy - 1
    grid = F.affine_grid(theta.to(x.dtype), [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def greyscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma."""
    return (x * torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)


def colour_jitter(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, then (colour images only) saturation and hue, on a random `cfg.jitter_p`
    of the batch. Fixed order (torchvision shuffles it per image; the distributions are the same)."""
    b, c = x.shape[:2]
    apply = _coin(b, cfg.jitter_p, gen).view(b, 1, 1, 1)

    def factor(strength: float) -> torch.Tensor:
        f = _uniform(b, max(0.0, 1 - strength), 1 + strength, gen).view(b, 1, 1, 1)
        return torch.where(apply, f, torch.ones_like(f))

    x = (x * factor(cfg.brightness)).clamp_(0, 1)
    grey = x.mean((1, 2, 3), keepdim=True) if c == 1 else greyscale(x).mean((2, 3), keepdim=True)
    x = (grey + factor(cfg.contrast) * (x - grey)).clamp_(0, 1)
    if c == 3:
        luma = greyscale(x)
        x = (luma + factor(cfg.saturation) * (x - luma)).clamp_(0, 1)
        # hue: a rotation of the chroma plane in YIQ space (a linear stand-in for the HSV hue shift)
        angle = _uniform(b, -cfg.hue, cfg.hue, gen) * 2 * math.pi * apply.view(b).float()
        yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=x.dtype)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.zeros(b, 3, 3, dtype=x.dtype)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
        m = torch.linalg.inv(yiq) @ rot @ yiq  # (B, 3, 3)
        x = torch.einsum("bij,bjhw->bihw", m, x).clamp_(0, 1)
    return x


def random_greyscale(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    if x.shape[1] != 3 or p <= 0:
        return x
    pick = _coin(x.shape[0], p, gen).view(-1, 1, 1, 1)
    return torch.where(pick, greyscale(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, p: float, sigma: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """Separable Gaussian blur with a per-image sigma on a random `p` of the batch (kernel ~10% of the side)."""
    b, c, h, w = x.shape
    apply = _coin(b, p, gen)
    if p <= 0 or not apply.any():
        return x
    k = max(3, int(0.1 * min(h, w)) // 2 * 2 + 1)
    s = _uniform(b, *sigma, gen)
    t = torch.arange(k, dtype=x.dtype) - k // 2
    kernel = torch.exp(-t.view(1, -1) ** 2 / (2 * s.view(-1, 1) ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # (B, k)
    kernel = kernel.repeat_interleave(c, 0)  # one kernel per (image, channel), as grouped conv weights
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (k // 2, k // 2, 0, 0), mode="reflect"), kernel.view(b * c, 1, 1, k), groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, k // 2, k // 2), mode="reflect"), kernel.view(b * c, 1, k, 1), groups=b * c)
    return torch.where(apply.view(b, 1, 1, 1), y.view(b, c, h, w), x)


def normalise(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    c = x.shape[1]
    return (x - torch.tensor(mean[:c], dtype=x.dtype).view(1, c, 1, 1)) / torch.tensor(std[:c], dtype=x.dtype).view(1, c, 1, 1)


def augment(images: torch.Tensor, cfg: AugmentConfig, size: int, mean: list[float], std: list[float],
            gen: torch.Generator) -> torch.Tensor:
    """One SimCLR view of each image. uint8 (B, C, H, W) -> normalised float (B, C, size, size)."""
    x = resized_crop(to_unit(images), size, (cfg.crop_min_scale, 1.0), (3 / 4, 4 / 3), cfg.flip_p, gen)
    x = colour_jitter(x, cfg, gen)
    x = random_greyscale(x, cfg.greyscale_p, gen)
    x = gaussian_blur(x, cfg.blur_p, (0.1, 2.0), gen)
    return normalise(x, mean, std)


def simclr_views(images: torch.Tensor, cfg: AugmentConfig, size: int, mean: list[float], std: list[float],
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent views of each image. -> 2 x (B, C, size, size)"""
    return augment(images, cfg, size, mean, std, gen), augment(images, cfg, size, mean, std, gen)


def eval_transform(images: torch.Tensor, size: int, mean: list[float], std: list[float]) -> torch.Tensor:
    """The deterministic transform for features and evaluation: resize, normalise. -> (B, C, size, size)"""
    x = to_unit(images)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return normalise(x, mean, std)


def channel_stats(images: torch.Tensor, max_images: int = 10_000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images in [0, 1] units (from at most `max_images`)."""
    x = to_unit(images[:max_images])
    return x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).clamp(min=1e-3).tolist()
