"""Every strategy, table-driven, on a tiny BERT classifier and a tiny ResNet classifier: exactly the intended
weights change and the others stay bit-identical."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification, ResNetConfig, ResNetForImageClassification

from warmstart.config import TextTrainConfig as FinetuneTrainConfig
from warmstart.tasks.finetune import fit
from warmstart.tasks.strategies import layer_stack, plan


def bert():
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))


def resnet():
    torch.manual_seed(0)
    return ResNetForImageClassification(ResNetConfig(num_channels=1, embedding_size=8, hidden_sizes=[8, 16],
                                                     depths=[1, 1], num_labels=3))


def text_batches():
    gen = torch.Generator().manual_seed(1)
    for step in itertools.count():
        ids = torch.randint(1, 40, (8, 10), generator=gen)
        yield step // 2, step % 2, {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                                    "labels": (ids[:, 0] > 20).long()}


def image_batches():
    gen = torch.Generator().manual_seed(1)
    for step in itertools.count():
        x = torch.randn(8, 1, 16, 16, generator=gen)
        yield step // 2, step % 2, {"pixel_values": x, "labels": (x.mean((1, 2, 3)) > 0).long() + (x[:, 0, 0, 0] > 1).long()}


def train(model, strategy: str, batches, steps: int = 6, **sections) -> dict:
    """`steps` optimizer steps (2 per epoch) of `strategy`; the evaluation always improves, so the last
    weights are kept."""
    tc = FinetuneTrainConfig(strategy=strategy, lr=0.05, max_steps=steps, eval_every=2, patience=99,
                             warmup_fraction=0.0, weight_decay=0.01)
    for name, values in sections.items():
        for k, v in values.items():
            setattr(getattr(tc, name), k, v)
    head = model.classifier if isinstance(model.classifier, torch.nn.Linear) else model.classifier[1]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    score = itertools.count()

    def loss_fn(batch):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return {"loss": F.cross_entropy(model(**inputs).logits.float(), batch["labels"])}

    fit(model, tc, None, batches(), loss_fn, lambda: float(next(score)), 32, head, False, "val",
        tokens_fn=lambda b: 8)
    after = {k: v.cpu() for k, v in model.state_dict().items()}  # fit placed the model where the run computes
    return {k: not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point()}


def changed(diff: dict, prefix: str) -> set[bool]:
    return {v for k, v in diff.items() if k.startswith(prefix) and not k.endswith("num_batches_tracked")}


TEXT = [
    # strategy, sections, {prefix: expected "changed" flags}
    ("full", {}, {"bert.embeddings.word": {True}, "bert.encoder.layer.0.": {True}, "classifier": {True}}),
    ("freeze", {"freeze": {"layers": 2}}, {"bert.embeddings": {False}, "bert.encoder.layer.0.": {False},
                                           "bert.encoder.layer.1.": {False}, "bert.encoder.layer.2.": {True},
                                           "bert.pooler": {True}, "classifier": {True}}),
    # 6 steps = 3 epochs of 2 steps at one block per epoch: head + pooler, then layers 2 and 1; never 0
    ("gradual_unfreeze", {"gradual_unfreeze": {"every_epochs": 1.0}},
     {"bert.embeddings": {False}, "bert.encoder.layer.0.": {False}, "bert.encoder.layer.1.": {True},
      "bert.encoder.layer.2.": {True}, "bert.pooler": {True}, "classifier": {True}}),
    ("llrd", {"llrd": {"decay": 0.5}}, {"bert.embeddings.word": {True}, "bert.encoder.layer.0.": {True},
                                        "classifier": {True}}),
    ("l2sp", {"l2sp": {"alpha": 0.1}}, {"bert.encoder.layer.0.": {True}, "classifier": {True}}),
    ("lora", {"lora": {"r": 2, "alpha": 4, "dropout": 0.0}},
     {"bert.embeddings": {False}, "bert.encoder.layer.0.attention.self.key": {False},
      "bert.encoder.layer.0.attention.output": {False}, "bert.encoder.layer.0.intermediate": {False},
      "bert.encoder.layer.0.attention.self.query.weight": {True}, "bert.encoder.layer.2.attention.self.value.weight": {True},
      "bert.pooler": {False}, "classifier": {True}}),
]


@pytest.mark.parametrize("strategy, sections, expect", TEXT, ids=[t[0] for t in TEXT])
def test_text_strategies_change_exactly_the_intended_weights(strategy, sections, expect):
    model = bert()
    diff = train(model, strategy, text_batches, **sections)
    assert set(diff) == {k for k, v in bert().state_dict().items() if v.is_floating_point()}  # merged back (LoRA)
    for prefix, flags in expect.items():
        assert changed(diff, prefix) == flags, prefix


IMAGES = [
    ("full", {}, {"resnet.embedder": {True}, "resnet.encoder.stages.0": {True}, "classifier": {True}}),
    ("freeze", {"freeze": {"layers": 1}}, {"resnet.embedder": {False}, "resnet.encoder.stages.0": {False},
                                           "resnet.encoder.stages.1": {True}, "classifier": {True}}),
    ("gradual_unfreeze", {"gradual_unfreeze": {"every_epochs": 10.0}},
     {"resnet.embedder": {False}, "resnet.encoder.stages.": {False}, "classifier": {True}}),
    ("lora", {"lora": {"r": 2, "alpha": 4, "dropout": 0.0}},
     {"resnet.embedder.embedder.normalization": {False}, "resnet.encoder.stages.0.layers.0.layer.0.convolution": {True},
      "classifier": {True}}),
]


@pytest.mark.parametrize("strategy, sections, expect", IMAGES, ids=[t[0] for t in IMAGES])
def test_image_strategies_change_exactly_the_intended_weights(strategy, sections, expect):
    diff = train(resnet(), strategy, image_batches, **sections)
    for prefix, flags in expect.items():
        assert changed(diff, prefix) == flags, prefix


def test_llrd_rates_decay_from_the_top_block_down():
    model = bert()
    p = plan("llrd", model, model.classifier, FinetuneTrainConfig(), 1.0, 3.0)  # decay 0.8
    stack = layer_stack(model, model.classifier)  # embeddings, 3 blocks, pooler
    rates = [p.param_lrs[id(group[0])] for group in stack]
    assert rates == [0.8 ** 4, 0.8 ** 3, 0.8 ** 2, 0.8, 1.0]
    assert p.param_lrs[id(model.classifier.weight)] == 3.0


def test_l2sp_penalty_is_zero_at_initialisation_and_grows_with_distance():
    model = bert()
    p = plan("l2sp", model, model.classifier, FinetuneTrainConfig(), 1.0, 1.0)
    assert float(p.penalty().detach()) == 0.0
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.add_(1.0)
    alpha, n = FinetuneTrainConfig().l2sp.alpha, model.bert.embeddings.word_embeddings.weight.numel()
    assert float(p.penalty().detach()) == pytest.approx(0.5 * alpha * n, rel=1e-5)
    with torch.no_grad():
        model.classifier.weight.add_(1.0)  # the head is not pulled back (it has no pretrained value)
    assert float(p.penalty().detach()) == pytest.approx(0.5 * alpha * n, rel=1e-5)


def test_gradual_unfreezing_follows_its_schedule():
    model = bert()
    cfg = FinetuneTrainConfig()
    cfg.gradual_unfreeze.every_epochs = 2.0
    p = plan("gradual_unfreeze", model, model.classifier, cfg, 1.0, 1.0)
    stack = layer_stack(model, model.classifier)  # embeddings, blocks 0-2, pooler

    def trainable() -> list[bool]:
        return [all(q.requires_grad for q in group) for group in stack]

    for epochs, expected in ((0.0, [False, False, False, False, True]), (1.9, [False, False, False, False, True]),
                             (2.0, [False, False, False, True, True]), (6.0, [False, True, True, True, True]),
                             (8.0, [True] * 5), (100.0, [True] * 5)):
        p.before_step(epochs)
        assert trainable() == expected, epochs


def test_lora_run_saves_a_merged_checkpoint_and_an_adapter_that_reload_to_the_same_outputs(pretrained, sentiment_csv,
                                                                                           tmp_path):
    """The merged folder loads with plain transformers; the PEFT adapter on the pretrained encoder gives the
    same outputs; the predictions of the run are those of the merged model."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from warmstart.config import FinetuneConfig, load_config
    from warmstart.data.text import load_tokenizer
    from warmstart.tasks.classification import run_finetune

    out = tmp_path / "lora"
    metrics = run_finetune(load_config(FinetuneConfig, None, [
        f"init={pretrained}", f"output_dir={out}", f"data.path={sentiment_csv}", "train.strategy=lora",
        "train.lora.r=4", "train.lr=1e-2", "train.max_epochs=2", "train.precision=fp32", "train.dropout=0.0"]))
    base_params = sum(p.numel() for p in AutoModelForSequenceClassification.from_pretrained(pretrained).parameters())
    assert metrics["strategy"] == "lora" and 0 < metrics["trainable_parameters"] < base_params / 2
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "adapter" / "adapter_model.safetensors").is_file()
    tok = load_tokenizer(str(out))
    batch = tok(["the film was great", "a dull boring plot"], padding=True, return_tensors="pt")
    merged = AutoModelForSequenceClassification.from_pretrained(out).eval()
    base = AutoModelForSequenceClassification.from_pretrained(pretrained, num_labels=2, hidden_dropout_prob=0.0)
    adapted = PeftModel.from_pretrained(base, out / "adapter").eval()
    with torch.no_grad():
        assert torch.allclose(merged(**batch).logits, adapted(**batch).logits, atol=1e-5)
    saved = load_file(out / "model.safetensors")
    before = load_file(pretrained / "model.safetensors")
    assert torch.equal(saved["bert.encoder.layer.0.attention.self.key.weight"],
                       before["bert.encoder.layer.0.attention.self.key.weight"])  # not a LoRA target
    assert not torch.equal(saved["bert.encoder.layer.0.attention.self.query.weight"],
                           before["bert.encoder.layer.0.attention.self.query.weight"])


