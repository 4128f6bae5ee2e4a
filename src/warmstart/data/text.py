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
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from warmstart.data.sources import Document
from warmstart.errors import WarmstartError

CACHE_VERSION = "1"
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
    return AutoTokenizer.from_pretrained(str(folder))


# ---------------------------------------------------------------- token cache
@dataclass
class TokenCorpus:
    """A tokenised corpus in three flat arrays (memory-mapped from the cache)."""

    tokens: np.ndarray  # (N,) token ids of every segment, concatenated
    seg_starts: np.ndarray  # (S+1,) offsets of segments into tokens
    doc_starts: np.ndarray  # (D+1,) offsets of documents into segments

    @property
    def num_docs(self) -> int:
        return len(self.doc_starts) - 1

    def doc_segments(self, d: int) -> list[np.ndarray]:
        s0, s1 = self.doc_starts[d], self.doc_starts[d + 1]
        return [self.tokens[self.seg_starts[s]:self.seg_starts[s + 1]] for s in range(s0, s1)]

    def doc_tokens(self, d: int) -> np.ndarray:
        s0, s1 = self.doc_starts[d], self.doc_starts[d + 1]
        return self.tokens[self.seg_starts[s0]:self.seg_starts[s1]]


def corpus_key(docs: list[Document], tokenizer) -> str:
    """Content hash of corpus and tokenizer: the cache is reused exactly when neither changed."""
    h = hashlib.sha256(CACHE_VERSION.encode())
    h.update(tokenizer.backend_tokenizer.to_str().encode())
    for doc in docs:
        for seg in doc:
            h.update(seg.encode())
            h.update(b"\n")
        h.update(b"\x1e")
    return h.hexdigest()[:24]


def build_token_cache(docs: list[Document], tokenizer, cache_dir: str | Path, chunk: int = 4096) -> TokenCorpus:
    """Tokenise once into `cache_dir/<key>/`, written in chunks (bounded memory) and renamed atomically."""
    folder = Path(cache_dir) / corpus_key(docs, tokenizer)
    if not (folder / "tokens.npy").exists():
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        dtype = np.uint16 if len(tokenizer) < 2**16 else np.int32
        segments = [seg for doc in docs for seg in doc]
        lengths = np.zeros(len(segments), dtype=np.int64)
        with open(tmp / "tokens.bin", "wb") as out:
            for i in tqdm(range(0, len(segments), chunk), desc="tokenising", unit="chunk", leave=False):
                enc = tokenizer.backend_tokenizer.encode_batch(segments[i:i + chunk], add_special_tokens=False)
                for j, e in enumerate(enc):
                    lengths[i + j] = len(e.ids)
                    out.write(np.asarray(e.ids, dtype=dtype).tobytes())
        tokens = np.fromfile(tmp / "tokens.bin", dtype=dtype)
        np.save(tmp / "tokens.npy", tokens)
        (tmp / "tokens.bin").unlink()
        np.save(tmp / "seg_starts.npy", np.concatenate([[0], np.cumsum(lengths)]))
        np.save(tmp / "doc_starts.npy", np.concatenate([[0], np.cumsum([len(d) for d in docs])]))
        if folder.exists():  # another process won the race; theirs is identical
            shutil.rmtree(tmp)
        else:
            tmp.rename(folder)
    return TokenCorpus(*(np.load(folder / f"{n}.npy", mmap_mode="r") for n in ("tokens", "seg_starts", "doc_starts")))


def split_documents_for_validation(num_docs: int, fraction: float, cap: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded document-level split -> (train_doc_ids, validation_doc_ids)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(num_docs)
    n_val = min(cap, int(round(num_docs * fraction))) if num_docs > 1 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# ---------------------------------------------------------------- pretraining examples
def packed_blocks(corpus: TokenCorpus, doc_ids: np.ndarray, seq_len: int, cls_id: int, sep_id: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Documents in a seeded order, [SEP]-joined and cut into `[CLS] ... [SEP]` blocks. -> (B, seq_len)"""
    parts: list[np.ndarray] = []
    sep = np.array([sep_id], dtype=np.int64)
    for d in rng.permutation(doc_ids):
        parts += [np.asarray(corpus.doc_tokens(d), dtype=np.int64), sep]
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    body = seq_len - 2
    n = len(stream) // body
    if n == 0:
        raise WarmstartError(f"corpus too small: {len(stream)} tokens, fewer than one block of {seq_len}")
    start = int(rng.integers(0, len(stream) - n * body + 1))  # a new cut each epoch
    blocks = stream[start:start + n * body].reshape(n, body)
    return np.concatenate([np.full((n, 1), cls_id), blocks, np.full((n, 1), sep_id)], axis=1)


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
                 rng: np.random.Generator) -> list[NspExample]:
    """BERT's sentence-pair construction. Each document is cut into chunks of about `seq_len` tokens; each
    chunk gives one pair: with p=0.5 A is a prefix and B the rest (true next, split at a segment boundary,
    or inside the segment when the chunk has only one), else B is a random span of another document."""
    target = seq_len - 3
    examples: list[NspExample] = []
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
                examples.append(NspExample(ids, len(a) + 2, int(not is_next)))
            chunk = []
    return examples


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
                 nsp: bool, seed: int):
        self.corpus, self.doc_ids, self.seq_len, self.batch_size = corpus, doc_ids, seq_len, batch_size
        self.nsp, self.seed = nsp, seed
        self.cls_id, self.sep_id, self.pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id

    def epoch(self, epoch: int) -> list[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, epoch])
        bs = self.batch_size
        if not self.nsp:
            blocks = torch.from_numpy(packed_blocks(self.corpus, self.doc_ids, self.seq_len, self.cls_id,
                                                    self.sep_id, rng))
            return [{"input_ids": blocks[i:i + bs]} for i in range(0, len(blocks) - bs + 1, bs)] or [
                {"input_ids": blocks}]
        examples = nsp_examples(self.corpus, self.doc_ids, self.seq_len, self.cls_id, self.sep_id, rng)
        # Length-bucketing: sort within windows of 50 batches, then shuffle the batches.
        batches = []
        window = 50 * bs
        for w in range(0, len(examples), window):
            part = sorted(examples[w:w + window], key=lambda e: len(e.input_ids))
            batches += [part[i:i + bs] for i in range(0, len(part), bs)]
        order = rng.permutation(len(batches))
        return [collate_nsp(batches[i], self.pad_id) for i in order]

    def iterate(self, start_epoch: int = 0, start_index: int = 0) -> Iterator[tuple[int, int, dict]]:
        """Endless (epoch, index, batch) stream starting at a saved position."""
        epoch, index = start_epoch, start_index
        while True:
            batches = self.epoch(epoch)
            for i in range(index, len(batches)):
                yield epoch, i, batches[i]
            epoch, index = epoch + 1, 0
