import torch

from warmstart.config import ModelConfig
from warmstart.models import build_electra
from warmstart.objectives.electra import electra_loss
from warmstart.objectives.mlm import mask_tokens


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


def test_embeddings_are_shared_and_generator_is_smaller():
    disc, gen = _models()
    assert gen.electra.embeddings is disc.electra.embeddings
    assert gen.generator_lm_head.weight is disc.electra.embeddings.word_embeddings.weight
    assert gen.config.hidden_size < disc.config.hidden_size


def test_discriminator_labels_are_exactly_where_the_sample_differs():
    disc, gen = _models()
    ids, masked, labels = _batch()
    out = electra_loss(disc, gen, ids, masked, labels, sampler=torch.Generator().manual_seed(0))
    replaced = out["is_replaced"]
    assert not replaced[labels == -100].any()  # only masked positions can be replaced
    # Re-draw the same samples: the targets are exactly the positions where sample != original.
    where = labels != -100
    with torch.no_grad():
        hidden = gen.electra(masked).last_hidden_state
        probs = torch.softmax(gen.generator_lm_head(gen.generator_predictions(hidden[where])).float(), -1)
    sampled = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(0)).squeeze(-1)
    assert torch.equal(replaced[where], sampled != ids[where])
    assert 0.5 < out["replaced"].item() / where.float().mean().item() <= 1.0  # an untrained generator rarely guesses


def test_generator_never_receives_the_discriminator_gradient():
    disc, gen = _models()
    ids, masked, labels = _batch(1)
    out = electra_loss(disc, gen, ids, masked, labels, sampler=torch.Generator().manual_seed(0))
    shared = {id(p) for p in disc.electra.embeddings.parameters()}
    own = [p for p in gen.parameters() if id(p) not in shared]
    grads = torch.autograd.grad(out["rtd_loss"], own, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
    disc_grads = torch.autograd.grad(out["rtd_loss"], list(disc.discriminator_predictions.parameters()))
    assert all(g.abs().sum() > 0 for g in disc_grads)
    assert torch.isfinite(out["loss"]) and out["loss"] > out["mlm_loss"]


