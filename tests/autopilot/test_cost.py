"""autopilot/cost.py: what auto expects a fit to cost, from lengths and timed steps."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from warmstart.autopilot import cost


@pytest.mark.parametrize("lengths, expected", [
    ([], 64),                          # nothing measured: the floor
    ([10] * 50, 64),                   # short texts: the floor
    ([100] * 95 + [900] * 5, 104),    # a long tail past the 90th percentile does not pad every batch
    ([1000] * 10, 256),                # long texts: the cap
    ([70, 71, 72, 73, 74, 75, 76, 77, 78, 79], 80),  # rounded up to a multiple of 8
])
def test_choose_max_length(lengths, expected):
    assert cost.choose_max_length(lengths) == expected


@pytest.mark.parametrize("lengths, batch, low, high", [
    ([50] * 100, 32, 50, 50),             # all alike: that length
    ([20] * 99 + [200], 32, 62, 78),      # one long text of 100: in 27.5% of batches of 32, so 20 + 0.275 x 180 = 69.5
    ([20] * 99 + [200], 1, 20, 23),       # batches of one rarely meet it
    ([20] * 50 + [200] * 50, 32, 200, 200),  # half long: every batch of 32 holds one
])
def test_padded_width_is_the_expected_longest_of_a_batch(lengths, batch, low, high):
    """A step pads to its batch's longest row; auto times its step at the expected one, not at three draws'."""
    width = cost.padded_width(lengths, batch, seed=0)
    assert low <= width <= high
    assert width == cost.padded_width(lengths, batch, seed=0)  # seeded


def test_setfit_fit_seconds_grow_with_labels():
    one = cost.fit_seconds("setfit", 100, 0.5)
    assert one == pytest.approx(cost.STARTUP_S + cost.SETFIT_STEPS_PER_LABEL * 100 * 0.5)
    assert cost.fit_seconds("setfit", 200, 0.5) - cost.STARTUP_S == pytest.approx(2 * (one - cost.STARTUP_S))


def test_lp_ft_costs_its_fixed_budget_in_texts(monkeypatch):
    """LP-FT's fit is train.max_epochs passes over the n labels (nothing held out by default), counted against
    SetFit's 32 texts a step; a budget in steps (train.max_steps) counts batches instead."""
    import warmstart.config as config

    epochs = config.FinetuneTrainConfig().max_epochs
    assert cost.fit_seconds("lp_ft", 64, 0.5) == pytest.approx(cost.STARTUP_S + epochs * 64 / 32 * 0.5)
    assert cost.fit_seconds("lp_ft", 64, 0.5) < cost.fit_seconds("setfit", 64, 0.5)  # a quarter of SetFit's texts
    # auto's full fine-tuning (sets of labels): its own 10 epochs
    assert cost.fit_seconds("full", 64, 0.5) == pytest.approx(cost.STARTUP_S + cost.FULL_EPOCHS * 64 / 32 * 0.5)
    monkeypatch.setattr(config, "FinetuneTrainConfig", lambda: SimpleNamespace(max_steps=10, batch_size=16,
                                                                               max_epochs=20))
    assert cost.fit_seconds("lp_ft", 64, 0.5) == pytest.approx(cost.STARTUP_S + 10 * 16 / 32 * 0.5)


@pytest.mark.parametrize("config, expected", [({"max_seq_length": 256}, 256), ({"max_seq_length": 128}, 128),
                                              (None, 512)])
def test_library_steps_are_timed_as_the_library_trains(tmp_path, monkeypatch, config, expected):
    """fp32 at the body's own max_seq_length, whatever precision and length auto chose for its own fits, and
    torch's dropout kernel (the library's model is not placed by warmstart: engine/dropout.py), its pair batch's
    two columns encoded apart (sentence-transformers pads each to its own longest)."""
    if config is not None:
        with open(tmp_path / "sentence_bert_config.json", "w", encoding="utf-8") as f:
            json.dump(config, f)
    calls = []
    monkeypatch.setattr(cost, "step_seconds", lambda folder, texts, max_length, bf16, seed, library, sides:
                        calls.append((max_length, bf16, library, sides)) or 1.0)
    assert cost.library_step_seconds(str(tmp_path), ["a b"], 0) == 1.0
    assert calls == [(expected, False, True, 2)]


@pytest.mark.parametrize("sides", [1, 2])
def test_a_timed_step_encodes_its_sides_apart_at_their_expected_width(pretrained, monkeypatch, sides):
    """warmstart's SetFit encodes its 32 texts in one pass; the library's pair batch is two passes of 16, each
    padded to the expected longest of 16 (narrower than of 32 where lengths vary). Every pass, the warm-up's
    and the timed steps', has that shape, and the step goes through the optimizer fits use (fused AdamW)."""
    import pandas as pd
    import transformers

    from warmstart.data.text import load_tokenizer
    from warmstart.engine import loop
    from warmstart.tasks.classification import encode

    texts = [" ".join(["word"] * n) for n in [2] * 40 + [20] * 4]
    lengths = [len(i) for i in encode(load_tokenizer(str(pretrained)), pd.DataFrame({"text": texts}), 64)[0]]
    shapes, optimizers = [], []
    forward = transformers.BertModel.forward
    monkeypatch.setattr(transformers.BertModel, "forward",
                        lambda self, input_ids=None, **k: shapes.append(tuple(input_ids.shape)) or forward(
                            self, input_ids=input_ids, **k))
    make = loop.make_optimizer
    monkeypatch.setattr(loop, "make_optimizer", lambda *a, **k: optimizers.append(make(*a, **k)) or optimizers[-1])
    seconds = cost.step_seconds(str(pretrained), texts, 64, False, 0, batch=32, repeats=2, sides=sides)
    assert seconds > 0
    width = cost.padded_width(lengths, 32 // sides, 0)
    assert shapes == [(32 // sides, width)] * (3 * sides)  # a warm-up and 2 timed steps
    assert len(optimizers) == 1
    if sides == 2:
        assert width < cost.padded_width(lengths, 32, 0)  # the point of timing the sides apart
