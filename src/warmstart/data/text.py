"""Text pipeline: tokenizer training, the pre-tokenised token cache, and pretraining batches.

Batches come in two shapes:
  - packed (no NSP): documents concatenated with [SEP] between them and cut into full blocks of
    `seq_len`, so no token is padding (RoBERTa's FULL-SENTENCES, cramming's default);
  - NSP pairs: `[CLS] A [SEP] B [SEP]` where B is the true continuation of A in the same document
    (label 0) or a span of another document (label 1), 50/50; batches are length-bucketed so that
    short documents cost little padding.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from warmstart.data.sources import Document
from warmstart.errors import WarmstartError

CACHE_VERSION = "2"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# ---------------------------------------------------------------- tokenizer
def train_tokenizer(docs: list[Document], vocab_size: int, lowercase: bool = True, min_frequency: int = 2):
    """Train a BERT WordPiece tokenizer on the corpus; returns a `transformers` fast tokenizer."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    wp = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=lowercase)
    wp.train_from_iterator(
        (seg for doc in docs for seg in doc), vocab_size=vocab_size, min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS, show_progress=False,
    )
    return BertTokenizerFast(tokenizer_object=wp._tokenizer, do_lower_case=lowercase,
                             model_max_length=512, clean_up_tokenization_spaces=False)


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    folder = Path(path)
    if not folder.is_dir():
        raise WarmstartError(f"{path}: checkpoint folder not found (for the tokenizer)")
    if not any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")):
        raise WarmstartError(f"{path}: no tokenizer.json or vocab.txt; train one (tokenizer.from_checkpoint: null)")
    config = folder / "tokenizer_config.json"
    if config.is_file() and "auto_map" in config.read_text(encoding="utf-8", errors="replace"):
        raise WarmstartError(f"{config}: asks to run the checkpoint's own tokenizer code (auto_map); warmstart never "
                             "runs code from a checkpoint")
    try:
        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WarmstartError(f"{path}: cannot load its tokenizer ({first})") from None


WORD_MARKS = {"##": "continues", "\u2581": "starts", "\u0120": "starts"}  # WordPiece, SentencePiece, byte-level BPE


def word_continuation(tokenizer) -> torch.Tensor:
    """(V,) bool, True for a piece that continues the word before it, by the tokenizer's own convention:
    WordPiece marks continuations ("##ing"); SentencePiece ("\u2581the") and byte-level BPE ("\u0120the") mark word
    starts, so there an unmarked piece continues (punctuation included: it is masked with its word). Special
    tokens never continue. For whole-word masking (objectives/mlm.mask_tokens)."""
    vocab = tokenizer.get_vocab()
    counts = {mark: sum(t.startswith(mark) for t in vocab) for mark in WORD_MARKS}
    mark = max(counts, key=counts.get)
    if counts[mark] == 0:
        raise WarmstartError("objective.whole_word_mask: the tokenizer marks no word boundaries (neither WordPiece "
                             "'##', SentencePiece '\u2581' nor byte-level BPE '\u0120'); set whole_word_mask=false")
    flags = torch.zeros(len(tokenizer), dtype=torch.bool)
    special = set(tokenizer.all_special_ids)
    for token, i in vocab.items():
        if i < len(flags) and i not in special:
            flags[i] = token.startswith(mark) if WORD_MARKS[mark] == "continues" else not token.startswith(mark)
    return flags


# ---------------------------------------------------------------- token cache
@dataclass
class TokenCorpus:
    """A tokenised corpus in three flat arrays (memory-mapped from the cache)."""

    tokens: np.ndarray  # (N,) token ids of every segment, concatenated
    seg_starts: np.ndarray  # (S+1,) offsets of segments into tokens
    doc_starts: np.ndarray  # (D+1,) offsets of documents into segments
    key: str = ""  # content hash of corpus and tokenizer (the cache folder's name): resume compares it

    @property
    def num_docs(self) -> int:
        return len(self.doc_starts) - 1

    def doc_segments(self, d: int) -> list[np.ndarray]:
        s0, s1 = self.doc_starts[d], self.doc_starts[d + 1]
        return [self.tokens[self.seg_starts[s]:self.seg_starts[s + 1]] for s in range(s0, s1)]

    def doc_tokens(self, d: int) -> np.ndarray:
        s0, s1 = self.doc_starts[d], self.doc_starts[d + 1]
        return self.tokens[self.seg_starts[s0]:self.seg_starts[s1]]

    def doc_token_counts(self) -> np.ndarray:
        """(D,) number of tokens of each document."""
        return np.diff(np.asarray(self.seg_starts)[np.asarray(self.doc_starts)])


