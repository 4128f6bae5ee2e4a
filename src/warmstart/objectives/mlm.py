"""Masked language modelling (+ NSP): dynamic 80/10/10 masking and the pretraining loss.

Masking follows `transformers.DataCollatorForLanguageModeling` (15% of non-special tokens chosen;
of those 80% -> [MASK], 10% -> a random token, 10% unchanged). It is written here rather than
taken from the collator because it runs on already-packed tensors inside the loop (no per-example
Python), supports whole-word masking on packed blocks, and returns what the sparse head needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def mask_tokens(
    input_ids: torch.Tensor,
    special_ids: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
    word_continuation: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic BERT masking.

    Args:
        input_ids: (B, T) token ids.
        special_ids: (K,) ids never masked ([CLS], [SEP], [PAD], ...).
        word_continuation: optional (V,) bool, True for pieces that continue a word (data/text.word_continuation:
            WordPiece "##", or no SentencePiece "▁" / byte-level "Ġ"): whole words are masked together.
    Returns:
        (masked_ids (B, T), labels (B, T)) with labels = original id at chosen positions, -100 elsewhere.
    """
    maskable = ~torch.isin(input_ids, special_ids)
    if word_continuation is None:
        chosen = torch.rand(input_ids.shape, generator=generator) < probability
    else:
        # One draw per word, shared by its pieces: a word starts at every piece that does not continue one, and
        # after every special token (a byte-level BPE's first word has no "Ġ", yet joins nothing before it).
        starts = ~word_continuation[input_ids]
        starts[:, 1:] |= ~maskable[:, :-1]
        word_index = torch.cumsum(starts.long(), dim=1) - 1
        word_draw = torch.rand(input_ids.shape, generator=generator) < probability
        chosen = torch.gather(word_draw, 1, word_index.clamp(min=0))
    chosen &= maskable
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator)
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    masked = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


def prediction_capacity(num_tokens: int, probability: float) -> int:
    """Rows the sparse head computes for a batch of `num_tokens` tokens: the expected masked count plus 25% and
    64, in steps of 64. Bernoulli masking of B*T = 16k tokens at 15% has a standard deviation of 46 tokens
    (whole words a little more), so a batch overflows it (and gets a shape of its own) about never."""
    return 64 * math.ceil((1.25 * num_tokens * probability + 64) / 64)


def prediction_slots(labels: torch.Tensor, capacity: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The sparse head's inputs, made where the masks are made (on the host, before the batch moves).

    labels: (B, T), the original id where masked, -100 elsewhere.
    Returns (positions (C,), targets (C,)): the flat indices (into B*T) of the masked tokens in row-major order and
    their ids, padded to C = max(`capacity`, the count rounded up to 8) with an unmasked position and target
    -100. Why: selecting the masked rows on the device (`hidden[labels != -100]`) has a data-dependent shape, so
    a GPU waits there for the host; indices made here do not. A fixed `capacity` (`prediction_capacity`) also
    gives a compiled step one shape; without compile it is left at 0: at the ANCHORS shape (4 layers, hidden 256,
    batch 32) its padded rows made an eager CPU step 6% slower than the boolean selection, and without them the
    step is 7% faster (3 alternated runs each, AMX Xeon, 2026-12-04).
    """
    flat = labels.flatten()
    chosen = flat != -100
    where = torch.nonzero(chosen).squeeze(1)
    size = max(capacity, 8 * math.ceil(len(where) / 8))
    unmasked = torch.nonzero(~chosen)
    pad = int(unmasked[0, 0]) if len(unmasked) else 0  # pads read (and ELECTRA writes back) an unmasked token
    positions = torch.full((size,), pad, dtype=torch.long)
    targets = torch.full((size,), -100, dtype=torch.long)
    positions[:len(where)], targets[:len(where)] = where, flat[where]
    return positions, targets


@torch.no_grad()
def top1_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Share of the targets that are not -100 whose logit is the row's largest. logits (M, V), targets (M,).
    Why not `argmax(-1) == targets`: the CPU's bf16 argmax over (600, 8192) took 7.7 ms, a twentieth of an AMX
    pretraining step at the ANCHORS shape; a gather against the row maximum takes 0.7 (AMX Xeon, 2026-12-06).
    A target that ties the maximum counts as a hit, where argmax would pick the first of the tied ids."""
    keep = targets != -100
    picked = logits.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1)
    return ((picked >= logits.amax(-1)) & keep).sum() / keep.sum().clamp(min=1)


