import pytest
import torch

from warmstart.tasks.forgetting import image_forgetting, linear_cka, sample_texts, text_forgetting


def test_linear_cka_hand_value_and_invariances():
    # one dimension: CKA is the squared correlation; centred x = (-1, 0, 1), y = (0, -1, 1): r = 1/2
    assert linear_cka(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[1.0], [0.0], [2.0]])) == pytest.approx(0.25)
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3 * x @ q + 5) == pytest.approx(1.0)  # rotation, isotropic scale, shift
    assert linear_cka(x, torch.randn(200, 8, generator=torch.Generator().manual_seed(2))) < 0.2


@pytest.fixture(scope="module")
def learnt(corpus_file, tmp_path_factory):
    """An encoder that has learnt something: the session's 6-step fixture predicts near-uniformly, so a drift
    can as well lower its MLM loss as raise it."""
    from tests.conftest import tiny_pretrain_config
    from warmstart.pretraining.text import run_pretrain

    root = tmp_path_factory.mktemp("learnt")
    return run_pretrain(tiny_pretrain_config(corpus_file, root / "model", root / "cache", "train.max_steps=120",
                                             "train.lr=0.003", "train.eval_every=60", "objective.nsp=false"))


def test_text_forgetting_is_zero_for_the_pretrained_encoder_and_grows_when_it_drifts(learnt, corpus_file):
    from transformers import AutoModel

    from warmstart.data.text import load_tokenizer

    pretrained = learnt

    tok = load_tokenizer(str(pretrained))
    texts = sample_texts([str(corpus_file)], 64, seed=0)
    assert len(texts) == 64 and texts == sample_texts([str(corpus_file)], 64, seed=0)
    same = text_forgetting(str(pretrained), AutoModel.from_pretrained(pretrained), tok, texts, 32, False)
    assert same["mlm_loss_increase"] == 0.0 and same["cka"] == pytest.approx(1.0, abs=1e-4)
    drifted = AutoModel.from_pretrained(pretrained)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in drifted.encoder.parameters():
            p.add_(0.5 * torch.randn_like(p))
    moved = text_forgetting(str(pretrained), drifted, tok, texts, 32, False)
    assert moved["mlm_loss_increase"] > 0 and moved["cka"] < 0.99


def test_image_forgetting_without_change_and_after_scrambling():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    images = 0.1 * torch.randn(60, 1, 4, 4, generator=gen)
    images[torch.arange(60), 0, 0, labels] += 1.0  # each class lights its own pixel: separable by cosine

    def flat(x):
        return x.flatten(1)

    def scrambled(x):
        return torch.randn(len(x), 16, generator=torch.Generator().manual_seed(len(x)))

    same = image_forgetting(flat, flat, (images[:40], labels[:40]), (images[40:], labels[40:]))
    assert same["knn_drop"] == 0.0 and same["cka"] == pytest.approx(1.0) and same["knn_pretrained"] == 1.0
    lost = image_forgetting(flat, scrambled, (images[:40], labels[:40]), (images[40:], labels[40:]))
    assert lost["knn_drop"] > 0.3 and lost["cka"] < 0.5
