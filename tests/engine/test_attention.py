"""The attention backend: plain attention equals SDPA's, models switch to it and save as standard folders, the
timed choice is made once per shape and leaves the run's random stream alone."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, BertConfig, BertForPreTraining, DebertaV2Config, DebertaV2Model

from warmstart.engine import attention
from warmstart.engine.attention import NAME, plain_attention, use_attention
from warmstart.engine.runtime import place
from warmstart.errors import WarmstartError


def tiny_bert(**kw) -> BertForPreTraining:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **kw)
    return place(BertForPreTraining._from_config(cfg, attn_implementation="sdpa"))


@pytest.fixture(autouse=True)
def fresh_timings():
    attention.reset_timings()
    yield
    attention.reset_timings()


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("scaling", [None, 0.3])
def test_plain_attention_equals_sdpa(masked, scaling):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, None, :] if masked else None
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scaling)
    torch.testing.assert_close(plain_attention(q, k, v, mask, 0.0, scaling), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("plain_wins", [True, False])
def test_a_switched_model_computes_what_sdpa_computes(monkeypatch, plain_wins):
    """Forward and gradients of a padded batch, whichever kernel the timing picks."""
    monkeypatch.setattr(attention, "_timed_choice", lambda *a, **k: plain_wins)
    used = []
    real_plain = attention.plain_attention
    monkeypatch.setattr(attention, "plain_attention", lambda *a, **k: used.append(1) or real_plain(*a, **k))
    ids = torch.randint(5, 50, (3, 7))
    mask = torch.ones_like(ids)
    mask[0, 4:] = 0
    outputs = {}
    for backend in ("sdpa", "auto"):
        model = tiny_bert().train()
        assert use_attention(model, backend) == ("sdpa" if backend == "sdpa" else NAME)
        out = model(input_ids=ids, attention_mask=mask).prediction_logits
        out.pow(2).mean().backward()
        outputs[backend] = (out.detach(), model.bert.encoder.layer[0].attention.self.query.weight.grad)
    torch.testing.assert_close(outputs["auto"][0], outputs["sdpa"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(outputs["auto"][1], outputs["sdpa"][1], atol=1e-5, rtol=1e-5)
    assert bool(used) == plain_wins


def test_the_choice_is_timed_once_per_shape_and_keeps_the_random_stream(monkeypatch):
    calls = []
    real = attention._timed_choice
    monkeypatch.setattr(attention, "_timed_choice", lambda *a, **k: calls.append(a[0][0].shape) or real(*a, **k))
    model = tiny_bert()
    use_attention(model)
    for length in (7, 7, 9, 20):
        torch.manual_seed(1)
        model(input_ids=torch.randint(5, 50, (2, length)))
        after = torch.rand(3)
        torch.manual_seed(1)
        torch.randint(5, 50, (2, length))
        assert torch.equal(after, torch.rand(3)), "the timing drew from the run's random stream"
    assert [s[2] for s in calls] == [7, 20]  # two layers, lengths up to 16 and up to 32: one timing each
    with torch.no_grad():
        model(input_ids=torch.randint(5, 50, (2, 7)))
    assert len(calls) == 3  # inference times forward alone: a shape of its own


def test_switched_folders_load_without_warmstart(tmp_path):
    model = tiny_bert()
    use_attention(model)
    model.save_pretrained(tmp_path)
    assert NAME not in json.loads((tmp_path / "config.json").read_text(encoding="utf-8")).values()
    assert AutoModel.from_pretrained(tmp_path).config._attn_implementation != NAME


def test_modes_and_the_models_left_alone():
    wrapper = torch.nn.ModuleDict({"a": tiny_bert(), "b": tiny_bert()})
    assert use_attention(wrapper, "eager") == "eager"
    assert {m.config._attn_implementation for m in wrapper.values()} == {"eager"}
    assert use_attention(wrapper) is None  # eager was the user's choice: nothing left to switch
    fresh = torch.nn.ModuleDict({"a": tiny_bert(), "b": tiny_bert()})
    assert use_attention(fresh) == NAME and {m.config._attn_implementation for m in fresh.values()} == {NAME}
    assert use_attention(fresh, "sdpa") == "sdpa"
    deberta = DebertaV2Model(DebertaV2Config(vocab_size=50, hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=4, intermediate_size=64))
    before = deberta.config._attn_implementation
    assert use_attention(deberta) is None and deberta.config._attn_implementation == before
    assert use_attention(torch.nn.Linear(2, 2)) is None
    with pytest.raises(WarmstartError, match="attention 'flash'"):
        use_attention(tiny_bert(), "flash")


def test_a_resumable_state_keeps_the_timed_choices(tmp_path, monkeypatch):
    """Saved with the RNGs and restored by a resume: the resumed run computes with the kernels it started with,
    whatever a new timing would say."""
    from warmstart.engine.checkpoint import rng_state, set_rng_state

    monkeypatch.setattr(attention, "_timed_choice", lambda *a, **k: True)
    model = tiny_bert()
    use_attention(model)
    model(input_ids=torch.randint(5, 50, (2, 7))).prediction_logits.sum().backward()
    torch.save({"rng": rng_state()}, tmp_path / "state.pt")
    saved = attention.timed_choices()
    assert saved and all(row[-1] is True for row in saved)
    attention.reset_timings()
    set_rng_state(torch.load(tmp_path / "state.pt", weights_only=True)["rng"])
    assert attention.timed_choices() == saved
    monkeypatch.setattr(attention, "_timed_choice", lambda *a, **k: pytest.fail("timed again after a resume"))
    model(input_ids=torch.randint(5, 50, (2, 7))).prediction_logits.sum().backward()
