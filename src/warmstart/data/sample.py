"""The labelled sample: which labelled examples a run may learn from. One function per modality, used by every
task, by `rank` and by the baselines, so that every initialisation and every baseline sees the same labels.

"N labels" means N labelled examples in all (the honest protocol; SetFit's paper and most few-shot work use no
validation set beyond the N): a run draws its N, holds a share of them out to choose (when to stop, LP-FT's
keep-or-replace), and then trains again on all N for the chosen length (`Sample`). An explicit dev set
(`data.validation_labels: M`) is the user's choice, counted and reported as "N train + M validation".

- text (`draw`): a seeded sample of n items; stratified by class (scikit-learn's `train_test_split`) when the
  items have one class each, uniform otherwise (sentences of a tagging task, documents, conversations).
- images (`per_class_split`): seeded and class-balanced, with a held-out share per class for validation.
A sample with a single class cannot train a classifier: both refuse it in one line.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from warmstart.errors import WarmstartError


@dataclass
class Sample:
    """A run's labels, honestly counted. `labelled`: the N labels; `train` / `validation`: what the selection
    phase trains on and chooses with (a held-out share of the N, or the explicit dev set); `test`: the test split,
    never the run's labels; `refit`: train again on all of `labelled` once chosen; `extra`: labels of an explicit
    dev set beyond the N (0 by default)."""

    labelled: Any
    train: Any
    validation: Any
    test: Any
    refit: bool = False
    extra: int = 0

    def __iter__(self):  # train, validation, test = sample
        return iter((self.train, self.validation, self.test))

    def counts(self) -> dict:
        """What metrics.json says about the labels used."""
        n, held = len(self.labelled), len(self.validation) if not self.extra else 0
        if self.extra:
            protocol = f"{n} train + {self.extra} validation labels (an explicit dev set)"
        elif not len(self.validation):
            protocol = f"{n} labels, nothing held out to choose with"
        else:
            protocol = (f"{n} labels: {n - held} to train, {held} held out to choose"
                        + (f", then trained again on all {n}" if self.refit else ""))
        return {"train_labels": n, "validation_labels": self.extra, "held_out_labels": held, "protocol": protocol}


def holdout(n_items: int, fraction: float, seed: int, classes: np.ndarray | None = None,
            groups: Sequence[Hashable] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) indices of a labelled sample: a seeded `fraction` held out for choosing, stratified by
    class (at least one of each class, when every class has two) so the held-out share can say something about
    every class. `groups` (one key per item): whole groups are held out, about `fraction` of the items, so that
    no held-out item has a sibling among the kept ones (chatterbot asks "What is AI?" in several conversations;
    with items held out one by one, 71% of the held-out replies shared their opening with a kept one and 45%
    were a kept reply word for word, so choosing on them rewarded memorising). Fewer than 2 items, or a single
    group: nothing held out."""
    if n_items < 2:
        return np.arange(n_items), np.arange(0)
    held = max(1, int(round(fraction * n_items)))
    if groups is not None and classes is not None:  # a class each, and repeated texts: stratify whole groups
        ids, first = group_index(groups)
        return expand_groups(ids, holdout(len(first), fraction, seed, np.asarray(classes)[first])[1])
    if groups is not None:
        return _group_holdout(list(groups), held, seed)
    if classes is not None:
        classes = np.asarray(classes)
        values, counts = np.unique(classes, return_counts=True)
        if counts.min() >= 2 and n_items - max(held, len(values)) >= len(values):
            from sklearn.model_selection import train_test_split

            kept, out = train_test_split(np.arange(n_items), test_size=max(held, len(values)), random_state=seed,
                                         stratify=classes)
            return np.sort(kept), np.sort(out)
    order = np.random.default_rng([seed, 7]).permutation(n_items)
    return np.sort(order[held:]), np.sort(order[:held])


