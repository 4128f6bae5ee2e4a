import numpy as np
import pytest

from warmstart.data.sources import load_documents
from warmstart.data.text import (
    PretrainBatches,
    build_token_cache,
    nsp_examples,
    packed_blocks,
    split_documents_for_validation,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def docs(corpus_file):
    return load_documents([str(corpus_file)])


@pytest.fixture(scope="module")
def tokenizer(docs):
    return train_tokenizer(docs, vocab_size=200, min_frequency=1)


def test_tokenizer_is_a_bert_wordpiece(tokenizer):
    assert tokenizer.cls_token == "[CLS]" and tokenizer.mask_token == "[MASK]"
    ids = tokenizer("the film was great")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id


def test_cache_reused_unless_corpus_or_tokenizer_changes(docs, tokenizer, tmp_path):
    a = build_token_cache(docs, tokenizer, tmp_path)
    assert len(list(tmp_path.iterdir())) == 1
    b = build_token_cache(docs, tokenizer, tmp_path)
    assert np.array_equal(a.tokens, b.tokens) and len(list(tmp_path.iterdir())) == 1
    build_token_cache(docs[:-1], tokenizer, tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
    other = train_tokenizer(docs, vocab_size=150, min_frequency=1)
    build_token_cache(docs, other, tmp_path)
    assert len(list(tmp_path.iterdir())) == 3
    # The cache holds exactly the tokenizer's output, segment by segment and document by document.
    assert a.num_docs == len(docs)
    assert [list(s) for s in a.doc_segments(0)] == [tokenizer(s, add_special_tokens=False)["input_ids"] for s in docs[0]]


def test_packed_blocks_have_no_padding(docs, tokenizer, tmp_path):
    corpus = build_token_cache(docs, tokenizer, tmp_path)
    rng = np.random.default_rng(0)
    blocks = packed_blocks(corpus, np.arange(corpus.num_docs), 32, tokenizer.cls_token_id, tokenizer.sep_token_id, rng)
    assert blocks.shape[1] == 32
    assert (blocks[:, 0] == tokenizer.cls_token_id).all() and (blocks[:, -1] == tokenizer.sep_token_id).all()
    assert not (blocks == tokenizer.pad_token_id).any()
    # Almost every token of the corpus is used (only the tail of the last block is cut).
    assert blocks[:, 1:-1].size > 0.9 * len(corpus.tokens)


def test_lazy_packed_blocks_equal_the_reference_stream(docs, tokenizer, tmp_path):
    """Blocks built on demand are exactly the cut of the [SEP]-joined stream of documents in seeded order."""
    corpus = build_token_cache(docs, tokenizer, tmp_path)
    cls, sep, seq_len = tokenizer.cls_token_id, tokenizer.sep_token_id, 16
    ids = np.arange(corpus.num_docs)
    rng = np.random.default_rng(5)
    order = rng.permutation(ids)
    stream = np.concatenate([np.append(corpus.doc_tokens(d), sep) for d in order])
    n = len(stream) // (seq_len - 2)
    start = int(rng.integers(0, len(stream) - n * (seq_len - 2) + 1))
    want = stream[start:start + n * (seq_len - 2)].reshape(n, seq_len - 2)
    got = packed_blocks(corpus, ids, seq_len, cls, sep, np.random.default_rng(5))
    assert np.array_equal(got[:, 1:-1], want)


def test_streamed_sources_give_the_same_cache_as_a_list(docs, tokenizer, corpus_file, tmp_path):
    from warmstart.data.sources import CorpusSources

    a = build_token_cache(docs, tokenizer, tmp_path / "a")
    b = build_token_cache(CorpusSources([str(corpus_file)]), tokenizer, tmp_path / "a")
    assert len(list((tmp_path / "a").iterdir())) == 1 and np.array_equal(a.tokens, b.tokens)


def test_nsp_pairs_are_half_true_and_true_pairs_are_consecutive(docs, tokenizer, tmp_path):
    corpus = build_token_cache(docs * 10, tokenizer, tmp_path)  # 600 documents
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    examples = list(nsp_examples(corpus, np.arange(corpus.num_docs), 32, cls, sep, np.random.default_rng(0)))
    labels = np.array([e.is_random_next for e in examples])
    assert len(examples) > 500
    assert abs(labels.mean() - 0.5) < 0.05
    doc_streams = [list(map(int, corpus.doc_tokens(d))) for d in range(corpus.num_docs)]
    for e in examples[:300]:
        ids = list(map(int, e.input_ids))
        assert ids[0] == cls and ids[e.len_a - 1] == sep and ids[-1] == sep and len(ids) <= 32
        a, b = ids[1:e.len_a - 1], ids[e.len_a:-1]
        if e.is_random_next == 0:  # B continues A inside one document
            joined = a + b
            assert any(_contains(stream, joined) for stream in doc_streams)


def _contains(stream: list[int], part: list[int]) -> bool:
    n = len(part)
    return any(stream[i:i + n] == part for i in range(len(stream) - n + 1))


def test_batches_are_reproducible_and_resume_at_a_position(docs, tokenizer, tmp_path):
    corpus = build_token_cache(docs, tokenizer, tmp_path)
    for nsp in (False, True):
        data = PretrainBatches(corpus, np.arange(corpus.num_docs), tokenizer, 32, 4, nsp, seed=3)
        stream = data.iterate()
        first = [next(stream) for _ in range(7)]
        epoch, index, _ = first[4]
        resumed = data.iterate(epoch, index)
        for want in first[4:]:
            got = next(resumed)
            assert got[:2] == want[:2] and all((got[2][k] == want[2][k]).all() for k in want[2])


@pytest.mark.parametrize("docs_used, batch, whole, sizes", [
    (None, 4, False, "a short last batch"),  # eager: every pair is used
    (None, 4, True, "whole"),  # compiled: one shape, the short last batch left out
    (2, 64, True, "one short"),  # fewer pairs than a batch: the epoch's only batch stays
])
def test_whole_batches_for_a_compiled_step(docs_used, batch, whole, sizes, docs, tokenizer, tmp_path):
    corpus = build_token_cache(docs, tokenizer, tmp_path)
    ids = np.arange(docs_used or corpus.num_docs)
    lengths = [len(b["nsp_labels"]) for b in PretrainBatches(corpus, ids, tokenizer, 32, batch, True, 3, whole).epoch(0)]
    everything = [len(b["nsp_labels"]) for b in PretrainBatches(corpus, ids, tokenizer, 32, batch, True, 3).epoch(0)]
    if sizes == "a short last batch":
        assert sum(1 for n in lengths if n < batch) == 1
    elif sizes == "whole":
        assert set(lengths) == {batch} and sum(lengths) == sum(everything) - min(everything)
    else:
        assert len(lengths) == 1 and lengths[0] < batch


def test_validation_split_is_disjoint_and_seeded():
    train, val = split_documents_for_validation(100, 0.1, 1000, seed=0)
    assert len(val) == 10 and not set(train) & set(val) and len(train) + len(val) == 100
    assert np.array_equal(val, split_documents_for_validation(100, 0.1, 1000, seed=0)[1])


@pytest.mark.parametrize("num_docs, length, min_tokens, cap, want", [
    (2400, 25, 0, 500, 24),          # the fraction alone: 1%
    (2400, 25, 6000, 500, 120),      # grows for the floor, up to 5% of the documents
    (2400, 25, 2000, 500, 80),       # grows just enough: 80 x 25 tokens = 2000
    (2400, 25, 6000, 100, 100),      # the cap still bounds it
    (100_000, 25, 16384, 500, 500),  # a large corpus: 1% is over the cap, unchanged
    (1, 25, 6000, 500, 0),           # one document: nothing held out
    (12, 6000, 16384, 500, 1),       # 5% of 12 is none: one of them (a line-per-snippet file, cut in pieces)
    (12, 6000, 0, 500, 0),           # ... only where a held-out loss is followed (min_tokens: early stopping)
    (9, 6000, 16384, 500, 0),        # under 10 documents one would be over a tenth: none
])
def test_validation_split_grows_on_a_small_corpus(num_docs, length, min_tokens, cap, want):
    lengths = np.full(num_docs, length)
    train, val = split_documents_for_validation(num_docs, 0.01, cap, 0, lengths, min_tokens)
    assert len(val) == want and len(train) + len(val) == num_docs and not set(train) & set(val)
    # growing extends the same seeded order: the fraction's documents stay held out
    assert set(split_documents_for_validation(num_docs, 0.01, cap, 0)[1]) <= set(val)
