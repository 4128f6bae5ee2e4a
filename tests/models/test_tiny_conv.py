"""The dense path for tiny maps computes exactly what nn.Conv2d computes, and changes nothing a checkpoint sees."""

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, ResNetConfig, ResNetModel

from warmstart.models.tiny_conv import TinyMapConv2d, dense_conv2d, tap_matrix, use_tiny_map_convs

# (in channels, out channels, height, width, kernel, stride, padding, bias)
SHAPES = [(8, 6, 2, 2, 3, 1, 1, True), (8, 6, 1, 1, 3, 1, 1, False), (8, 6, 2, 2, 3, 2, 1, False),
          (5, 7, 3, 2, 3, 1, 1, True), (4, 3, 2, 3, 1, 1, 0, True), (4, 3, 3, 3, 3, 1, 0, False),
          (4, 3, 2, 2, 2, 1, 0, True)]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("c,o,h,w,k,s,p,bias", SHAPES)
def test_dense_conv_equals_conv2d_forward_and_backward(c, o, h, w, k, s, p, bias, channels_last):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, c, h, w, dtype=torch.float64, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    weight = torch.randn(o, c, k, k, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(o, dtype=torch.float64, generator=gen, requires_grad=True) if bias else None
    inputs = [x, weight] + ([b] if bias else [])
    expected = F.conv2d(x, weight, b, s, p)
    got = dense_conv2d(x, weight, b, (s, s), (p, p))
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    grad = torch.randn(expected.shape, dtype=torch.float64, generator=gen)
    for a, e in zip(torch.autograd.grad(got, inputs, grad), torch.autograd.grad(expected, inputs, grad), strict=True):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)


def test_on_a_2x2_map_every_output_sees_every_input_through_one_tap():
    taps = tap_matrix(2, 2, (3, 3), (1, 1), (1, 1))  # (9, 4, 4)
    assert torch.equal(taps.sum(0), torch.ones(4, 4))  # the dense map is full: 16 products, not 36
    centre = tap_matrix(1, 1, (3, 3), (1, 1), (1, 1))
    assert centre[4, 0, 0] == 1 and centre.sum() == 1  # a 1x1 map meets only the centre tap


def test_the_taps_where_the_weight_is_are_made_once():
    """Per device and dtype, one cached tensor: a forward on a GPU copies nothing from the host (a plain copy
    from pageable memory would synchronise the stream at every conv)."""
    where = (torch.device("cpu"), torch.float64)
    first = tap_matrix(2, 2, (3, 3), (1, 1), (1, 1), *where)
    assert first is tap_matrix(2, 2, (3, 3), (1, 1), (1, 1), *where)
    assert first.dtype == torch.float64 and torch.equal(first, tap_matrix(2, 2, (3, 3), (1, 1), (1, 1)).double())


def test_larger_maps_take_the_conv2d_path_unchanged():
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 8, 8)
    expected = conv(x)
    conv.__class__ = TinyMapConv2d
    assert torch.equal(conv(x), expected)  # bit-identical: 64 positions > 9 taps, nn.Conv2d ran


def test_swap_keeps_weights_keys_and_outputs_and_the_saved_folder_is_plain(tmp_path):
    torch.manual_seed(0)
    config = ResNetConfig(num_channels=1, embedding_size=8, hidden_sizes=[8, 16, 32], depths=[1, 1, 1],
                          layer_type="basic", downsample_in_first_stage=False)
    model = ResNetModel(config).eval()
    x = torch.randn(3, 1, 32, 32)  # -> 8x8, 4x4, 2x2 maps: only the last stage's 3x3 conv goes dense
    before = {k: v.clone() for k, v in model.state_dict().items()}
    expected = model(pixel_values=x).pooler_output
    swapped = use_tiny_map_convs(model)
    assert swapped == sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    torch.testing.assert_close(model(pixel_values=x).pooler_output, expected, rtol=1e-5, atol=1e-6)
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert all(type(m) is torch.nn.Conv2d for m in reloaded.modules() if isinstance(m, torch.nn.Conv2d))
    torch.testing.assert_close(reloaded(pixel_values=x).pooler_output, expected, rtol=1e-5, atol=1e-6)


def test_grouped_dilated_and_same_padded_convs_are_left_alone():
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, groups=2), torch.nn.Conv2d(4, 4, 3, dilation=2),
                                torch.nn.Conv2d(4, 4, 3, padding="same"), torch.nn.Conv2d(4, 4, 3, padding=1,
                                                                                        padding_mode="reflect"))
    assert use_tiny_map_convs(model) == 0
    assert all(type(m) is torch.nn.Conv2d for m in model)
