import torch

from warmstart.config import ModelConfig
from warmstart.models.text import build_electra
from warmstart.objectives.electra import electra_loss, sample_tokens
from warmstart.objectives.mlm import mask_tokens, prediction_slots


class _Tok:
    """The two things build_electra reads from a tokenizer."""
    pad_token_id = 0

    def __len__(self) -> int:
        return 300


def _models():
    return build_electra(ModelConfig(num_layers=2, hidden_size=64, num_heads=2, intermediate_size=128), _Tok(),
                         seed=0, generator_size=0.5)


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 300, (8, 24), generator=g)
    masked, labels = mask_tokens(ids, torch.arange(5), 4, 300, 0.3, g)
    return ids, masked, labels


def _loss(disc, gen, ids, masked, labels, draws=None):
    """electra_loss on slots padded past the masked count (padding must change nothing)."""
    positions, targets = prediction_slots(labels, 64 * (1 + int((labels != -100).sum()) // 64) + 64)
    if draws is not None:
        draws = torch.cat([draws, torch.full((len(positions) - len(draws),), 0.5)])
    return electra_loss(disc, gen, ids, masked, positions, targets, draws=draws)


def test_embeddings_are_shared_and_generator_is_smaller():
    disc, gen = _models()
    assert gen.electra.embeddings is disc.electra.embeddings
    assert gen.generator_lm_head.weight is disc.electra.embeddings.word_embeddings.weight
    assert gen.config.hidden_size < disc.config.hidden_size


def test_discriminator_labels_are_exactly_where_the_sample_differs():
    disc, gen = _models()
    ids, masked, labels = _batch()
    where = labels != -100
    draws = torch.rand(int(where.sum()), generator=torch.Generator().manual_seed(0))
    out = _loss(disc, gen, ids, masked, labels, draws=draws)
    replaced = out["is_replaced"]
    assert not replaced[labels == -100].any()  # only masked positions can be replaced
    # Re-draw the same samples by hand: the token whose cumulative probability interval holds the draw.
    with torch.no_grad():
        hidden = gen.electra(masked).last_hidden_state
        probs = torch.softmax(gen.generator_lm_head(gen.generator_predictions(hidden[where])).float(), -1)
    sampled = []
    for p, u in zip(probs.double().tolist(), draws.tolist(), strict=True):
        target, acc = u * sum(p), 0.0
        sampled.append(next((j for j, pj in enumerate(p) if (acc := acc + pj) > target), len(p) - 1))
    assert torch.equal(replaced[where], torch.tensor(sampled) != ids[where])
    assert 0.5 < out["replaced"].item() / where.float().mean().item() <= 1.0  # an untrained generator rarely guesses


def test_generator_never_receives_the_discriminator_gradient():
    disc, gen = _models()
    ids, masked, labels = _batch(1)
    out = _loss(disc, gen, ids, masked, labels)
    shared = {id(p) for p in disc.electra.embeddings.parameters()}
    own = [p for p in gen.parameters() if id(p) not in shared]
    grads = torch.autograd.grad(out["rtd_loss"], own, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
    disc_grads = torch.autograd.grad(out["rtd_loss"], list(disc.discriminator_predictions.parameters()))
    assert all(g.abs().sum() > 0 for g in disc_grads)
    assert torch.isfinite(out["loss"]) and out["loss"] > out["mlm_loss"]




def test_rows_of_a_batch_sample_what_the_whole_batch_samples():
    """Processes holding different rows of one global batch, each given its slice of the draws, sample
    exactly the tokens one process would: multi-process ELECTRA follows the single-process run."""
    disc, gen = _models()
    ids, masked, labels = _batch(2)
    where = labels != -100
    draws = torch.rand(int(where.sum()), generator=torch.Generator().manual_seed(3))
    whole = _loss(disc, gen, ids, masked, labels, draws=draws)["is_replaced"]
    half, offset = len(ids) // 2, int(where[: len(ids) // 2].sum())
    top = _loss(disc, gen, ids[:half], masked[:half], labels[:half], draws=draws[:offset])["is_replaced"]
    bottom = _loss(disc, gen, ids[half:], masked[half:], labels[half:], draws=draws[offset:])["is_replaced"]
    assert torch.equal(torch.cat([top, bottom]), whole)


def test_inverse_cdf_samples_follow_the_generator_distribution():
    """40,000 draws over a fixed 4-token distribution land within 1.5% of each probability."""
    probs = torch.tensor([0.1, 0.0, 0.6, 0.3])
    u = torch.rand(40_000, generator=torch.Generator().manual_seed(0))
    sampled = sample_tokens(probs.clamp(min=1e-30).log().expand(40_000, 4), u)
    freq = torch.bincount(sampled, minlength=4).float() / 40_000
    assert freq[1] == 0 and torch.allclose(freq, probs, atol=0.015)