def text_groups(texts: Sequence) -> np.ndarray | None:
    """(N,) group ids, one shared by texts that are equal once case and runs of whitespace are folded (a pair
    task's items: (text, pair) tuples); None when every text differs, so that callers split exactly as before.
    Why: a repeated text on both sides of a split is answered from memory. 100 Rotten Tomatoes labels that were 48
    reviews, repeated (MiniLM features, 5 seeds, benchmarks/results/repeated_texts.md): kNN's 5-fold accuracy
    read 87.8% and the probe's 88.3% with the copies split across folds, 58.9% and 62.0% with each text's copies
    in one fold; the probe scored 63.2-63.5% on the test set. Tweets, tickets and reviews repeat: every fold and
    hold-out of labelled texts takes these groups."""
    def key(t) -> str:
        return "\x1f".join(" ".join(str(p).split()).casefold() for p in (t if isinstance(t, tuple) else (t,)))

    index: dict[str, int] = {}
    ids = np.array([index.setdefault(key(t), len(index)) for t in texts], dtype=np.int64)
    return None if len(index) == len(ids) else ids


def copies_said(groups: np.ndarray | None) -> str:
    """' (40 different texts: a text's copies share a fold)' where some texts repeat (text_groups), else ''."""
    return f" ({len(set(groups.tolist()))} different texts: a text's copies share a fold)" if groups is not None else ""


