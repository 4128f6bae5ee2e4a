import pytest
import torch

from warmstart.config import AugmentConfig
from warmstart.data.vision import (
    apply_view,
    augment,
    channel_stats,
    draw_view,
    eval_transform,
    gaussian_blur,
    greyscale,
    resized_crop,
    simclr_views,
    take,
)


def _images(c: int = 3, n: int = 6, side: int = 28) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, side, side), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_views_keep_shape_and_dtype_and_are_reproducible_under_a_seed():
    cfg = AugmentConfig(blur_p=0.5)
    for channels in (1, 3):
        x = _images(channels)
        a1, a2 = simclr_views(x, cfg, 32, [0.5] * 3, [0.25] * 3, torch.Generator().manual_seed(3))
        b1, b2 = simclr_views(x, cfg, 32, [0.5] * 3, [0.25] * 3, torch.Generator().manual_seed(3))
        assert a1.shape == (6, channels, 32, 32) and a1.dtype == torch.float32
        assert torch.equal(a1, b1) and torch.equal(a2, b2)
        assert not torch.equal(a1, a2)  # two different views
        c1, _ = simclr_views(x, cfg, 32, [0.5] * 3, [0.25] * 3, torch.Generator().manual_seed(4))
        assert not torch.equal(a1, c1)


def test_full_crop_without_flip_is_the_resized_image():
    x = torch.rand(2, 1, 16, 16)
    out = resized_crop(x, 16, (1.0, 1.0), (1.0, 1.0), 0.0, torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-5)
    flipped = resized_crop(x, 16, (1.0, 1.0), (1.0, 1.0), 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(flipped, x.flip(-1), atol=1e-5)


def test_augmented_pixels_stay_in_the_normalised_range():
    x = _images(3).float() / 255
    out = augment(_images(3), AugmentConfig(), 28, [0.0] * 3, [1.0] * 3, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1 and x.shape == out.shape


def test_greyscale_and_blur_preserve_constant_images():
    x = torch.full((2, 3, 20, 20), 0.5)
    assert torch.allclose(greyscale(x), torch.full((2, 1, 20, 20), 0.5))
    assert torch.allclose(gaussian_blur(x, 1.0, (1.0, 2.0), torch.Generator().manual_seed(0)), x, atol=1e-6)


def test_eval_transform_is_deterministic_and_normalises():
    x = _images(1)
    mean, std = channel_stats(x)
    out = eval_transform(x, 28, mean, std)
    assert torch.equal(out, eval_transform(x, 28, mean, std))
    assert abs(float(out.mean())) < 1e-4 and abs(float(out.std()) - 1) < 1e-2
    assert eval_transform(x, 32, mean, std).shape == (6, 1, 32, 32)


@pytest.mark.parametrize("channels, golden", [
    # sums of the views (seed 3, blur_p 0.5) as the single-function augmentation made them before it was split
    # into a host and a device half: the split draws the same numbers in the same order, so seeded runs and
    # resumed ones keep their views
    (1, (-839.742, -92.185, 3181.005, 493.002)),
    (3, (-1716.149, 2232.965, 8499.32, 1604.629)),
])
def test_views_are_the_ones_seeded_runs_always_had(channels, golden):
    v1, v2 = simclr_views(_images(channels), AugmentConfig(blur_p=0.5), 32, [0.5] * 3, [0.25] * 3,
                          torch.Generator().manual_seed(3))
    got = [float(t) for t in (v1.sum(), v2.sum(), v1.abs().sum(), v2[:, :, :4].abs().sum())]
    assert got == pytest.approx(golden, rel=1e-4)


@pytest.mark.parametrize("channels, cfg", [
    (1, AugmentConfig()),
    (3, AugmentConfig(blur_p=1.0)),  # every part: crop, flip, jitter with hue, greyscale, blur
    (3, AugmentConfig(jitter_p=0.0, greyscale_p=0.0)),
])
def test_a_process_augments_its_rows_as_the_whole_batch_would(channels, cfg):
    """Every process draws the global batch's parameters and keeps its rows: its views are the whole batch's."""
    x = _images(channels, n=8)
    params = draw_view(8, channels, cfg, 24, torch.Generator().manual_seed(5))
    whole = apply_view(x, params, 24, [0.5] * 3, [0.25] * 3)
    rows = slice(3, 8)
    assert torch.equal(apply_view(x[rows], take(params, rows), 24, [0.5] * 3, [0.25] * 3), whole[rows])


def test_the_host_half_holds_numbers_not_pixels():
    """What moves to the device besides the uint8 images: a few numbers an image (no (B, C, H, W) float)."""
    params = draw_view(64, 3, AugmentConfig(blur_p=1.0), 96, torch.Generator().manual_seed(0))
    assert all(v.shape[0] == 64 for v in params.values())
    assert sum(v[0].numel() for v in params.values()) < 40  # theta 6, jitter 3 + hue 9, grey 1, blur 1 + k 9


def test_views_are_float32_under_autocast():
    """The pixels are made in float32 whatever autocast the step runs under (the model's input is cast there)."""
    x, cfg = _images(3), AugmentConfig(blur_p=1.0)
    params = draw_view(6, 3, cfg, 32, torch.Generator().manual_seed(1))
    plain = apply_view(x, params, 32, [0.5] * 3, [0.25] * 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = apply_view(x, params, 32, [0.5] * 3, [0.25] * 3)
    assert under.dtype == torch.float32 and torch.equal(under, plain)
