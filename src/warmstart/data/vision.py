"""Batched image augmentation: SimCLR views, denoising corruption, and the evaluation transform.

Every transform works on a whole batch (B, C, H, W) at once with per-image random parameters drawn
from an explicit `torch.Generator`, so views are reproducible under a seed and part of the resumable
state. Written by hand because torchvision cannot be imported beside this machine's torch build, and
because batching the augmentation (one `grid_sample` for crop + flip + resize of the whole batch) is
what makes SimCLR fast on a CPU: per-image transforms in a DataLoader cost as much as the model.

A view has two halves (issue 23's GPU fast path): `draw_view` draws its random parameters on the host (a
few numbers an image: the crop's affine matrix, jitter factors, the hue rotation, blur kernels), and
`apply_view` turns uint8 images into the view wherever they are, reading nothing back. So the pixels move
to a GPU as uint8 (one copy for both views, a quarter of float32's bytes) and are augmented there, where
the host spent ~240 ms a batch of 256 colour images at 96 px (2 cores); and a process of a multi-process
run augments only its own rows of the global batch, from parameters every process draws alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from warmstart.config import AugmentConfig
from warmstart.engine.runtime import to_device

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale
LUMA = (0.299, 0.587, 0.114)
# RGB -> YIQ; hue turns the chroma (I, Q) plane
YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))
BLUR_SIGMA = (0.1, 2.0)

ViewParams = dict[str, torch.Tensor]  # one view's random parameters; dim 0 indexes the images


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _coin(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """(n,) bool, True with probability p."""
    return torch.rand(n, generator=gen) < p


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in [0, 1]."""
    return images.float().div_(255.0)


# ---- the host half: random parameters -------------------------------------------------------------------