def kfold(y: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None, stratify: bool = True
          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded k-fold splits, [(kept, held)] index arrays: stratified by class for y (N,) (scikit-learn's
    StratifiedKFold), plain KFold for sets of labels y (N, L) or `stratify=False`. `groups` (text_groups): the
    groups are split instead, each labelled by its first item (sets: the union of its items'), and every item
    follows its group, so no held-out text has a copy among the kept ones. groups None: scikit-learn's folds.
    Why not scikit-learn's StratifiedGroupKFold: it has no form for sets of labels; dealing the groups is one
    rule for both (iterative_folds deals them the same way), and it balances texts, not their copies."""
    from sklearn.model_selection import KFold, StratifiedKFold

    y = np.asarray(y)
    if groups is not None:
        ids, first = group_index(groups)
        return [expand_groups(ids, held) for _, held in kfold(_group_labels(y, ids, first), k, seed, None, stratify)]
    splitter = (StratifiedKFold if stratify and y.ndim == 1 else KFold)(k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y if y.ndim == 1 else None))


def most_folds(y: np.ndarray, folds: int, groups: np.ndarray | None = None) -> int:
    """min(`folds`, what the labels allow): the smallest class's count for y (N,), the number of items for sets
    (N, L); with `groups`, counted in groups (copies of one text count once)."""
    y = np.asarray(y)
    if groups is not None:
        y = y[group_index(groups)[1]]
    if y.ndim == 2:
        return min(folds, len(y))
    return min(folds, int(np.unique(y, return_counts=True)[1].min())) if len(y) else 0


def group_index(groups: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    """-> ((N,) group index 0..G-1 in order of first appearance, (G,) each group's first item)"""
    index: dict[Hashable, int] = {}
    ids = np.array([index.setdefault(g, len(index)) for g in groups], dtype=np.int64)
    return ids, np.unique(ids, return_index=True)[1]


def _group_labels(y: np.ndarray, ids: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Each group's label: its first item's class, or the union of its items' sets of labels"""
    if y.ndim == 1:
        return y[first]
    out = np.zeros((len(first), y.shape[1]), dtype=y.dtype)
    np.maximum.at(out, ids, y)
    return out


def expand_groups(ids: np.ndarray, held_groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held) items of a split of the groups"""
    out = np.isin(ids, held_groups)
    return np.flatnonzero(~out), np.flatnonzero(out)


def _group_holdout(groups: list[Hashable], held: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole groups, in a seeded order, until at least `held` items are out; at least one group is kept."""
    keys = list(dict.fromkeys(groups))
    if len(keys) < 2:
        return np.arange(len(groups)), np.arange(0)
    size = {k: 0 for k in keys}
    for g in groups:
        size[g] += 1
    out: set[Hashable] = set()
    taken = 0
    for i in np.random.default_rng([seed, 7]).permutation(len(keys))[:len(keys) - 1]:
        if taken >= held:
            break
        out.add(keys[i])
        taken += size[keys[i]]
    is_out = np.array([g in out for g in groups])
    return np.flatnonzero(~is_out), np.flatnonzero(is_out)


def draw(n_items: int, n: int | None, seed: int, classes: np.ndarray | None = None, where: str = "data.labels"
         ) -> np.ndarray:
    """Indices of a seeded sample of `n` of `n_items` (all of them, in order, when n is None or larger).

    With `classes` (one class id per item) the sample is stratified, as scikit-learn draws it, and every class
    of the sample must be trainable; without, it is uniform and keeps the items' order."""
    if n is None or n >= n_items:
        _fewer(n, n_items, where)
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


def iterative_folds(y: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Each item's fold (0..k-1) for sets of labels, by iterative stratification (Sechidis, Tsoumakas & Vlahavas,
    ECML 2011): the rarest label's items are dealt first, each to the fold that most lacks that label (ties: the
    fold most short of items, then a seeded coin), so every label is spread over the folds as evenly as its
    count allows, where plain k-fold leaves a label on 3 texts in 50 wherever chance puts it. scikit-learn has no
    multi-label stratifier; iterstrat / scikit-multilearn would be a dependency for 25 lines. Items with no label
    fill the folds still short of items. y: (N, L) 0/1 -> (N,) fold ids, each fold N/k items (+- 1); `groups`
    (text_groups): the groups are dealt, each with the union of its items' labels, and its items follow it."""
    if groups is not None:
        ids, first = group_index(groups)
        return iterative_folds(_group_labels(np.asarray(y), ids, first), k, seed)[ids]
    y = np.asarray(y).astype(bool)
    n = len(y)
    rng = np.random.default_rng([seed, 11])
    want = np.full(k, n / k)  # items each fold still lacks
    want_label = np.tile(y.sum(0) / k, (k, 1))  # (k, L): each label's items each fold still lacks
    fold = np.full(n, -1)
    left = y.copy()  # labels of the items not yet dealt
    while left.any():
        counts = left.sum(0)
        label = int(np.flatnonzero(counts == counts[counts > 0].min())[0])
        for i in rng.permutation(np.flatnonzero(left[:, label])):
            best = np.flatnonzero(want_label[:, label] == want_label[:, label].max())
            best = best[want[best] == want[best].max()]
            f = int(rng.choice(best))
            fold[i] = f
            want[f] -= 1
            want_label[f] -= y[i]
            left[i] = False
    for i in rng.permutation(np.flatnonzero(fold < 0)):  # the items with no label
        best = np.flatnonzero(want == want.max())
        f = int(rng.choice(best))
        fold[i] = f
        want[f] -= 1
    return fold


def draw_balanced(classes: np.ndarray, n: int | None, seed: int, where: str = "data.labels") -> np.ndarray:
    """Indices of a seeded sample of `n` items spread evenly over the classes (SetFit's "N per class" protocol;
    the first classes, in sorted order, get one more when it does not divide), sorted. A class with fewer items
    than its share gives all it has."""
    classes = np.asarray(classes)
    if n is None or n >= len(classes):
        _fewer(n, len(classes), where)
        return np.arange(len(classes))
    values = np.unique(classes)
    rng = np.random.default_rng([seed, 11])
    taken = [rng.permutation(np.flatnonzero(classes == v))[:k]
             for v, k in zip(values, class_counts(n, len(values), where), strict=True)]
    _fewer(n, sum(len(t) for t in taken), where, " (a class has fewer than its even share)")
    return np.sort(np.concatenate(taken))


def _fewer(n: int | None, got: int, where: str, why: str = "") -> None:
    """Say so, on stderr, when a sample of `n` can only be `got` (metrics.json counts what was used; a user who
    asked for 1,000 labels should not learn from it afterwards that 32 were there)."""
    if n is not None and got < n:
        print(f"warning: {where}: {n} asked for, but only {got} can be drawn{why}; all {got} are used", file=sys.stderr)


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
