import torch

from warmstart.config import AugmentConfig
from warmstart.data.vision import (
    augment,
    channel_stats,
    eval_transform,
    gaussian_blur,
    greyscale,
    resized_crop,
    simclr_views,
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
