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

from warmstart.objectives.mlm import top1_accuracy


@torch.no_grad()
def sample_tokens(logits: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """One token per row of `logits` (M, V) from its softmax, by inverse CDF of the uniforms `draws` (M,)."""
    cdf = F.softmax(logits.float(), dim=-1).cumsum(-1)  # (M, V)
    u = draws.to(cdf.device, torch.float32).unsqueeze(-1) * cdf[:, -1:]
    # right=True: the first token whose cumulative probability exceeds u, so zero-probability tokens never win
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp(max=cdf.shape[-1] - 1)


def electra_loss(
    discriminator,
    generator,
    input_ids: torch.Tensor,
    masked_ids: torch.Tensor,
    positions: torch.Tensor,
    targets: torch.Tensor,
    rtd_weight: float = 50.0,
    draws: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Generator MLM loss + `rtd_weight` x discriminator loss.

    Args:
        discriminator: `ElectraForPreTraining`; generator: `ElectraForMaskedLM` (embeddings shared).
        input_ids: (B, T) original tokens; masked_ids: (B, T) generator input.
        positions, targets: (C,) the masked tokens as objectives/mlm.prediction_slots gives them (flat indices
            in row-major order, padded with an unmasked position and target -100): fixed shapes, no selection
            with a data-dependent shape on the device.
        draws: (C,) uniforms in [0, 1), one per slot, turned into the generator's samples by inverse CDF; drawn
            by the caller so that processes holding different rows of one global batch sample exactly what one
            process would (random when None).
    Returns: loss, mlm_loss/mlm_acc (generator), rtd_loss/rtd_acc (discriminator), replaced (fraction), and
        `is_replaced` (B, T), the discriminator's targets.
    """
    extra = {k: v for k, v in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids))
             if v is not None}
    hidden = generator.electra(masked_ids, **extra).last_hidden_state  # (B, T, Hg)
    picked = hidden.flatten(0, 1).index_select(0, positions)  # (C, Hg)
    gen_logits = generator.generator_lm_head(generator.generator_predictions(picked))  # (C, V)
    keep = targets != -100
    mlm_loss = F.cross_entropy(gen_logits.float(), targets, ignore_index=-100)
    flat = input_ids.flatten()
    with torch.no_grad():
        u = torch.rand(len(gen_logits), device=gen_logits.device) if draws is None else draws
        sampled = sample_tokens(gen_logits, u).to(input_ids.device)  # (C,)
        sampled = torch.where(keep, sampled, flat.index_select(0, positions))  # padding writes back the original
    corrupted = flat.index_put((positions,), sampled).view_as(input_ids)
    is_replaced = corrupted != input_ids  # a sample equal to the original counts as original
    disc_logits = discriminator(corrupted, **extra).logits  # (B, T)
    valid = attention_mask.float() if attention_mask is not None else torch.ones_like(disc_logits, dtype=torch.float)
    real = valid.sum().clamp(min=1)
    per_token = F.binary_cross_entropy_with_logits(disc_logits.float(), is_replaced.float(), reduction="none")
    rtd_loss = (per_token * valid).sum() / real
    return {
        "loss": mlm_loss + rtd_weight * rtd_loss,
        "mlm_loss": mlm_loss,
        "mlm_acc": top1_accuracy(gen_logits, targets),
        "rtd_loss": rtd_loss,
        "rtd_acc": (((disc_logits > 0) == is_replaced).float() * valid).sum() / real,
        "replaced": (is_replaced.float() * valid).sum() / real,
        "is_replaced": is_replaced,
    }