@pytest.mark.parametrize("best_step, expect_trainable", [(0, 6), (40, 1000)])
def test_lp_ft_reports_the_head_alone_as_trained_when_fine_tuning_never_beat_the_probe(best_step, expect_trainable):
    from warmstart.tasks.strategies import probe_then_finetune

    head = torch.nn.Linear(2, 2)  # 6 weights
    fit_ = {"weight": torch.eye(2).numpy(), "bias": torch.zeros(2).numpy(), "val_accuracy": 0.7, "C": 1.0}
    starts = []

    def finetune(start):
        starts.append(start)
        return {"accuracy": 0.7, "best_step": best_step, "steps": 60, "trainable_parameters": 1000}

    metrics = probe_then_finetune("lp_ft", head, lambda: fit_, finetune)
    assert starts == [0.7]  # fine-tuning must beat the probe's held-out score to replace it
    assert metrics["trainable_parameters"] == expect_trainable
    assert torch.equal(head.weight, torch.eye(2))


def test_lp_ft_fine_tuning_must_beat_the_score_that_chose_the_probe():
    """Under train.class_balance the probe's C was chosen by balanced accuracy (`val_score`), which fine-tuning's
    evaluations also report: that, not the probe's plain accuracy, is the score to beat."""
    from warmstart.tasks.strategies import probe_then_finetune

    fit_ = {"weight": torch.eye(2).numpy(), "bias": torch.zeros(2).numpy(), "val_accuracy": 0.9, "val_score": 0.62,
            "C": 1.0}
    starts = []
    probe_then_finetune("lp_ft", torch.nn.Linear(2, 2), lambda: fit_,
                        lambda start: starts.append(start) or {"best_step": 5, "steps": 10})
    assert starts == [0.62]
