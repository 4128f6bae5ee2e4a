"""TSDAE's word deletion, SimCSE's token cutoff and contrast: what each keeps, and the loss on known inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from warmstart.objectives.sentence import cut_tokens, delete_words, simcse_loss


def test_delete_words_keeps_order_a_word_at_least_and_about_the_ratio():
    rng = np.random.default_rng(0)
    text = " ".join(f"w{i}" for i in range(1000))
    kept = delete_words(text, 0.6, rng).split()
    assert 330 < len(kept) < 470  # ~40% kept
    assert kept == sorted(kept, key=lambda w: int(w[1:]))  # order unchanged
    assert len(delete_words("one two", 0.999, np.random.default_rng(1)).split()) == 1
    assert delete_words("", 0.6, rng) == ""
    assert delete_words("a b c", 0.0, rng) == "a b c"


def test_cut_tokens_keeps_specials_order_and_pads_after():
    ids = torch.tensor([[101, 5, 6, 7, 8, 102, 0], [101, 9, 102, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    special = torch.tensor([0, 101, 102])
    out, out_mask = cut_tokens(ids, mask, special, 0, 0.5, torch.Generator().manual_seed(0))
    for row, m, orig in zip(out, out_mask, ids, strict=True):
        kept = row[m.bool()].tolist()
        assert kept[0] == 101 and kept[-1] == 102  # specials never cut
        body = [t for t in orig.tolist() if t not in (0, 101, 102)]
        assert [t for t in kept[1:-1]] == [t for t in body if t in kept]  # a subsequence, in order
        assert (row[~m.bool()] == 0).all() and m.tolist() == sorted(m.tolist(), reverse=True)
    assert out.shape[1] == int(out_mask.sum(1).max())
    same, same_mask = cut_tokens(ids, mask, special, 0, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(same, ids[:, :6]) and torch.equal(same_mask, mask[:, :6])


@pytest.mark.parametrize("shift, low", [(0.0, True), (1.0, False)])
def test_simcse_loss_is_low_when_views_match_and_high_when_they_do_not(shift, low):
    a = torch.eye(8) * 5
    b = torch.roll(a, int(shift), dims=0)
    out = simcse_loss(a, b, 0.05)
    assert (float(out["loss"]) < 1e-3) == low
    assert float(out["acc"]) == (1.0 if low else 0.0)
    expected = torch.nn.functional.cross_entropy(torch.nn.functional.normalize(a) @
                                                 torch.nn.functional.normalize(b).T / 0.05, torch.arange(8))
    torch.testing.assert_close(out["loss"], expected)
