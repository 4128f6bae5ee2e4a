"""Adapting a sentence encoder without labels: the noise of TSDAE and SimCSE, and SimCSE's contrast.

TSDAE (Wang, Reimers & Gurevych, 2021) encodes a sentence with words deleted and decodes the whole sentence from
that one embedding; its loss is sentence-transformers' `DenoisingAutoEncoderLoss` (models/sentence.py), the
noise is here. SimCSE (Gao, Yao & Chen, 2021) pulls two views of a sentence together against the rest of the
batch; dropout alone leaves a sentence encoder such as MiniLM nothing to learn (its loss reached 0 within 20
steps in the measurement behind issue 21), so each view also loses a share of its tokens (token cutoff, Shen et al., 2020).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def delete_words(text: str, ratio: float, rng: np.random.Generator) -> str:
    """TSDAE's noise: each whitespace word deleted with probability `ratio`, at least one kept (as
    sentence-transformers' `DenoisingAutoEncoderDataset.delete`, without its NLTK tokenizer)."""
    words = text.split()
    if not words:
        return text
    keep = rng.random(len(words)) >= ratio
    if not keep.any():
        keep[rng.integers(len(words))] = True
    return " ".join(w for w, k in zip(words, keep, strict=True) if k)


def cut_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special: torch.Tensor, pad_id: int,
               ratio: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Token cutoff: each real, non-special token dropped with probability `ratio`, the rest moved left (order
    kept), `pad_id` after. input_ids, attention_mask: (B, T) -> the same, trailing all-padding columns cut."""
    real = attention_mask.bool()
    drop = (torch.rand(input_ids.shape, generator=generator) < ratio) & real & ~torch.isin(input_ids, special)
    keep = real & ~drop
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept tokens first, in order
    ids = torch.where(torch.gather(keep, 1, order), torch.gather(input_ids, 1, order), pad_id)
    mask = torch.gather(keep, 1, order).long()
    width = int(mask.sum(1).max())
    return ids[:, :width], mask[:, :width]


def simcse_loss(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.05) -> dict:
    """SimCSE's in-batch contrast: row i of `a` should match row i of `b` among all rows of `b`.
    a, b: (B, H) sentence embeddings. Cross-entropy over cosine similarities / temperature (sentence-transformers'
    MultipleNegativesRankingLoss with scale 1/temperature). -> loss, acc (share of rows matched first)."""
    logits = F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T / temperature  # (B, B)
    target = torch.arange(len(a), device=a.device)
    return {"loss": F.cross_entropy(logits, target), "acc": (logits.argmax(1) == target).float().mean()}
