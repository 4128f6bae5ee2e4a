"""Convolutions on feature maps no larger than their kernel, computed as one dense matmul.

A small-image ResNet (32 px input, HF's 4x-downsampling stem) ends on 2x2 maps, where its widest 3x3 convs
spend most of a training step. On such a map every output position sees every input position, so the conv is
one linear map from (positions x in-channels) to (positions x out-channels): 16 of the 36 multiply-adds per
channel pair that a 3x3 conv over the zero-padded 2x2 map costs, and one large matmul instead of oneDNN's
small-spatial kernels. Measured on this 2-core CPU (fp32, batch 512, forward + backward, median of 5): a
512->512 conv on channels-last 2x2 maps 301 ms -> 57 ms (oneDNN takes about 175 ms on contiguous ones);
SimCLR's whole ResNet [64,128,512] step 485 -> 820 images/s. No library
does this (oneDNN and inductor keep the padded taps), hence this file.

`use_tiny_map_convs(model)` swaps the class of each eligible `nn.Conv2d` in place: same weight, same
state-dict keys, so checkpoints stay plain HF folders; larger maps go through `nn.Conv2d` unchanged.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn


@lru_cache(maxsize=64)
def tap_matrix(h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
               device: torch.device | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """One-hot (kh*kw, out positions, in positions): which kernel tap joins input position q to output p.
    Cached per `device` and `dtype` too: moved to a GPU at each forward, this host tensor was a plain copy from
    pageable memory, which synchronises the stream (the host waits for the whole queue), once per conv."""
    if device is not None:
        return tap_matrix(h, w, kernel, stride, padding).to(device, dtype)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    taps = torch.zeros(kh * kw, oh * ow, h * w)
    for py in range(oh):
        for px in range(ow):
            for qy in range(h):
                for qx in range(w):
                    dy, dx = qy - py * sh + ph, qx - px * sw + pw
                    if 0 <= dy < kh and 0 <= dx < kw:
                        taps[dy * kw + dx, py * ow + px, qy * w + qx] = 1.0
    return taps


def dense_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int],
                 padding: tuple[int, int]) -> torch.Tensor:
    """F.conv2d (groups 1, dilation 1, zero padding) as one matmul. (N, C, H, W) -> (N, O, H', W')"""
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    taps = tap_matrix(h, w, (kh, kw), stride, padding, weight.device, weight.dtype)
    k, p, q = taps.shape
    oh, ow = (h + 2 * padding[0] - kh) // stride[0] + 1, (w + 2 * padding[1] - kw) // stride[1] + 1
    # dense[(p, o), (q, c)] = weight[o, c, tap(p, q)]: position-major, so a channels-last x needs no copy
    dense = (weight.reshape(o * c, k) @ taps.reshape(k, p * q)).view(o, c, p, q)
    dense = dense.permute(2, 0, 3, 1).reshape(p * o, q * c)
    x_rows = x.permute(0, 2, 3, 1).reshape(n, q * c)
    out = F.linear(x_rows, dense, None if bias is None else bias.repeat(p))
    return out.view(n, oh, ow, o).permute(0, 3, 1, 2)  # a channels-last NCHW view


class TinyMapConv2d(nn.Conv2d):
    """nn.Conv2d that takes the dense path when the input map has no more positions than the kernel has taps
    (there it costs fewer multiply-adds than the padded conv)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        # compiled on a GPU: the plain conv (dynamo traces through the cache, and a tap matrix built in the
        # graph would put host work and a copy into every replayed step)
        if x.dim() != 4 or x.shape[-2] * x.shape[-1] > kh * kw or \
                (x.device.type != "cpu" and torch.compiler.is_compiling()):
            return super().forward(x)
        return dense_conv2d(x, self.weight, self.bias, self.stride, self.padding)


def eligible(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.groups == 1 and conv.dilation == (1, 1)
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str))


def use_tiny_map_convs(model: nn.Module) -> int:
    """Give every eligible Conv2d of `model` (groups 1, dilation 1, numeric zero padding) the dense path for
    tiny maps, in place. -> how many"""
    swapped = 0
    for module in model.modules():
        if eligible(module):
            module.__class__ = TinyMapConv2d  # adds no state: parameters, buffers and keys stay as they are
            swapped += 1
    return swapped
