"""SetFit's contrastive stage (Tunstall et al., 2022, "Efficient Few-Shot Learning Without Prompts"): pairs of
labelled sentences, same class (for sets of labels: a label shared) -> target 1, else 0, and the cosine-similarity
regression between their sentence embeddings (sentence-transformers' CosineSimilarityLoss).

The pairs follow setfit 1.2.0's `ContrastiveDataset` with `num_iterations` (every unordered pair, self-pairs
included, shuffled once; `num_iterations * N` positives and as many negatives, cycling through each list,
interleaved positive / negative). Written here rather than imported because setfit's sampler draws with a fixed
RandomState(42) whatever the run's seed (so seeds would differ only by their labels), and because importing
setfit pulls in `evaluate` at module load (models/sentence.py explains the stand-in used for the baseline).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def contrastive_pairs(labels: np.ndarray, num_iterations: int, seed: int) -> np.ndarray:
    """labels: (N,) class ids, or (N, L) 0/1 sets of labels, where a pair is "same" when the two share a label
    (setfit 1.x's multilabel pairs). -> (2 * num_iterations * N, 3) int rows (i, j, same class?), positives and
    negatives interleaved; every pair is drawn from the N rows only. With one class there are no negatives:
    the pairs are positives alone (and vice versa)."""
    y = np.asarray(labels)
    n = len(y)
    i, j = np.triu_indices(n)  # with replacement, as setfit's default: (a, a) is a positive pair
    order = np.random.default_rng(seed).permutation(len(i))
    i, j = i[order], j[order]
    same = (y[i] == y[j]) if y.ndim == 1 else np.logical_and(y[i], y[j]).any(1)
    lists = [np.stack([i[m], j[m], np.full(int(m.sum()), t)], 1) for m, t in ((same, 1), (~same, 0))]
    want = num_iterations * n
    cycled = [np.resize(rows, (want, 3)) if len(rows) else rows for rows in lists]
    pos, neg = cycled
    if not len(neg) or not len(pos):
        return pos if len(pos) else neg
    out = np.empty((2 * want, 3), dtype=np.int64)
    out[0::2], out[1::2] = pos, neg
    return out


def cosine_similarity_loss(u: torch.Tensor, v: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between cos(u, v) and the target (1 same class, 0 other): sentence-transformers'
    CosineSimilarityLoss, SetFit's default. u, v: (B, D) sentence embeddings; target: (B,). -> scalar"""
    return F.mse_loss(F.cosine_similarity(u.float(), v.float(), dim=-1), target.float())
