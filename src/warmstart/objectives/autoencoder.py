"""A denoising autoencoder on the image encoder: corrupt the input, decode the clean image from the pooled
features.

Why this and not MAE: it trains the same ResNet that SimCLR trains, so the two objectives are compared on one
backbone; and it decodes from the pooled vector (the features a probe or head later reads), so the
representation that is evaluated is the one that had to carry the image. MAE needs a ViT and, by its
paper, hundreds of epochs before its features pay off, which a CPU budget of minutes cannot give.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from warmstart.engine.runtime import to_device


class Decoder(nn.Module):
    """(B, D) features -> (B, C, S, S) image: a linear map to a 4x4 grid, then transposed convolutions."""

    def __init__(self, feature_dim: int, channels: int, image_size: int, width: int = 128):
        super().__init__()
        self.image_size = image_size
        self.width = width
        self.project = nn.Linear(feature_dim, width * 16)
        layers, side, w = [], 4, width
        while side < image_size:
            layers += [nn.ConvTranspose2d(w, max(w // 2, 32), 4, stride=2, padding=1),
                       nn.BatchNorm2d(max(w // 2, 32)), nn.ReLU()]
            w, side = max(w // 2, 32), side * 2
        layers.append(nn.Conv2d(w, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.project(features).view(-1, self.width, 4, 4)
        x = self.net(F.relu(x))
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return x


def draw_corruption(shape: tuple[int, ...], noise_std: float, mask_fraction: float, gen: torch.Generator,
                    patch: int = 4) -> dict[str, torch.Tensor]:
    """The random half of `corrupt`, drawn on the host (the device then waits on nothing): `noise` (B, C, H, W)
    already scaled, and `keep` (B, 1, H/patch, W/patch), 1 for a kept patch, when patches are masked."""
    b, c, h, w = shape
    drawn = {"noise": noise_std * torch.randn(shape, generator=gen)}
    if mask_fraction > 0:
        drawn["keep"] = (torch.rand(b, 1, -(-h // patch), -(-w // patch), generator=gen) >= mask_fraction).float()
    return drawn


def apply_corruption(x: torch.Tensor, drawn: dict[str, torch.Tensor], patch: int = 4) -> torch.Tensor:
    """x + noise, with the masked patches zeroed; `drawn` on x's device. (B, C, H, W) -> same"""
    h, w = x.shape[-2:]
    noisy = x + drawn["noise"].to(x.dtype)
    if "keep" in drawn:
        keep = drawn["keep"].to(x.dtype).repeat_interleave(patch, 2).repeat_interleave(patch, 3)[:, :, :h, :w]
        noisy = noisy * keep
    return noisy


def corrupt(x: torch.Tensor, noise_std: float, mask_fraction: float, gen: torch.Generator,
            patch: int = 4) -> torch.Tensor:
    """Gaussian noise plus zeroed `patch` x `patch` squares on a `mask_fraction` of them. (B, C, H, W) -> same."""
    drawn = draw_corruption(tuple(x.shape), noise_std, mask_fraction, gen, patch)
    return apply_corruption(x, to_device(drawn, non_blocking=True, to=x.device), patch)  # no wait for a GPU


def reconstruction_loss(decoded: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Mean squared error in normalised pixel units. (B, C, S, S) x 2 -> scalar"""
    return F.mse_loss(decoded.float(), clean.float())