def corpus_key(docs: Iterable[Document], tokenizer) -> str:
    """Content hash of corpus and tokenizer: the cache is reused exactly when neither changed."""
    h = hashlib.sha256(CACHE_VERSION.encode())
    h.update(tokenizer.backend_tokenizer.to_str().encode())
    for doc in docs:
        for seg in doc:
            h.update(seg.encode())
            h.update(b"\n")
        h.update(b"\x1e")
    return h.hexdigest()[:24]


def _chunks(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    chunk: list[Document] = []
    for doc in docs:
        chunk.append(doc)
        if sum(map(len, chunk)) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build_token_cache(docs: Iterable[Document], tokenizer, cache_dir: str | Path, chunk: int = 4096) -> TokenCorpus:
    """Tokenise once into `cache_dir/<key>/` and memory-map it; reused while corpus and tokenizer are unchanged.

    `docs` is read twice (hash, then tokenise), streaming: a list, or a re-iterable such as `CorpusSources`.
    Memory stays bounded by `chunk` segments of text plus 16 bytes per segment and per document (offsets);
    the tokens go straight to disk, and the folder appears only when complete (written aside, renamed).
    """
    folder = Path(cache_dir) / corpus_key(docs, tokenizer)
    if not (folder / "tokens.bin").exists():
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        dtype = np.uint16 if len(tokenizer) < 2**16 else np.int32
        seg_lengths, doc_lengths = array("q"), array("q")
        with open(tmp / "tokens.bin", "wb") as out, tqdm(desc="tokenising", unit=" docs", leave=False) as bar:
            for part in _chunks(docs, chunk):
                segments = [seg for doc in part for seg in doc]
                for e in tokenizer.backend_tokenizer.encode_batch(segments, add_special_tokens=False):
                    seg_lengths.append(len(e.ids))
                    out.write(np.asarray(e.ids, dtype=dtype).tobytes())
                doc_lengths.extend(len(doc) for doc in part)
                bar.update(len(part))
        if not doc_lengths:
            shutil.rmtree(tmp)
            raise WarmstartError("empty corpus: no documents to tokenise")
        np.save(tmp / "seg_starts.npy", np.concatenate([[0], np.cumsum(np.frombuffer(seg_lengths, np.int64))]))
        np.save(tmp / "doc_starts.npy", np.concatenate([[0], np.cumsum(np.frombuffer(doc_lengths, np.int64))]))
        (tmp / "dtype").write_text(np.dtype(dtype).name)
        if folder.exists():  # another process won the race; theirs is identical
            shutil.rmtree(tmp)
        else:
            tmp.rename(folder)
    dtype = np.dtype((folder / "dtype").read_text())
    tokens = np.memmap(folder / "tokens.bin", dtype=dtype, mode="r") if (folder / "tokens.bin").stat().st_size \
        else np.zeros(0, dtype=dtype)  # numpy cannot map an empty file
    return TokenCorpus(tokens, *(np.load(folder / f"{n}.npy", mmap_mode="r") for n in ("seg_starts", "doc_starts")),
                       key=folder.name)


# a small corpus's held-out share may grow to this fraction of its documents to reach `min_tokens`. Measured on
# 45k words (benchmarks/results/small_corpus.md, two pretraining seeds): 10% made the held-out loss exact but cost
# 2.1 fine-tuned points in lost text; 5% fine-tunes level with the whole budget and stops at two thirds of it
MAX_GROWN_SHARE = 0.05


def split_documents_for_validation(num_docs: int, fraction: float, cap: int, seed: int,
                                   lengths: np.ndarray | None = None,
                                   min_tokens: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded document-level split -> (train_doc_ids, validation_doc_ids).

    `fraction` of the documents are held out, at most `cap`. With `lengths` ((D,) tokens per document) the
    held-out share grows until it holds `min_tokens`, up to MAX_GROWN_SHARE of the documents (still at most
    `cap`): on a 45k-word corpus 1% is 24 snippets, one noisy batch, and early stopping follows that loss
    (benchmarks/results/small_corpus.md). Growing only extends the same seeded order, so a large corpus's split
    is unchanged."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(num_docs)
    n_val = int(round(num_docs * fraction)) if num_docs > 1 else 0
    if lengths is not None and min_tokens > 0 and num_docs > 1 and fraction > 0:
        held = np.cumsum(np.asarray(lengths)[order])
        needed = int(np.searchsorted(held, min_tokens)) + 1  # documents until the held-out text reaches min_tokens
        # 5% of under 20 documents is none: a file of one snippet a line and no blank lines is one document cut
        # into pieces of 256 lines (12 for 2,940 reviews), and held nothing out, so nothing stopped its
        # over-fitting; one of 10 or more (at most a tenth) is held out instead
        grown = max(int(num_docs * MAX_GROWN_SHARE), 1 if num_docs >= 10 else 0)
        n_val = max(n_val, min(needed, grown))
    n_val = min(cap, n_val)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# ---------------------------------------------------------------- pretraining examples
class PackedEpoch:
    """One epoch of packed blocks, built on demand: documents in a seeded order, [SEP]-joined into a virtual
    stream that is cut into `[CLS] ... [SEP]` blocks at a seeded offset. Only per-document offsets live in
    memory (16 bytes a document), so memory stays flat however large the corpus."""

    def __init__(self, corpus: TokenCorpus, doc_ids: np.ndarray, seq_len: int, cls_id: int, sep_id: int,
                 rng: np.random.Generator):
        self.corpus, self.seq_len, self.cls_id, self.sep_id = corpus, seq_len, cls_id, sep_id
        self.order = rng.permutation(doc_ids)
        self.lengths = corpus.doc_token_counts()[self.order] + 1  # each document is followed by [SEP]
        self.ends = np.cumsum(self.lengths)
        total = int(self.ends[-1]) if len(self.ends) else 0
        self.body = seq_len - 2
        self.num_blocks = total // self.body
        if self.num_blocks == 0:
            raise WarmstartError(f"corpus too small: {total} tokens, fewer than one block of {seq_len}")
        self.start = int(rng.integers(0, total - self.num_blocks * self.body + 1))  # a new cut each epoch

    def __len__(self) -> int:
        return self.num_blocks

    def block(self, i: int) -> np.ndarray:
        """-> (seq_len,) int64: [CLS], `seq_len - 2` tokens of the stream, [SEP]."""
        out = np.empty(self.seq_len, dtype=np.int64)
        out[0], out[-1] = self.cls_id, self.sep_id
        pos, stop, filled = self.start + i * self.body, self.start + (i + 1) * self.body, 1
        k = int(np.searchsorted(self.ends, pos, side="right"))
        while pos < stop:
            doc_start = int(self.ends[k] - self.lengths[k])
            toks = self.corpus.doc_tokens(int(self.order[k]))
            take = toks[pos - doc_start:min(stop, int(self.ends[k]) - 1) - doc_start]
            out[filled:filled + len(take)] = take
            filled, pos = filled + len(take), pos + len(take)
            if pos < stop and pos == self.ends[k] - 1:  # the separator after document k
                out[filled] = self.sep_id
                filled, pos = filled + 1, pos + 1
            k += 1
        return out


def packed_blocks(corpus: TokenCorpus, doc_ids: np.ndarray, seq_len: int, cls_id: int, sep_id: int,
                  rng: np.random.Generator) -> np.ndarray:
    """All blocks of one packed epoch at once. -> (B, seq_len)"""
    epoch = PackedEpoch(corpus, doc_ids, seq_len, cls_id, sep_id, rng)
    return np.stack([epoch.block(i) for i in range(len(epoch))])


@dataclass
class NspExample:
    input_ids: np.ndarray  # [CLS] A [SEP] B [SEP]
    len_a: int  # tokens up to and including the first [SEP]
    is_random_next: int  # NSP label: 0 = B follows A in the same document, 1 = B is from another document


def _truncate_pair(a: list[int], b: list[int], max_tokens: int) -> None:
    """Trim the longer side; A loses its start and B its end, so a true pair stays contiguous."""
    while len(a) + len(b) > max_tokens:
        if len(a) > len(b):
            a.pop(0)
        else:
            b.pop()


def nsp_examples(corpus: TokenCorpus, doc_ids: np.ndarray, seq_len: int, cls_id: int, sep_id: int,
                 rng: np.random.Generator) -> Iterator[NspExample]:
    """BERT's sentence-pair construction. Each document is cut into chunks of about `seq_len` tokens; each
    chunk gives one pair: with p=0.5 A is a prefix and B the rest (true next, split at a segment boundary,
    or inside the segment when the chunk has only one), else B is a random span of another document."""
    target = seq_len - 3
    if len(doc_ids) < 2:
        raise WarmstartError("NSP needs at least 2 documents; add text or set objective.nsp=false")
    for d in rng.permutation(doc_ids):
        segs = [list(map(int, s)) for s in corpus.doc_segments(d) if len(s)]
        chunk: list[list[int]] = []
        for i, seg in enumerate(segs):
            chunk.append(seg)
            if i < len(segs) - 1 and sum(map(len, chunk)) < target:
                continue
            is_next = rng.random() < 0.5
            if len(chunk) >= 2:
                cut = int(rng.integers(1, len(chunk)))
                a = [t for s in chunk[:cut] for t in s]
                b_true = [t for s in chunk[cut:] for t in s]
            else:
                flat = chunk[0]
                cut = int(rng.integers(1, len(flat))) if len(flat) >= 2 else len(flat)
                a, b_true = flat[:cut], flat[cut:]
            if is_next and b_true:
                b = b_true
            else:
                other = int(rng.choice(doc_ids))
                while other == d:
                    other = int(rng.choice(doc_ids))
                toks = corpus.doc_tokens(other)
                start = int(rng.integers(0, max(1, len(toks) - (target - len(a)))))
                b = list(map(int, toks[start:start + max(1, target - len(a))]))
                is_next = False
            _truncate_pair(a, b, target)
            if a and b:
                ids = np.array([cls_id, *a, sep_id, *b, sep_id], dtype=np.int64)
                yield NspExample(ids, len(a) + 2, int(not is_next))
            chunk = []


def collate_nsp(examples: list[NspExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest pair in the batch. -> input_ids/token_type_ids/attention_mask (B, T), nsp_labels (B,)"""
    t = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), t), pad_id, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.from_numpy(e.input_ids)
        types[i, e.len_a:n] = 1
        mask[i, :n] = 1
    labels = torch.tensor([e.is_random_next for e in examples], dtype=torch.long)
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "nsp_labels": labels}


class PretrainBatches:
    """Epochs of pretraining batches, reproducible from (seed, epoch, index) so a run resumes exactly."""

    def __init__(self, corpus: TokenCorpus, doc_ids: np.ndarray, tokenizer, seq_len: int, batch_size: int,
                 nsp: bool, seed: int, whole: bool = False):
        """`whole`: sentence pairs in whole batches only (a compiled step takes one shape): an epoch's last, short
        batch is left out, unless it is the epoch's only one (packed blocks always come whole)."""
        self.corpus, self.doc_ids, self.seq_len, self.batch_size = corpus, doc_ids, seq_len, batch_size
        self.nsp, self.seed, self.whole = nsp, seed, whole
        self.cls_id, self.sep_id, self.pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id

    def epoch(self, epoch: int, start_index: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of one epoch from `start_index` on, built lazily (memory independent of corpus size)."""
        rng = np.random.default_rng([self.seed, epoch])
        bs = self.batch_size
        if not self.nsp:
            packed = PackedEpoch(self.corpus, self.doc_ids, self.seq_len, self.cls_id, self.sep_id, rng)
            if len(packed) < bs:  # a tiny corpus: one short batch
                yield {"input_ids": torch.from_numpy(np.stack([packed.block(i) for i in range(len(packed))]))}
                return
            for b in range(start_index, len(packed) // bs):
                yield {"input_ids": torch.from_numpy(np.stack([packed.block(b * bs + i) for i in range(bs)]))}
            return
        # Length-bucketing: sort windows of 50 batches' worth of pairs by length, shuffle the window's batches.
        index, window = 0, []
        examples = nsp_examples(self.corpus, self.doc_ids, self.seq_len, self.cls_id, self.sep_id, rng)
        for example in itertools.chain(examples, [None]):
            if example is not None:
                window.append(example)
                if len(window) < 50 * bs:
                    continue
            part = sorted(window, key=lambda e: len(e.input_ids))
            batches = [part[i:i + bs] for i in range(0, len(part), bs)]
            if self.whole and len(batches[-1]) < bs and (index or len(batches) > 1):
                batches.pop()  # only the last window is short: a full one holds 50 batches exactly
            for i in rng.permutation(len(batches)):
                if index >= start_index:
                    yield collate_nsp(batches[i], self.pad_id)
                index += 1
            window = []

    def iterate(self, start_epoch: int = 0, start_index: int = 0) -> Iterator[tuple[int, int, dict]]:
        """Endless (epoch, index, batch) stream starting at a saved position."""
        epoch, index = start_epoch, start_index
        while True:
            for i, batch in enumerate(self.epoch(epoch, index), start=index):
                yield epoch, i, batch
            epoch, index = epoch + 1, 0
