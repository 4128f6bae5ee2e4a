"""Image classification with few labels: `data.labels` images, class-balanced; strategies full / linear_probe /
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
from warmstart.data.sample import Sample, check_classes, class_counts, holdout, per_class_split
from warmstart.data.vision import augment, channel_stats, eval_transform
from warmstart.engine.runtime import place, set_threads, to_device, use_bf16, uses_channels_last
from warmstart.errors import WarmstartError
from warmstart.models.common import load_model_config, load_pretrained
from warmstart.models.images import (
    PREPROCESSOR_FILE,
    encode_images,
    image_backbone_config,
    map_images,
    preprocessor_config,
    read_preprocessor,
)
from warmstart.models.probe import fit_logistic, fit_logistic_cv, knn_accuracy
from warmstart.models.tiny_conv import use_tiny_map_convs
from warmstart.tasks.finetune import fit, majority_share, write_run
from warmstart.tasks.protocol import scored, select_then_refit
from warmstart.tasks.registry import PREDICT_CHUNK
from warmstart.tasks.strategies import probe_then_finetune

# fine-tuning views: a mild crop and a flip, no colour change (the label must survive the augmentation)
FINETUNE_AUGMENT = AugmentConfig(crop_min_scale=0.6, jitter_p=0.0, greyscale_p=0.0, blur_p=0.0)


def image_counts(dc, n_classes: int) -> list[int | None]:
    """Labelled training images per class: `data.labels` in all, class-balanced; the deprecated
    `data.labels_per_class` means that many of each class."""
    if dc.labels_per_class is not None:
        print("warning: data.labels_per_class is deprecated; use data.labels (the total over all classes, "
              f"here {dc.labels_per_class * n_classes})")
        return [dc.labels_per_class] * n_classes
    return class_counts(dc.labels, n_classes)


def labelled_sample(cfg: ImageFinetuneConfig) -> Sample:
    """The labelled images that this task's runs, rank and the pixel baseline all see (data/sample.py): N images,
    class-balanced; a share of them held out to choose with and a refit on all N, or, when asked for, an
    explicit dev set of `validation_per_class` images per class beyond the N. The test images are
    `data.test_sources` (none without them: such a run reports no test score)."""
    dc, seed = cfg.data, cfg.train.seed
    data = load_images(dc.sources, dc.load_size, dc.strict, dc.image_column, dc.label_column, dc.split)
    if data.labels is None:
        raise WarmstartError(f"{dc.sources[0]}: no labels (use class subfolders, an IDX labels file, or a label "
                             "column); fine-tuning needs them")
    classes = int(data.labels.unique().numel())
    tr, va = per_class_split(data.labels, image_counts(dc, classes), dc.validation_per_class or 0, seed)
    check_classes(data.labels[tr].numpy())
    test = load_images(dc.test_sources, dc.load_size, dc.strict, dc.image_column, dc.label_column, "test") \
        if dc.test_sources else data.subset(torch.arange(0))
    if dc.test_sources and test.labels is None:
        raise WarmstartError(f"{dc.test_sources[0]}: the test images have no labels")
    labelled = data.subset(tr)
    labelled.whole = data
    if dc.validation_per_class:
        return Sample(labelled, labelled, data.subset(va), test, refit=False, extra=len(va))
    kept, held = holdout(len(labelled), cfg.train.holdout, seed, labelled.labels.numpy())
    return Sample(labelled, labelled.subset(kept), labelled.subset(held), test, refit=cfg.train.refit)


def build_image_classifier(cfg: ImageFinetuneConfig, channels: int, names: list[str], seed: int):
    """AutoModelForImageClassification from `init`, or with random weights in the architecture of
    `architecture` (a checkpoint folder) or of the model section."""
    from transformers import AutoModelForImageClassification

    id2label = {i: n for i, n in enumerate(names)}
    kwargs = dict(num_labels=len(names), id2label=id2label, label2id={n: i for i, n in id2label.items()})
    torch.manual_seed(seed)
    if cfg.init == "scratch":
        if cfg.architecture:
            config = load_model_config(cfg.architecture, cfg.trust_pickled_weights, **kwargs)
        else:
            config = image_backbone_config(cfg.model, channels)
            config.update(kwargs)
        return AutoModelForImageClassification.from_config(config)
    # quiet: "newly initialized classifier" is expected, not news
    return load_pretrained(AutoModelForImageClassification, cfg.init, cfg.trust_pickled_weights, quiet=True, **kwargs)


def linear_head(model) -> torch.nn.Linear:
    head = model.classifier
    return head[-1] if isinstance(head, torch.nn.Sequential) else head  # resnet: Flatten + Linear


def run_image_finetune(cfg: ImageFinetuneConfig) -> dict:
    """Fine-tune on the labelled sample; evaluate on the test images; publish the run folder atomically."""
    t0 = time.perf_counter()
    tc = cfg.train
    set_threads(None)
    bf16 = use_bf16(tc.precision)
    sample = labelled_sample(cfg)
    test, data = sample.test, sample.labelled.whole
    n_classes = int(data.labels.max()) + 1
    names = data.class_names or [str(i) for i in range(n_classes)]
    if len(test) and int(test.labels.max()) >= n_classes:
        raise WarmstartError(f"{cfg.data.test_sources[0]}: label {int(test.labels.max())} never appears in the "
                             "training data")
    known = read_preprocessor(cfg.init if cfg.init != "scratch" else (cfg.architecture or ""))
    size, mean, std = known if known else (cfg.model.image_size, *channel_stats(data.images))

    def train_once(train: ImageSet, val: ImageSet | None, steps: int | None, phase: str):
        model = build_image_classifier(cfg, data.images.shape[1], names, tc.seed)
        use_tiny_map_convs(model)
        channels_last = uses_channels_last(model)
        place(model, channels_last)

        def features(images: torch.Tensor) -> np.ndarray:
            return encode_images(model.base_model, images, size, mean, std, bf16).numpy()

        def to_input(x: torch.Tensor) -> torch.Tensor:
            x = to_device(x)
            return x.contiguous(memory_format=torch.channels_last) if channels_last else x

        def predict(images: torch.Tensor) -> torch.Tensor:
            return F.softmax(map_images(lambda x: model(pixel_values=x).logits, model, images, size, mean, std, bf16),
                             -1)

        def probe() -> dict:  # logistic regression on frozen features; C on validation, or cross-validated
            if val is None:
                return fit_logistic_cv(features(train.images), train.labels.numpy(), tc.seed)
            return fit_logistic(features(train.images), train.labels.numpy(), features(val.images),
                                val.labels.numpy(), tc.seed)

        return model, probe_then_finetune(tc.strategy, linear_head(model), probe, lambda start: train_full(
            model, cfg, train, val, size, mean, std, bf16, predict, to_input, start, steps, phase), steps)

    def score(model, rows: ImageSet) -> float:  # the refit's check (tasks/protocol.py)
        logits = map_images(lambda x: model(pixel_values=x).logits, model, rows.images, size, mean, std, bf16)
        return float((logits.argmax(1) == rows.labels).float().mean())

    model, fitted = select_then_refit(sample, tc.strategy, train_once, Path(cfg.output_dir), score,
                                      early_stopping=tc.patience > 0)

    def predict(images: torch.Tensor) -> torch.Tensor:
        return F.softmax(map_images(lambda x: model(pixel_values=x).logits, model, images, size, mean, std, bf16), -1)

    def features(images: torch.Tensor) -> torch.Tensor:
        return encode_images(model.base_model, images, size, mean, std, bf16)

    tested, files = {}, {}
    if len(test):
        probs = predict(test.images)
        pred, y = probs.argmax(1).numpy(), test.labels.numpy()
        tested = {"accuracy": round(float(accuracy_score(y, pred)), 4),
                  "macro_f1": round(float(f1_score(y, pred, average="macro")), 4)}
        predictions = pd.DataFrame({"index": np.arange(len(y)), "label": [names[i] for i in y],
                                    "prediction": [names[i] for i in pred],
                                    **{f"prob_{n}": probs[:, i].numpy() for i, n in enumerate(names)}})
        files["predictions.csv"] = lambda p: predictions.to_csv(p, index=False)
        if tc.strategy == "linear_probe":  # the same frozen features, read by a kNN classifier
            labelled = sample.labelled
            tested["knn_accuracy"] = round(knn_accuracy(features(labelled.images), labelled.labels,
                                                        features(test.images), test.labels,
                                                        k=min(20, len(labelled))), 4)
    metrics = {**tested, "test_size": len(test), "strategy": tc.strategy, "init": cfg.init, "seed": tc.seed, **fitted}
    if cfg.forgetting.measure and cfg.init != "scratch" and len(test):
        metrics.update(measure_forgetting(cfg, model, data, test, size, mean, std, bf16))
    metrics = scored({**metrics, "seconds": round(time.perf_counter() - t0, 1)}, len(test) > 0)
    write_run(cfg, model, None, metrics, {
        PREPROCESSOR_FILE: lambda p: p.write_text(json.dumps(preprocessor_config(size, mean, std), indent=2)),
        **files})
    return metrics


def measure_forgetting(cfg: ImageFinetuneConfig, model, data: ImageSet, test: ImageSet, size: int, mean, std,
                       bf16: bool) -> dict:
    """kNN drop and CKA against the pretrained `init` on the probe task (training images vote for test images)."""
    from transformers import AutoModel

    from warmstart.tasks.forgetting import image_forgetting

    before = place(load_pretrained(AutoModel, cfg.init, cfg.trust_pickled_weights, quiet=True))
    rng = np.random.default_rng(cfg.train.seed)
    memory = data.subset(rng.choice(len(data), min(cfg.forgetting.memory, len(data)), replace=False))
    queries = test.subset(rng.choice(len(test), min(cfg.forgetting.queries, len(test)), replace=False))

    def features_of(encoder):
        return lambda images: encode_images(encoder, images, size, mean, std, bf16)

    return image_forgetting(features_of(before), features_of(model.base_model), (memory.images, memory.labels),
                            (queries.images, queries.labels))


def train_full(model, cfg: ImageFinetuneConfig, train: ImageSet, val: ImageSet | None, size: int, mean, std,
               bf16: bool, predict, to_input, start_accuracy: float = float("-inf"), steps: int | None = None,
               phase: str = "select") -> dict:
    """Every weight trains (the shared early-stopping fit, as for text); lightly augmented training images;
    without validation (the refit), `steps` steps."""
    tc = cfg.train
    batch_size = min(tc.batch_size, len(train))
    gen = torch.Generator().manual_seed(tc.seed)
    y_val = val.labels.numpy() if val is not None else None

    def batches():
        for epoch, i, b in image_batches(torch.arange(len(train)), batch_size, tc.seed):
            idx = b["images"]
            yield epoch, i, {"images": train.images[idx], "labels": train.labels[idx]}

    # the normalisation where the model is, once: from a list, each step would copy it over and wait for the GPU
    norm = to_device({"mean": torch.tensor(mean), "std": torch.tensor(std)}, to=next(model.parameters()).device)

    def step_fn(batch: dict) -> dict:
        images = batch["images"]  # uint8, where the model is: the view's parameters are drawn on the host and
        # its pixels made there (data/vision.py), rather than copying the batch back
        x = augment(images, FINETUNE_AUGMENT, size, norm["mean"], norm["std"], gen) if tc.augment else \
            eval_transform(images, size, norm["mean"], norm["std"])
        logits = model(pixel_values=to_input(x)).logits
        loss = F.cross_entropy(logits.float(), batch["labels"])
        return {"loss": loss, "acc": (logits.argmax(-1) == batch["labels"]).float().mean()}

    def evaluate() -> float:
        return float(accuracy_score(y_val, predict(val.images).argmax(1).numpy()))

    return fit(model, tc, Path(cfg.output_dir), batches(), step_fn, evaluate if val is not None else None, len(train),
               linear_head(model), bf16, "val_accuracy", start_accuracy, tokens_fn=lambda b: len(b["images"]),
               unit="images", steps_per_epoch=max(1, len(train) // batch_size), generators=(gen,), steps=steps,
               phase=phase, floor=majority_share(y_val))


def predict_file(folder: Path, cfg: ImageFinetuneConfig, request) -> pd.DataFrame:
    """`warmstart predict` for an image classifier (AutoModelForImageClassification + preprocessor_config.json)
    over an image source: a folder of images, IDX, .npy/.npz or an HF dataset. Rows: the image's file (or
    source[index]), its class and class probabilities."""
    from transformers import AutoModelForImageClassification

    size, mean, std = read_preprocessor(folder)
    images = load_images([str(request.src)])
    model = request.load(AutoModelForImageClassification, folder).eval()
    names = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
    bf16, done = use_bf16(cfg.train.precision), request.progress(len(images))
    logits = request.chunks(len(images), PREDICT_CHUNK, lambda start, stop: map_images(
        lambda x: model(pixel_values=x).logits, model, images.images[start:stop], size, mean, std, bf16,
        request.batch_size, progress=done).numpy(), done)
    p = torch.softmax(torch.as_tensor(np.asarray(logits, dtype=np.float32)), -1).numpy()
    return pd.DataFrame({"image": images.paths, "prediction": [names[i] for i in p.argmax(1)],
                         **{f"prob_{n}": p[:, i].round(6) for i, n in enumerate(names)}})