def crop_theta(b: int, scale: tuple[float, float], ratio: tuple[float, float], flip_p: float,
               gen: torch.Generator) -> torch.Tensor:
    """Random resized crop + horizontal flip as affine matrices for `F.affine_grid`. -> (B, 2, 3)

    Crop area ~ U(scale) of the image, aspect ratio log-uniform in `ratio`; sides longer than the image
    are clipped to it (torchvision re-draws up to 10 times instead; the difference is rare at scale < 1).
    """
    area = _uniform(b, *scale, gen)
    aspect = torch.exp(_uniform(b, math.log(ratio[0]), math.log(ratio[1]), gen))
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the image side
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = w / 2 + (1 - w) * torch.rand(b, generator=gen)
    cy = h / 2 + (1 - h) * torch.rand(b, generator=gen)
    flip = torch.where(_coin(b, flip_p, gen), -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, 2 * cx - 1  # normalised coordinates in [-1, 1]
    theta[:, 1, 1], theta[:, 1, 2] = h, 2 * cy - 1
    return theta


def jitter_params(b: int, channels: int, cfg: AugmentConfig, gen: torch.Generator) -> ViewParams:
    """Colour jitter on a random `cfg.jitter_p` of the batch: brightness, contrast (B,) factors, and for colour
    images saturation (B,) and the hue rotation (B, 3, 3), the identity where jitter is not applied. Fixed
    order (torchvision shuffles it per image; the distributions are the same)."""
    apply = _coin(b, cfg.jitter_p, gen)

    def factor(strength: float) -> torch.Tensor:
        return torch.where(apply, _uniform(b, max(0.0, 1 - strength), 1 + strength, gen), torch.ones(b))

    params = {"brightness": factor(cfg.brightness), "contrast": factor(cfg.contrast)}
    if channels == 3:
        params["saturation"] = factor(cfg.saturation)
        # hue: a rotation of the chroma plane in YIQ space (a linear stand-in for the HSV hue shift)
        angle = _uniform(b, -cfg.hue, cfg.hue, gen) * 2 * math.pi * apply.float()
        yiq = torch.tensor(YIQ)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.zeros(b, 3, 3)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
        params["hue"] = torch.linalg.inv(yiq) @ rot @ yiq  # (B, 3, 3)
    return params


def blur_params(b: int, size: int, p: float, sigma: tuple[float, float], gen: torch.Generator) -> ViewParams:
    """Gaussian blur with a per-image sigma on a random `p` of the batch (kernel ~10% of the side `size`).
    -> `blur` (B,) bool and `blur_kernel` (B, k), or nothing when no image of the batch is blurred."""
    apply = _coin(b, p, gen)
    if p <= 0 or not apply.any():
        return {}
    k = max(3, int(0.1 * size) // 2 * 2 + 1)
    s = _uniform(b, *sigma, gen)
    t = torch.arange(k, dtype=torch.float32) - k // 2
    kernel = torch.exp(-t.view(1, -1) ** 2 / (2 * s.view(-1, 1) ** 2))
    return {"blur": apply, "blur_kernel": kernel / kernel.sum(1, keepdim=True)}


def draw_view(b: int, channels: int, cfg: AugmentConfig, size: int, gen: torch.Generator) -> ViewParams:
    """The random half of one SimCLR view of `b` images (crop, flip, jitter, greyscale, blur), drawn on the
    host from `gen`; `apply_view` makes the pixels. Rows are images: `take(params, rows)` keeps some."""
    params = {"theta": crop_theta(b, (cfg.crop_min_scale, 1.0), (3 / 4, 4 / 3), cfg.flip_p, gen),
              **jitter_params(b, channels, cfg, gen)}
    if channels == 3 and cfg.greyscale_p > 0:
        params["grey"] = _coin(b, cfg.greyscale_p, gen)
    return {**params, **blur_params(b, size, cfg.blur_p, BLUR_SIGMA, gen)}


def take(params: ViewParams, rows) -> ViewParams:
    """The parameters of some images (a slice or an index tensor)."""
    return {k: v[rows] for k, v in params.items()}


# ---- the device half: pixels ----------------------------------------------------------------------------

def greyscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma (weights as Python numbers: no host tensor meets a GPU batch)."""
    return LUMA[0] * x[:, 0:1] + LUMA[1] * x[:, 1:2] + LUMA[2] * x[:, 2:3]


def _crop(x: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Crop + flip + resize in one bilinear `grid_sample`. (B, C, H, W) -> (B, C, size, size)"""
    grid = F.affine_grid(theta.to(x.dtype), [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _jitter(x: torch.Tensor, params: ViewParams) -> torch.Tensor:
    def f(name: str) -> torch.Tensor:
        return params[name].to(x.dtype).view(-1, 1, 1, 1)

    x = (x * f("brightness")).clamp_(0, 1)
    grey = x.mean((1, 2, 3), keepdim=True) if x.shape[1] == 1 else greyscale(x).mean((2, 3), keepdim=True)
    x = (grey + f("contrast") * (x - grey)).clamp_(0, 1)
    if "saturation" in params:
        luma = greyscale(x)
        x = (luma + f("saturation") * (x - luma)).clamp_(0, 1)
        x = torch.einsum("bij,bjhw->bihw", params["hue"].to(x.dtype), x).clamp_(0, 1)
    return x


def _blur(x: torch.Tensor, apply: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable blur, one (k,) kernel an image, as grouped convolutions. (B, C, H, W) -> same"""
    b, c, h, w = x.shape
    k = kernel.shape[1]
    kernel = kernel.to(x.dtype).repeat_interleave(c, 0)  # one kernel per (image, channel)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (k // 2, k // 2, 0, 0), mode="reflect"), kernel.view(b * c, 1, 1, k), groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, k // 2, k // 2), mode="reflect"), kernel.view(b * c, 1, k, 1), groups=b * c)
    return torch.where(apply.view(b, 1, 1, 1), y.view(b, c, h, w), x)


def normalise(x: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
              ) -> torch.Tensor:
    """(x - mean) / std per channel. On a GPU pass `mean` / `std` as tensors already there: a list would be
    copied over and wait for the queue."""
    c = x.shape[1]
    mean = torch.as_tensor(mean[:c], dtype=x.dtype, device=x.device).view(1, c, 1, 1)
    return (x - mean) / torch.as_tensor(std[:c], dtype=x.dtype, device=x.device).view(1, c, 1, 1)


def apply_view(images: torch.Tensor, params: ViewParams, size: int, mean: Sequence[float] | torch.Tensor,
               std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """The pixel half of a view, on the images' device with `params` there too (`draw_view`), in float32
    whatever autocast says. uint8 (B, C, H, W) -> normalised float (B, C, size, size)"""
    with torch.autocast(images.device.type, enabled=False):
        x = _jitter(_crop(to_unit(images), params["theta"], size), params)
        if "grey" in params:
            x = torch.where(params["grey"].view(-1, 1, 1, 1), greyscale(x).expand_as(x), x)
        if "blur" in params:
            x = _blur(x, params["blur"], params["blur_kernel"])
        return normalise(x, mean, std)


# ---- both halves at once: parameters drawn here, moved to the images' device without a wait --------

def augment(images: torch.Tensor, cfg: AugmentConfig, size: int, mean: Sequence[float] | torch.Tensor,
            std: Sequence[float] | torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One SimCLR view of each image. uint8 (B, C, H, W) -> normalised float (B, C, size, size)"""
    params = draw_view(images.shape[0], images.shape[1], cfg, size, gen)
    # pinned and asynchronous: a plain .to() from pageable memory would make the host wait for the GPU's queue
    return apply_view(images, to_device(params, non_blocking=True, to=images.device), size, mean, std)


def simclr_views(images: torch.Tensor, cfg: AugmentConfig, size: int, mean: list[float], std: list[float],
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent views of each image. -> 2 x (B, C, size, size)"""
    return augment(images, cfg, size, mean, std, gen), augment(images, cfg, size, mean, std, gen)


def resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float], ratio: tuple[float, float],
                 flip_p: float, gen: torch.Generator) -> torch.Tensor:
    """A random resized crop + flip of float images. (B, C, H, W) -> (B, C, size, size)"""
    return _crop(x, to_device(crop_theta(x.shape[0], scale, ratio, flip_p, gen), non_blocking=True, to=x.device), size)


def gaussian_blur(x: torch.Tensor, p: float, sigma: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """A Gaussian blur on a random `p` of float images (B, C, H, W)."""
    params = blur_params(x.shape[0], min(x.shape[-2:]), p, sigma, gen)
    params = to_device(params, non_blocking=True, to=x.device) if params else params
    return _blur(x, params["blur"], params["blur_kernel"]) if params else x


def eval_transform(images: torch.Tensor, size: int, mean: Sequence[float] | torch.Tensor,
                   std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """The deterministic transform for features and evaluation: resize, normalise. -> (B, C, size, size)"""
    x = to_unit(images)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return normalise(x, mean, std)


def channel_stats(images: torch.Tensor, max_images: int = 10_000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images in [0, 1] units (from at most `max_images`)."""
    x = to_unit(images[:max_images])
    return x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).clamp(min=1e-3).tolist()
