import pytest
import torch
from transformers import BertConfig, BertForPreTraining

from warmstart.objectives.mlm import mask_tokens, mlm_nsp_loss, prediction_capacity, prediction_slots

SPECIAL = torch.tensor([0, 1, 2, 3, 4])  # PAD UNK CLS SEP MASK
MASK_ID, VOCAB = 4, 1000


def test_masking_statistics_80_10_10_and_specials_never_masked():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, VOCAB, (256, 128), generator=g)
    ids[:, 0], ids[:, -1], ids[:, 60] = 2, 3, 3  # [CLS] ... [SEP] ... [SEP]
    masked, labels = mask_tokens(ids, SPECIAL, MASK_ID, VOCAB, 0.15, g)
    chosen = labels != -100
    assert abs(chosen[:, 1:-1].float().mean().item() - 0.15 * 125 / 126) < 0.005
    assert not chosen[:, 0].any() and not chosen[:, -1].any() and not chosen[:, 60].any()
    assert torch.equal(labels[chosen], ids[chosen])
    to_mask = (masked == MASK_ID) & chosen
    unchanged = (masked == ids) & chosen
    random_ = chosen & ~to_mask & ~unchanged
    n = chosen.sum().item()
    assert abs(to_mask.sum().item() / n - 0.8) < 0.01
    # "random" can draw the original token (1/VOCAB of the time): counted as unchanged here.
    assert abs(random_.sum().item() / n - 0.1) < 0.01
    assert abs(unchanged.sum().item() / n - 0.1) < 0.01
    assert torch.equal(masked[~chosen], ids[~chosen])


def test_whole_word_masking_masks_all_pieces_of_a_word():
    g = torch.Generator().manual_seed(1)
    continuation = torch.zeros(VOCAB, dtype=torch.bool)
    continuation[500:] = True  # ids >= 500 are "##" pieces
    ids = torch.randint(5, VOCAB, (64, 64), generator=g)
    ids[:, 0] = 10  # every row starts with a word
    _, labels = mask_tokens(ids, SPECIAL, MASK_ID, VOCAB, 0.3, g, continuation)
    chosen = labels != -100
    starts = ~continuation[ids]
    word = torch.cumsum(starts.long(), 1)
    for r in range(ids.shape[0]):
        for w in word[r].unique():
            in_word = chosen[r][word[r] == w]
            assert in_word.all() or not in_word.any()
    assert 0.2 < chosen.float().mean() < 0.4


def test_sparse_head_loss_equals_dense_head_loss():
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=64)).eval()
    ids = torch.randint(5, VOCAB, (4, 24))
    masked, labels = mask_tokens(ids, SPECIAL, MASK_ID, VOCAB, 0.25, torch.Generator().manual_seed(0))
    positions, targets = prediction_slots(labels, prediction_capacity(labels.numel(), 0.25))
    assert len(positions) > int((labels != -100).sum())  # padded slots are ignored, not counted
    batch = {"input_ids": masked, "nsp_labels": torch.tensor([0, 1, 0, 1])}
    sparse = mlm_nsp_loss(model, {**batch, "mlm_positions": positions, "mlm_targets": targets})
    dense = mlm_nsp_loss(model, {**batch, "labels": labels})
    reference = model(input_ids=masked, labels=labels, next_sentence_label=batch["nsp_labels"]).loss
    for k in ("loss", "mlm_loss", "nsp_loss", "mlm_acc"):
        assert torch.allclose(sparse[k], dense[k], atol=1e-5), k
    assert torch.allclose(sparse["loss"], reference, atol=1e-5)
    # Gradients agree too: the sparse head is the same function of the weights.
    g_sparse = torch.autograd.grad(sparse["mlm_loss"], model.cls.predictions.transform.dense.weight)[0]
    g_dense = torch.autograd.grad(mlm_nsp_loss(model, {**batch, "labels": labels})["mlm_loss"],
                                  model.cls.predictions.transform.dense.weight)[0]
    assert torch.allclose(g_sparse, g_dense, atol=1e-6)


@pytest.mark.parametrize("shape, probability, capacity", [
    ((4, 24), 0.25, 0),        # no capacity (eager): the count rounded up to 8
    ((128, 128), 0.15, None),  # BERT-base's batch: the default capacity
    ((2, 8), 0.999, 0),        # nearly everything masked: padding still finds an unmasked position
    ((3, 10), 0.2, 5),         # more masked than the capacity: grows, nothing dropped
])
def test_prediction_slots_list_every_masked_token_in_order_then_padding(shape, probability, capacity):
    ids = torch.randint(5, VOCAB, shape, generator=torch.Generator().manual_seed(1))
    ids[:, 0] = 2  # [CLS]
    _, labels = mask_tokens(ids, SPECIAL, MASK_ID, VOCAB, probability, torch.Generator().manual_seed(2))
    if capacity is None:
        capacity = prediction_capacity(labels.numel(), probability)
    positions, targets = prediction_slots(labels, capacity)
    flat, n = labels.flatten(), int((labels != -100).sum())
    assert len(positions) == len(targets) == max(capacity, 8 * -(-n // 8))
    assert torch.equal(positions[:n], torch.nonzero(flat != -100).squeeze(1))  # row-major, as hidden[where]
    assert torch.equal(targets[:n], flat[flat != -100])
    assert (targets[n:] == -100).all() and (flat[positions[n:]] == -100).all()  # pads sit on unmasked tokens


def test_capacity_is_rarely_exceeded_at_bert_base_shape():
    """1,000 masked batches of 128 x 128 at 15%: every one fits the fixed capacity (one shape, one graph)."""
    ids = torch.randint(5, VOCAB, (128, 128), generator=torch.Generator().manual_seed(0))
    g, capacity = torch.Generator().manual_seed(1), prediction_capacity(128 * 128, 0.15)
    counts = [int((mask_tokens(ids, SPECIAL, MASK_ID, VOCAB, 0.15, g)[1] != -100).sum()) for _ in range(1000)]
    assert max(counts) <= capacity < 1.3 * 0.15 * 128 * 128 + 64
