"""How much did fine-tuning forget? Measured against the pretrained checkpoint the run started from.

  text    the increase of masked-LM loss on pretraining-corpus text, read by the checkpoint's own MLM head
          (kept aside: the fine-tuned encoder is put under it), with the same fixed masking before and after;
  images  the drop in kNN accuracy of the frozen features on a labelled probe task (the pretraining data's);
  both    representation drift: linear CKA between pretrained and fine-tuned features of the same inputs
          (Kornblith et al., 2019; 1 = the same representation up to rotation and scale).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from warmstart.data.sources import load_documents
from warmstart.engine.runtime import autocast, device, place, to_device
from warmstart.objectives.mlm import mask_tokens


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two representations of the same N inputs. x: (N, D1), y: (N, D2)."""
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    cross = (y.T @ x).norm() ** 2
    return float(cross / ((x.T @ x).norm() * (y.T @ y).norm()))


def sample_texts(sources: list[str], n: int, seed: int) -> list[str]:
    """n segments (lines) drawn from the sources, seeded."""
    segments = [s for doc in load_documents(sources) for s in doc]
    pick = np.random.default_rng(seed).choice(len(segments), min(n, len(segments)), replace=False)
    return [segments[i] for i in sorted(pick)]


def has_mlm_head(folder: str | Path) -> bool:
    from safetensors import safe_open

    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        return False
    with safe_open(str(path), "pt") as f:
        return any(k.startswith("cls.predictions") for k in f.keys())


@torch.no_grad()
def _text_pass(encoder, tokenizer, texts: list[str], max_length: int, bf16: bool, mlm=None, seed: int = 0):
    """Mean-pooled features (N, H) and, with the pretraining model `mlm`, the masked-LM loss of `encoder`'s
    hidden states under `mlm`'s head (fixed masking from `seed`)."""
    gen = torch.Generator().manual_seed(seed)
    special = torch.tensor(tokenizer.all_special_ids)
    feats, loss_sum, count = [], 0.0, 0
    encoder.eval()
    for s in range(0, len(texts), 64):
        enc = tokenizer(texts[s:s + 64], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        ids, attn = enc["input_ids"], enc["attention_mask"]
        with autocast(bf16):
            hidden = encoder(input_ids=to_device(ids), attention_mask=to_device(attn)).last_hidden_state
        mask = attn.unsqueeze(-1).to(device(), hidden.dtype)
        feats.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu())
        if mlm is not None:
            masked, labels = mask_tokens(ids, special, tokenizer.mask_token_id, len(tokenizer), generator=gen)
            with autocast(bf16):
                h = encoder(input_ids=to_device(masked), attention_mask=to_device(attn)).last_hidden_state
                where = to_device(labels) != -100
                logits = mlm.cls.predictions(h[where]).float()
            loss_sum += float(F.cross_entropy(logits, to_device(labels)[where], reduction="sum"))
            count += int(where.sum())
    return torch.cat(feats), (loss_sum / max(1, count) if mlm is not None else None)


def text_forgetting(pretrained: str, finetuned_encoder, tokenizer, texts: list[str], max_length: int,
                    bf16: bool, trust_pickled: bool = False) -> dict:
    """-> mlm_loss_pretrained, mlm_loss_finetuned, mlm_loss_increase (None without an MLM head), cka"""
    from transformers import AutoModel, AutoModelForPreTraining

    from warmstart.models.common import load_pretrained

    before = place(load_pretrained(AutoModel, pretrained, trust_pickled, quiet=True))
    mlm = place(load_pretrained(AutoModelForPreTraining, pretrained, trust_pickled, quiet=True)).eval() \
        if has_mlm_head(pretrained) else None
    f0, l0 = _text_pass(before, tokenizer, texts, max_length, bf16, mlm)
    f1, l1 = _text_pass(finetuned_encoder, tokenizer, texts, max_length, bf16, mlm)
    out = {"cka": round(linear_cka(f0, f1), 4), "forgetting_texts": len(texts)}
    if mlm is not None:
        out.update(mlm_loss_pretrained=round(l0, 4), mlm_loss_finetuned=round(l1, 4), mlm_loss_increase=round(l1 - l0, 4))
    return out


def image_forgetting(features_before, features_after, memory: tuple, queries: tuple) -> dict:
    """kNN accuracy on the probe task (labelled `memory` images vote for `queries`) with the pretrained and
    the fine-tuned features, and CKA on the queries. features_*: images (N, C, H, W) -> (N, D);
    memory/queries: (images, labels)."""
    from warmstart.models.probe import knn_accuracy

    m0, q0 = features_before(memory[0]), features_before(queries[0])
    m1, q1 = features_after(memory[0]), features_after(queries[0])
    k0 = knn_accuracy(m0, memory[1], q0, queries[1])
    k1 = knn_accuracy(m1, memory[1], q1, queries[1])
    return {"knn_pretrained": round(k0, 4), "knn_finetuned": round(k1, 4), "knn_drop": round(k0 - k1, 4),
            "cka": round(linear_cka(q0, q1), 4), "forgetting_images": len(queries[1])}
