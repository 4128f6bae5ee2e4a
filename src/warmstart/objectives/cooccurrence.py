"""Word embeddings from corpus co-occurrence, solved in closed form: truncated SVD of the positive PMI matrix.

Skip-gram with negative sampling implicitly factorises this shifted PMI matrix (Levy & Goldberg, 2014), so
a few seconds of counting and one randomized SVD give the distributional word vectors that an MLM needs
thousands of CPU steps to discover (at a 10-minute CPU budget, BERT's MLM is still on its unigram plateau).
Used to initialise the encoder's word embeddings (tied to the MLM decoder) before MLM/ELECTRA training.
No library computes PPMI-SVD over a token-id stream (gensim trains SGNS, scikit-learn has the SVD only),
so the counting is written here with scipy.sparse; the SVD is scikit-learn's.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp


def cooccurrence_counts(docs: Iterable[np.ndarray], vocab_size: int, window: int,
                        chunk: int = 5_000_000) -> sp.csr_matrix:
    """(V, V) symmetric counts of token pairs at distance <= `window` within a document, weighted 1/distance
    (GloVe's harmonic weighting). Documents are counted in slices of about `chunk` tokens (bounded memory)."""
    pad = np.full(window, vocab_size, dtype=np.int64)  # a sentinel id between documents: no cross-document pairs
    counts = sp.csr_matrix((vocab_size + 1, vocab_size + 1), dtype=np.float64)

    def add(parts: list[np.ndarray]) -> sp.csr_matrix:
        t = np.concatenate(parts)
        rows, cols, vals = [], [], []
        for k in range(1, window + 1):
            a, b = t[:-k], t[k:]
            rows += [a, b]
            cols += [b, a]
            vals += [np.full(len(a), 1.0 / k)] * 2
        return sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=counts.shape).tocsr()

    parts: list[np.ndarray] = []
    size = 0
    for doc in docs:
        parts += [np.asarray(doc, dtype=np.int64), pad]
        size += len(doc) + window
        if size >= chunk:
            counts, parts, size = counts + add(parts), [], 0
    if parts:
        counts = counts + add(parts)
    return counts[:vocab_size, :vocab_size].tocsr()


def ppmi(counts: sp.csr_matrix, context_smoothing: float = 0.75) -> sp.csr_matrix:
    """Positive PMI with context-distribution smoothing (cds 0.75, as in word2vec's negative sampling)."""
    total = counts.sum()
    if total == 0:
        return counts
    word_p = np.asarray(counts.sum(1)).ravel() / total
    ctx = np.asarray(counts.sum(0)).ravel() ** context_smoothing
    ctx_p = ctx / ctx.sum()
    c = counts.tocoo()
    pmi = np.log(c.data / total / (word_p[c.row] * ctx_p[c.col]))
    keep = pmi > 0
    return sp.csr_matrix((pmi[keep], (c.row[keep], c.col[keep])), shape=counts.shape)


def ppmi_svd_embeddings(docs: Iterable[np.ndarray], vocab_size: int, dim: int, window: int = 5,
                        std: float = 0.02, seed: int = 0) -> np.ndarray:
    """(V, dim) word vectors U sqrt(S) of the PPMI matrix, rescaled to the encoder's init std.

    Tokens that never occur get small random vectors; with fewer SVD components than `dim` (tiny
    vocabularies) the remaining columns are random too."""
    matrix = ppmi(cooccurrence_counts(docs, vocab_size, window))
    rng = np.random.default_rng(seed)
    out = rng.normal(0.0, std, size=(vocab_size, dim))
    k = min(dim, vocab_size - 1)
    if matrix.nnz == 0 or k < 1:
        return out.astype(np.float32)
    # imported here: scikit-learn costs about 0.6 s to import, and every pretraining process imports this module
    from sklearn.utils.extmath import randomized_svd

    u, s, _ = randomized_svd(matrix, k, random_state=seed)
    vectors = u * np.sqrt(s)
    seen = np.asarray(matrix.sum(1)).ravel() > 0
    out[seen, :k] = vectors[seen] * (std / max(vectors[seen].std(), 1e-12))
    return out.astype(np.float32)
