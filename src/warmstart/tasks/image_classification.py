"""Image classification with few labels: `labels_per_class` images per class, strategies full / linear_probe /
lp_ft (as for text, tasks/classification.py), early stopping on a small validation split.

The model is a standard `AutoModelForImageClassification` (ResNet or ViT), so the saved folder predicts with
`transformers` alone; its `preprocessor_config.json` says how to resize and normalise the input.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score

from warmstart.config import AugmentConfig, ImageFinetuneConfig
from warmstart.data.images import ImageSet, image_batches, load_images
from warmstart.data.vision import augment, channel_stats, eval_transform
from warmstart.engine.checkpoint import require_weights
from warmstart.engine.runtime import device, set_threads, use_bf16
from warmstart.errors import WarmstartError
from warmstart.models.images import (
    PREPROCESSOR_FILE,
    encode_images,
    image_backbone_config,
    map_images,
    preprocessor_config,
    read_preprocessor,
)
from warmstart.models.probe import fit_logistic, knn_accuracy
from warmstart.models.tiny_conv import use_tiny_map_convs
from warmstart.tasks.finetune import fit, write_run
from warmstart.tasks.strategies import STRATEGIES

# fine-tuning views: a mild crop and a flip, no colour change (the label must survive the augmentation)
FINETUNE_AUGMENT = AugmentConfig(crop_min_scale=0.6, jitter_p=0.0, greyscale_p=0.0, blur_p=0.0)


def per_class_split(labels: torch.Tensor, per_class: int | None, held_out_per_class: int, seed: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded, class-balanced (train, validation) indices: `held_out_per_class` of each class for validation,
    then `per_class` of the rest (all when None) for training."""
    gen = torch.Generator().manual_seed(seed)
    train, val = [], []
    for c in labels.unique().tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_val = min(held_out_per_class, max(0, len(idx) - 1))
        val.append(idx[:n_val])
        rest = idx[n_val:]
        train.append(rest if per_class is None else rest[:per_class])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def build_image_classifier(cfg: ImageFinetuneConfig, channels: int, names: list[str], seed: int):
    """AutoModelForImageClassification from `init`, or with random weights in the architecture of
    `architecture` (a checkpoint folder) or of the model section."""
    from transformers import AutoConfig, AutoModelForImageClassification
    from transformers.utils import logging

    id2label = {i: n for i, n in enumerate(names)}
    kwargs = dict(num_labels=len(names), id2label=id2label, label2id={n: i for i, n in id2label.items()})
    torch.manual_seed(seed)
    if cfg.init == "scratch":
        if cfg.architecture:
            config = AutoConfig.from_pretrained(require_weights(cfg.architecture, cfg.trust_pickled_weights), **kwargs)
        else:
            config = image_backbone_config(cfg.model, channels)
            config.update(kwargs)
        return AutoModelForImageClassification.from_config(config)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # "newly initialized classifier" is expected, not news
    try:
        return AutoModelForImageClassification.from_pretrained(require_weights(cfg.init, cfg.trust_pickled_weights),
                                                               **kwargs)
    finally:
        logging.set_verbosity(verbosity)


def linear_head(model) -> torch.nn.Linear:
    head = model.classifier
    return head[-1] if isinstance(head, torch.nn.Sequential) else head  # resnet: Flatten + Linear


