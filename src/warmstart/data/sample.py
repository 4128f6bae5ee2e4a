"""The labelled sample: which labelled examples a run may learn from. One function per modality, used by every
task, by `rank` and by the baselines, so that every initialisation and every baseline sees the same labels.

- text (`draw`): a seeded sample of n items; stratified by class (scikit-learn's `train_test_split`) when the
  items have one class each, uniform otherwise (sentences of a tagging task, documents, conversations).
- images (`per_class_split`): seeded and class-balanced, with a held-out share per class for validation.
A sample with a single class cannot train a classifier: both refuse it in one line.
"""

from __future__ import annotations

import numpy as np
import torch

from warmstart.errors import WarmstartError


def draw(n_items: int, n: int | None, seed: int, classes: np.ndarray | None = None, where: str = "data.labels"
         ) -> np.ndarray:
    """Indices of a seeded sample of `n` of `n_items` (all of them, in order, when n is None or larger).

    With `classes` (one class id per item) the sample is stratified, as scikit-learn draws it, and every class
    of the sample must be trainable; without, it is uniform and keeps the items' order."""
    if n is None or n >= n_items:
        return np.arange(n_items)
    if classes is None:
        return np.sort(np.random.default_rng(seed).choice(n_items, n, replace=False))
    from sklearn.model_selection import train_test_split

    classes = np.asarray(classes)
    values, counts = np.unique(classes, return_counts=True)
    if n < len(values):
        raise WarmstartError(f"{where}={n} is fewer than the {len(values)} classes")
    stratify = classes if counts.min() >= 2 else None
    taken, _ = train_test_split(np.arange(n_items), train_size=n, random_state=seed, stratify=stratify)
    return np.asarray(taken)


def check_classes(classes, where: str = "data.labels") -> None:
    """A classifier needs two classes to learn from: one line when the sample has fewer."""
    found = np.unique(np.asarray(classes))
    if len(found) < 2:
        only = f" (only {found[0].item()!r})" if len(found) else ""
        raise WarmstartError(f"{where}: the labelled training sample has {len(found)} class{only}; a classifier needs "
                             "examples of at least two classes (more labels, or check the label column)")


def class_counts(total: int | None, n_classes: int, where: str = "data.labels") -> list[int | None]:
    """`total` labelled images spread over the classes as evenly as it goes (the first classes get one more
    when it does not divide); None means every image."""
    if total is None:
        return [None] * n_classes
    if total < n_classes:
        raise WarmstartError(f"{where}={total} is fewer than the {n_classes} classes")
    base, extra = divmod(total, n_classes)
    return [base + (i < extra) for i in range(n_classes)]


def per_class_split(labels: torch.Tensor, per_class: int | list[int | None] | None, held_out_per_class: int,
                    seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded, class-balanced (train, validation) indices: `held_out_per_class` of each class for validation,
    then `per_class` of the rest (all when None; a list gives each class, in sorted order, its own count)."""
    gen = torch.Generator().manual_seed(seed)
    train, val = [], []
    classes = labels.unique().tolist()
    counts = per_class if isinstance(per_class, list) else [per_class] * len(classes)
    for c, count in zip(classes, counts, strict=True):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_val = min(held_out_per_class, max(0, len(idx) - 1))
        val.append(idx[:n_val])
        rest = idx[n_val:]
        train.append(rest if count is None else rest[:count])
    return torch.cat(train).sort().values, torch.cat(val).sort().values
