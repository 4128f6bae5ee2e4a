"""Masked language modelling (+ NSP): dynamic 80/10/10 masking and the pretraining loss.

Masking follows `transformers.DataCollatorForLanguageModeling` (15% of non-special tokens chosen;
of those 80% -> [MASK], 10% -> a random token, 10% unchanged). It is written here rather than
taken from the collator because it runs on already-packed tensors inside the loop (no per-example
Python), supports whole-word masking on packed blocks, and returns what the sparse head needs.
"""

from __future__ import annotations

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


def mlm_nsp_loss(model, batch: dict[str, torch.Tensor], labels: torch.Tensor, sparse: bool = True) -> dict:
    """Loss of a `BertForPreTraining` on a masked batch.

    With `sparse`, the MLM head (a (H, V) projection, the largest matmul of a small model) runs only on
    the ~15% masked positions; the loss is identical to the dense head's on those positions.
    Returns a dict of scalar tensors: loss, mlm_loss, mlm_acc, and nsp_loss/nsp_acc when NSP labels exist.
    """
    bert_inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in batch}
    hidden, pooled = model.bert(**bert_inputs, return_dict=False)[:2]  # (B, T, H), (B, H)
    if sparse:
        where = labels != -100
        logits = model.cls.predictions(hidden[where])  # (M, V)
        targets = labels[where]
    else:
        logits = model.cls.predictions(hidden).flatten(0, 1)  # (B*T, V)
        targets = labels.flatten()
    mlm_loss = F.cross_entropy(logits.float(), targets, ignore_index=-100)
    keep = targets != -100
    out = {"mlm_loss": mlm_loss,
           "mlm_acc": (logits.argmax(-1)[keep] == targets[keep]).float().mean()}
    loss = mlm_loss
    if "nsp_labels" in batch:
        nsp_logits = model.cls.seq_relationship(pooled)  # (B, 2)
        out["nsp_loss"] = F.cross_entropy(nsp_logits.float(), batch["nsp_labels"])
        out["nsp_acc"] = (nsp_logits.argmax(-1) == batch["nsp_labels"]).float().mean()
        loss = loss + out["nsp_loss"]
    out["loss"] = loss
    return out


def masked_lm_loss(model, head: Callable[[torch.Tensor], torch.Tensor] | None, batch: dict[str, torch.Tensor],
                   labels: torch.Tensor, sparse: bool = True) -> dict:
    """MLM loss of any `AutoModelForMaskedLM` (RoBERTa, DeBERTa, DistilBERT, ModernBERT, ...) on a masked batch.

    `head`: the model's MLM head as (M, H) -> (M, V) (models/text.mlm_head); with `sparse` it runs on the masked
    positions only, as in `mlm_nsp_loss`. Without a head, or dense, the model's own forward gives the logits.
    batch: input_ids (B, T) (masked), optional attention_mask (B, T); labels (B, T), -100 where not masked.
    Returns scalar tensors: loss, mlm_loss, mlm_acc.
    """
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask") if k in batch}  # no token types: not every
    if sparse and head is not None:                                                 # family has them
        hidden = model.base_model(**inputs)[0]  # (B, T, H)
        where = labels != -100
        logits, targets = head(hidden[where]), labels[where]  # (M, V), (M,)
    else:
        logits, targets = model(**inputs).logits.flatten(0, 1), labels.flatten()  # (B*T, V)
    mlm_loss = F.cross_entropy(logits.float(), targets, ignore_index=-100)
    keep = targets != -100
    return {"loss": mlm_loss, "mlm_loss": mlm_loss,
            "mlm_acc": (logits.argmax(-1)[keep] == targets[keep]).float().mean()}
