import numpy as np

from warmstart.objectives.cooccurrence import cooccurrence_counts, ppmi, ppmi_svd_embeddings


def test_counts_are_symmetric_harmonic_and_stay_inside_documents():
    counts = cooccurrence_counts([np.array([0, 1, 2]), np.array([3, 4])], vocab_size=5, window=2).toarray()
    assert np.allclose(counts, counts.T)
    assert counts[0, 1] == 1.0 and counts[0, 2] == 0.5 and counts[3, 4] == 1.0
    assert counts[2, 3] == 0 and counts[1, 3] == 0  # no pair across the document boundary


def test_counting_in_slices_equals_counting_at_once():
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 50, size=rng.integers(1, 40)) for _ in range(100)]
    whole = cooccurrence_counts(docs, 50, 3)
    sliced = cooccurrence_counts(docs, 50, 3, chunk=64)
    assert np.allclose(whole.toarray(), sliced.toarray())


def test_ppmi_is_positive_and_sparse():
    rng = np.random.default_rng(1)
    m = ppmi(cooccurrence_counts([rng.integers(0, 30, 500)], 30, 2))
    assert (m.data > 0).all() and m.shape == (30, 30)


def test_words_sharing_contexts_get_similar_vectors():
    """Tokens 1 and 2 occur in the same contexts (after 10, before 11), token 3 elsewhere (after 20, before 21)."""
    rng = np.random.default_rng(0)
    docs = []
    for _ in range(400):
        pick = int(rng.choice([1, 2, 3]))
        left, right = (10, 11) if pick in (1, 2) else (20, 21)
        docs.append(np.array([int(rng.integers(30, 60)), left, pick, right, int(rng.integers(30, 60))]))
    emb = ppmi_svd_embeddings(docs, vocab_size=64, dim=16, window=1)
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    assert emb.shape == (64, 16) and emb.dtype == np.float32
    assert cos(emb[1], emb[2]) > 0.9 > cos(emb[1], emb[3]) + 0.5
    assert abs(emb[[1, 2, 3, 10, 11]].std() - 0.02) < 0.02  # on the encoder's init scale
