"""engine/dropout.py: torch's dropout in distribution (share kept, scale, gradient), from the seeded generator,
and what `place` gives a model on a CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from warmstart.engine.dropout import LANES, FastDropout, dropout, use_fast_dropout, use_torch_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_each_element_is_kept_with_probability_one_minus_p_and_scaled_so_the_mean_holds(p, dtype):
    torch.manual_seed(0)
    x = torch.ones(400_003, dtype=dtype)  # not a multiple of 4: the last word's spare lanes are cut off
    y = dropout(x, p)
    kept = y != 0
    scale = LANES / (LANES - round(p * LANES))
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.equal(y[kept], torch.full_like(y[kept], scale))  # kept ones scaled, the rest exactly 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.004
    for lane in range(4):  # each 16-bit lane of a word is a fair draw (a 63-bit range would bias the top one)
        assert abs(kept[lane::4].float().mean().item() - (1 - p)) < 0.006, lane
    assert abs(y.float().mean().item() - 1.0) < 0.02


def test_the_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(1)
    x = torch.randn(64, 40, requires_grad=True)
    y = dropout(x, 0.25)
    y.sum().backward()
    assert torch.allclose(x.grad, (y != 0).float() / 0.75)


def test_masks_follow_the_seeded_generator_as_torchs_do():
    x = torch.ones(1000)
    torch.manual_seed(3)
    a, b = dropout(x, 0.3), dropout(x, 0.3)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.3), a) and not torch.equal(a, b)  # reproducible, and the stream advances
    state = torch.get_rng_state()  # a resumed run restores the generator: the same next mask
    c = dropout(x, 0.3)
    torch.set_rng_state(state)
    assert torch.equal(dropout(x, 0.3), c)


@pytest.mark.parametrize("p, training, expected", [
    (0.0, True, "same"), (0.5, False, "same"), (1.0, True, "zeros")])
def test_edge_cases_match_torch(p, training, expected):
    x = torch.randn(7, 3)
    y = dropout(x, p, training)
    assert torch.equal(y, x if expected == "same" else torch.zeros_like(x))
    assert torch.equal(y, F.dropout(x, p, training))
    assert dropout(torch.empty(0, 4), 0.5).shape == (0, 4)
    with pytest.raises(ValueError, match="between 0 and 1"):
        dropout(x, 1.5)


def test_place_gives_a_models_dropout_modules_the_fast_kernel_on_a_cpu(monkeypatch):
    from transformers import BertConfig, BertModel

    from warmstart.engine.runtime import DEVICE_ENV, place

    monkeypatch.setenv(DEVICE_ENV, "cpu")
    model = BertModel(BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                                 vocab_size=100))
    before = {k: v.clone() for k, v in model.state_dict().items()}

    class Own(torch.nn.Dropout):  # a user's subclass keeps its own forward
        pass

    model.extra = Own(0.2)
    place(model)
    kinds = [type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert kinds.count(FastDropout) == 1 + 3 * 2 and Own in kinds  # embeddings; attention, its output, the FFN
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert use_fast_dropout(model) == 0  # once is enough: already swapped
    calls = []
    monkeypatch.setattr("warmstart.engine.dropout.dropout", lambda *a: calls.append(1) or dropout(*a))
    model.train()(input_ids=torch.randint(0, 100, (2, 8)))
    assert len(calls) == 1 + 2 * 2  # SDPA applies the attention dropout inside its kernel
    use_torch_dropout(model)  # a timing of code that runs torch's kernel (the setfit library's) undoes it
    assert FastDropout not in {type(m) for m in model.modules()} and Own in {type(m) for m in model.modules()}
