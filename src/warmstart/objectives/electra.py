"""ELECTRA replaced-token detection (Clark et al., 2020): tensors in, scalar loss out.

A small generator (an MLM) fills the masked positions with samples; the discriminator labels every
token as original or replaced. The discriminator learns from all tokens, not only the 15% masked
ones, and must keep each token's identity to judge whether it fits its context, so its features stay
lexical early in training, where an MLM of the same budget collapses to token frequencies.
The sample is drawn without gradient, so the generator never receives the discriminator's gradient;
only the shared embeddings see both losses, as in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def electra_loss(
    discriminator,
    generator,
    input_ids: torch.Tensor,
    masked_ids: torch.Tensor,
    labels: torch.Tensor,
    rtd_weight: float = 50.0,
    sampler: torch.Generator | None = None,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Generator MLM loss + `rtd_weight` x discriminator loss.

    Args:
        discriminator: `ElectraForPreTraining`; generator: `ElectraForMaskedLM` (embeddings shared).
        input_ids: (B, T) original tokens; masked_ids: (B, T) generator input; labels: (B, T), -100 where
            not masked.
    Returns: loss, mlm_loss/mlm_acc (generator), rtd_loss/rtd_acc (discriminator), replaced (fraction), and
        `is_replaced` (B, T), the discriminator's targets.
    """
    extra = {k: v for k, v in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids))
             if v is not None}
    where = labels != -100
    hidden = generator.electra(masked_ids, **extra).last_hidden_state  # (B, T, Hg)
    gen_logits = generator.generator_lm_head(generator.generator_predictions(hidden[where]))  # (M, V)
    targets = labels[where]
    mlm_loss = F.cross_entropy(gen_logits.float(), targets)
    with torch.no_grad():
        probs = F.softmax(gen_logits.float(), dim=-1)
        sampled = torch.multinomial(probs.cpu(), 1, generator=sampler).squeeze(-1).to(input_ids.device)  # (M,)
    corrupted = input_ids.clone()
    corrupted[where] = sampled
    is_replaced = corrupted != input_ids  # a sample equal to the original counts as original
    disc_logits = discriminator(corrupted, **extra).logits  # (B, T)
    valid = attention_mask.bool() if attention_mask is not None else torch.ones_like(is_replaced)
    rtd_loss = F.binary_cross_entropy_with_logits(disc_logits[valid].float(), is_replaced[valid].float())
    return {
        "loss": mlm_loss + rtd_weight * rtd_loss,
        "mlm_loss": mlm_loss,
        "mlm_acc": (gen_logits.argmax(-1) == targets).float().mean(),
        "rtd_loss": rtd_loss,
        "rtd_acc": ((disc_logits[valid] > 0) == is_replaced[valid]).float().mean(),
        "replaced": is_replaced[valid].float().mean(),
        "is_replaced": is_replaced,
    }