def run_image_finetune(cfg: ImageFinetuneConfig) -> dict:
    """Fine-tune on `labels_per_class` images per class; evaluate on the test images; save atomically."""
    t0 = time.perf_counter()
    tc, dc = cfg.train, cfg.data
    if not cfg.init:
        raise WarmstartError("init is empty; give an image checkpoint folder or 'scratch'")
    if tc.strategy not in STRATEGIES:
        raise WarmstartError(f"train.strategy: unknown strategy '{tc.strategy}'; use {', '.join(STRATEGIES)}")
    set_threads(None)
    bf16 = use_bf16(tc.precision)
    data = load_images(dc.sources, dc.load_size, dc.strict, dc.image_column, dc.label_column, dc.split)
    if data.labels is None:
        raise WarmstartError(f"{dc.sources[0]}: no labels (use class subfolders, an IDX labels file, or a label "
                             "column); fine-tuning needs them")
    tr_idx, va_idx = per_class_split(data.labels, dc.labels_per_class, dc.validation_per_class, tc.seed)
    test = load_images(dc.test_sources, dc.load_size, dc.strict, dc.image_column, dc.label_column, "test") \
        if dc.test_sources else data.subset(va_idx)
    if test.labels is None:
        raise WarmstartError(f"{dc.test_sources[0]}: the test images have no labels")
    train, val = data.subset(tr_idx), data.subset(va_idx)
    n_classes = int(data.labels.max()) + 1
    names = data.class_names or [str(i) for i in range(n_classes)]
    if int(test.labels.max()) >= n_classes:
        raise WarmstartError(f"{dc.test_sources[0]}: label {int(test.labels.max())} never appears in the training data")
    model = build_image_classifier(cfg, data.images.shape[1], names, tc.seed)
    use_tiny_map_convs(model)
    known = read_preprocessor(cfg.init if cfg.init != "scratch" else (cfg.architecture or ""))
    size, mean, std = known if known else (cfg.model.image_size, *channel_stats(data.images))
    channels_last = model.config.model_type == "resnet"
    model.to(device(), memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    head = linear_head(model)

    def features(images: torch.Tensor) -> torch.Tensor:
        return encode_images(model.base_model, images, size, mean, std, bf16)

    def to_input(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device())
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def predict(images: torch.Tensor) -> torch.Tensor:
        return F.softmax(map_images(lambda x: model(pixel_values=x).logits, model, images, size, mean, std, bf16), -1)

    fitted: dict = {}
    if tc.strategy in ("linear_probe", "lp_ft"):
        probe = fit_logistic(features(train.images).numpy(), train.labels.numpy(), features(val.images).numpy(),
                             val.labels.numpy(), tc.seed)
        if len(probe["classes"]) != n_classes:
            raise WarmstartError(f"the probe saw {len(probe['classes'])} of {n_classes} classes; raise data.labels_per_class")
        with torch.no_grad():
            head.weight.copy_(torch.as_tensor(probe["weight"], dtype=head.weight.dtype))
            head.bias.copy_(torch.as_tensor(probe["bias"], dtype=head.bias.dtype))
        fitted = {"probe_val_accuracy": round(probe["val_accuracy"], 4), "probe_C": probe["C"],
                  "trainable_parameters": sum(p.numel() for p in head.parameters())}
    if tc.strategy != "linear_probe":
        fitted.update(train_full(model, cfg, train, val, size, mean, std, bf16, predict, to_input,
                                 fitted.get("probe_val_accuracy", float("-inf"))))
    probs = predict(test.images)
    pred = probs.argmax(1).numpy()
    y = test.labels.numpy()
    metrics = {"accuracy": round(float(accuracy_score(y, pred)), 4),
               "macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
               "test_size": len(test), "train_labels": len(train), "validation_size": len(val),
               "strategy": tc.strategy, "init": cfg.init, "seed": tc.seed, **fitted}
    if tc.strategy == "linear_probe":  # the same frozen features, read by a kNN classifier
        metrics["knn_accuracy"] = round(knn_accuracy(features(train.images), train.labels, features(test.images),
                                                     test.labels, k=min(20, len(train))), 4)
    if cfg.forgetting.measure and cfg.init != "scratch":
        metrics.update(measure_forgetting(cfg, model, data, test, size, mean, std, bf16))
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    predictions = pd.DataFrame({"index": np.arange(len(y)), "label": [names[i] for i in y],
                                "prediction": [names[i] for i in pred],
                                **{f"prob_{n}": probs[:, i].numpy() for i, n in enumerate(names)}})
    write_run(cfg, model, None, metrics, {
        PREPROCESSOR_FILE: lambda p: p.write_text(json.dumps(preprocessor_config(size, mean, std), indent=2)),
        "predictions.csv": lambda p: predictions.to_csv(p, index=False)})
    return metrics


def measure_forgetting(cfg: ImageFinetuneConfig, model, data: ImageSet, test: ImageSet, size: int, mean, std,
                       bf16: bool) -> dict:
    """kNN drop and CKA against the pretrained `init` on the probe task (training images vote for test images)."""
    from transformers import AutoModel

    from warmstart.tasks.forgetting import image_forgetting

    before = AutoModel.from_pretrained(cfg.init).to(device())
    rng = np.random.default_rng(cfg.train.seed)
    memory = data.subset(rng.choice(len(data), min(cfg.forgetting.memory, len(data)), replace=False))
    queries = test.subset(rng.choice(len(test), min(cfg.forgetting.queries, len(test)), replace=False))

    def features_of(encoder):
        return lambda images: encode_images(encoder, images, size, mean, std, bf16)

    return image_forgetting(features_of(before), features_of(model.base_model), (memory.images, memory.labels),
                            (queries.images, queries.labels))


def train_full(model, cfg: ImageFinetuneConfig, train: ImageSet, val: ImageSet, size: int, mean, std, bf16: bool,
               predict, to_input, start_accuracy: float = float("-inf")) -> dict:
    """Every weight trains (the shared early-stopping fit, as for text); lightly augmented training images."""
    tc = cfg.train
    batch_size = min(tc.batch_size, len(train))
    gen = torch.Generator().manual_seed(tc.seed)
    y_val = val.labels.numpy()

    def batches():
        for epoch, i, b in image_batches(torch.arange(len(train)), batch_size, tc.seed):
            idx = b["images"]
            yield epoch, i, {"images": train.images[idx], "labels": train.labels[idx]}

    def step_fn(batch: dict) -> dict:
        images = batch["images"].cpu()
        x = augment(images, FINETUNE_AUGMENT, size, mean, std, gen) if tc.augment else eval_transform(images, size, mean, std)
        logits = model(pixel_values=to_input(x)).logits
        loss = F.cross_entropy(logits.float(), batch["labels"])
        return {"loss": loss, "acc": (logits.argmax(-1) == batch["labels"]).float().mean()}

    def evaluate() -> float:
        return float(accuracy_score(y_val, predict(val.images).argmax(1).numpy()))

    return fit(model, tc, Path(cfg.output_dir), batches(), step_fn, evaluate, len(train), linear_head(model), bf16, "val_accuracy",
               start_accuracy, tokens_fn=lambda b: len(b["images"]), unit="images",
               steps_per_epoch=max(1, len(train) // batch_size))