def _mlm_metrics(logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """Loss and accuracy over the targets that are not -100, without selecting them (no data-dependent shape).
    logits (M, V), targets (M,)."""
    return {"mlm_loss": F.cross_entropy(logits.float(), targets, ignore_index=-100),
            "mlm_acc": top1_accuracy(logits, targets)}


def _predicted(hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor], batch: dict[str, torch.Tensor]):
    """(logits, targets) of the MLM head: on the slots of `prediction_slots` when the batch has them (sparse),
    else on every position against `labels` (dense). hidden (B, T, H) -> logits (C, V) or (B*T, V)."""
    if "mlm_positions" in batch:
        return head(hidden.flatten(0, 1).index_select(0, batch["mlm_positions"])), batch["mlm_targets"]
    return head(hidden).flatten(0, 1), batch["labels"].flatten()


def mlm_nsp_loss(model, batch: dict[str, torch.Tensor]) -> dict:
    """Loss of a `BertForPreTraining` on a masked batch.

    batch: input_ids (B, T) (masked), optional token_type_ids / attention_mask (B, T) and nsp_labels (B,); the
    masked tokens as `prediction_slots`' mlm_positions / mlm_targets (C,) (sparse: the MLM head, a (H, V)
    projection and the largest matmul of a small model, runs on the ~15% masked positions only; the loss is the
    dense head's on those positions), or as labels (B, T) (dense).
    Returns a dict of scalar tensors: loss, mlm_loss, mlm_acc, and nsp_loss/nsp_acc when NSP labels exist.
    """
    bert_inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in batch}
    hidden, pooled = model.bert(**bert_inputs, return_dict=False)[:2]  # (B, T, H), (B, H)
    out = _mlm_metrics(*_predicted(hidden, model.cls.predictions, batch))
    loss = out["mlm_loss"]
    if "nsp_labels" in batch:
        nsp_logits = model.cls.seq_relationship(pooled)  # (B, 2)
        out["nsp_loss"] = F.cross_entropy(nsp_logits.float(), batch["nsp_labels"])
        out["nsp_acc"] = (nsp_logits.argmax(-1) == batch["nsp_labels"]).float().mean()
        loss = loss + out["nsp_loss"]
    out["loss"] = loss
    return out


def masked_lm_loss(model, head: Callable[[torch.Tensor], torch.Tensor] | None, batch: dict[str, torch.Tensor]) -> dict:
    """MLM loss of any `AutoModelForMaskedLM` (RoBERTa, DeBERTa, DistilBERT, ModernBERT, ...) on a masked batch.

    `head`: the model's MLM head as (M, H) -> (M, V) (models/text.mlm_head), run on the batch's mlm_positions
    when it has them, as in `mlm_nsp_loss`. Without a head, the model's own forward gives the logits (dense:
    the batch has labels). batch: input_ids (B, T) (masked), optional attention_mask (B, T), and
    mlm_positions / mlm_targets (C,) or labels (B, T), -100 where not masked.
    Returns scalar tensors: loss, mlm_loss, mlm_acc.
    """
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask") if k in batch}  # no token types: not every
    if head is not None:                                                            # family has them
        hidden = model.base_model(**inputs)[0]  # (B, T, H)
        out = _mlm_metrics(*_predicted(hidden, head, batch))
    else:
        out = _mlm_metrics(model(**inputs).logits.flatten(0, 1), batch["labels"].flatten())  # (B*T, V)
    return {"loss": out["mlm_loss"], **out}
