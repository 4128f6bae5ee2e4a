"""Adapting a sentence encoder to the user's unlabelled text: TSDAE or SimCSE over any HF encoder folder, through
the one pretraining skeleton (run.py: budgets, resume, bf16, progress). The output is the encoder as a standard
HF folder that `AutoModel` loads, with the sentence-transformers layout beside it.

TSDAE's loss is sentence-transformers' `DenoisingAutoEncoderLoss` (models/sentence.tsdae_loss); its trainer is
not used because it neither resumes mid-run nor runs bf16 on a CPU, which this loop does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from warmstart.config import PretrainConfig
from warmstart.data.sources import CorpusSources
from warmstart.data.text import split_documents_for_validation
from warmstart.engine.checkpoint import save_hf
from warmstart.engine.distributed import Cluster
from warmstart.engine.loop import LoopState
from warmstart.engine.runtime import autocast, to_device
from warmstart.errors import WarmstartError
from warmstart.models.common import describe
from warmstart.models.sentence import folder_pooling, load_sentence_encoder, tsdae_loss, write_sentence_layout
from warmstart.objectives.sentence import cut_tokens, delete_words, simcse_loss
from warmstart.pretraining.run import run

STATE = "adaptation_state.safetensors"  # every trained weight (TSDAE's decoder too), for --resume


def corpus_sentences(cfg: PretrainConfig) -> list[str]:
    """Every segment (a line or paragraph) of the corpus with a word in it: the sentences to adapt on."""
    sentences = [seg for doc in CorpusSources(cfg.corpus.sources, cfg.corpus.text_column,
                                              tuple(cfg.corpus.exclude_splits)) for seg in doc if seg.strip()]
    if len(sentences) < 2:
        raise WarmstartError(f"corpus.sources: {len(sentences)} sentence(s); adaptation needs at least 2")
    return sentences


class SentenceBatches:
    """Batches of sentences in a seeded order per epoch, noised and tokenised from (seed, epoch, index) alone, so
    a resumed run sees exactly the batches it would have seen."""

    def __init__(self, sentences: list[str], ids: np.ndarray, tokenizer, cfg: PretrainConfig, seed: int):
        self.sentences, self.ids, self.tokenizer, self.seed = sentences, ids, tokenizer, seed
        self.name, self.deletion = cfg.objective.name, cfg.objective.deletion
        self.batch_size, self.max_len = min(cfg.train.batch_size, len(ids)), cfg.model.max_seq_len
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)

    def _tokens(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_len, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def batch(self, epoch: int, index: int) -> dict:
        """-> the objective's tensors and `tokens`, the encoder input's real tokens as a plain number (counted
        here, on the host: read from a GPU batch it would wait for the device)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.ids)
        texts = [self.sentences[i] for i in order[index * self.batch_size:(index + 1) * self.batch_size]]
        rng = np.random.default_rng([self.seed, epoch, index, 1])
        if self.name == "tsdae":  # the encoder sees the damaged sentence, the decoder rebuilds the whole one
            source = self._tokens([delete_words(t, self.deletion, rng) for t in texts])
            target = self._tokens(texts)
            return {**source, "target_ids": target["input_ids"], "target_mask": target["attention_mask"],
                    "tokens": int(source["attention_mask"].sum())}
        whole = self._tokens(texts)  # simcse: two views, each with its own cut tokens (and dropout)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        pad = self.tokenizer.pad_token_id or 0
        a = cut_tokens(whole["input_ids"], whole["attention_mask"], self.special, pad, self.deletion, gen)
        b = cut_tokens(whole["input_ids"], whole["attention_mask"], self.special, pad, self.deletion, gen)
        return {"input_ids": a[0], "attention_mask": a[1], "view_ids": b[0], "view_mask": b[1],
                "tokens": int(a[1].sum())}

    def __len__(self) -> int:
        return len(self.ids) // self.batch_size

    def iterate(self, epoch: int = 0, index: int = 0):
        while True:
            for i in range(index, len(self)):
                yield epoch, i, self.batch(epoch, i)
            epoch, index = epoch + 1, 0


class SentenceAdaptation:
    """The sentence-encoder job the skeleton runs (see run.Job)."""

    unit = "tokens"

    def __init__(self, cfg: PretrainConfig, group: Cluster, resume_dir: Path, resume: bool, bf16: bool):
        if group.world > 1:
            raise WarmstartError(f"objective.name={cfg.objective.name} runs in one process; launch it without "
                                 "torchrun / accelerate")
        if cfg.train.compile:
            raise WarmstartError(f"train.compile is not supported for objective.name={cfg.objective.name}")
        resolve_pooling(cfg)  # run_sentence_adaptation has, where the run came through it
        self.cfg, self.bf16, obj = cfg, bf16, cfg.objective
        sentences = corpus_sentences(cfg)  # before the model: a bad corpus is one line, at once
        torch.manual_seed(cfg.train.seed)
        self.encoder = load_sentence_encoder(cfg.model.init, obj.pooling, cfg.model.max_seq_len,
                                             cfg.model.trust_pickled_weights)
        self.tokenizer = self.encoder.tokenizer
        # model.keep_init: the start's weights, kept on the CPU to mix into the saved encoder (a copy of the body:
        # 90 MB for MiniLM); taken before a resumed state is loaded, so a resumed run mixes with the same start
        self.start = {k: v.detach().cpu().clone() for k, v in self.encoder.transformers_model.state_dict().items()} \
            if cfg.model.keep_init else None
        # TSDAE: the loss module holds the encoder and its tied decoder; one optimizer over both
        self.model = tsdae_loss(self.encoder) if obj.name == "tsdae" else self.encoder
        self.data_key = hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:24]
        # TSDAE's held-out reconstruction loss says when the text is over-fitted. SimCSE's cannot: MiniLM as
        # shipped already matches every held-out pair (match rate 1.000, loss 0.0007-0.0047 at step 0 on the
        # four dev tasks of benchmarks/results/domain_adaptation.md), so its cap is train.max_epochs instead.
        self.watch = ("val_loss", "min") if obj.name == "tsdae" else None
        # the held-out share grows on a small corpus only where early stopping follows it
        floor = cfg.corpus.min_validation_tokens if self.watch and cfg.train.patience else 0
        train_ids, val_ids = split_documents_for_validation(len(sentences), cfg.corpus.validation_fraction,
                                                            cfg.corpus.max_validation_documents, cfg.train.seed,
                                                            np.array([len(s.split()) for s in sentences])
                                                            if floor else None, floor)
        self.data = SentenceBatches(sentences, train_ids, self.tokenizer, cfg, cfg.train.seed)
        self.val = SentenceBatches(sentences, val_ids, self.tokenizer, cfg, cfg.train.seed + 1) \
            if len(val_ids) >= 2 else None
        self.batches_per_epoch = len(self.data)  # train.max_epochs counts these
        self.steps_per_pass = max(1, self.batches_per_epoch // cfg.train.grad_accum)
        self.setup_seconds = 0.0
        if resume:
            load_model(self.model, str(resume_dir / STATE), strict=False)
        self._description = (f"{describe(self.encoder.transformers_model)}; {obj.name.upper()} on "
                             f"{len(sentences):,} sentences ({len(val_ids)} held out), {obj.pooling} pooling, "
                             f"batch {cfg.train.batch_size}x{cfg.train.grad_accum}")

    def describe(self) -> str:
        return self._description

    def _embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.encoder({"input_ids": ids, "attention_mask": mask})["sentence_embedding"]  # (B, H)

    def objective(self, batch: dict) -> dict:
        if self.cfg.objective.name == "tsdae":
            source = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            target = {"input_ids": batch["target_ids"], "attention_mask": batch["target_mask"]}
            return {"loss": self.model([source, target], None)}
        return simcse_loss(self._embed(batch["input_ids"], batch["attention_mask"]),
                           self._embed(batch["view_ids"], batch["view_mask"]), self.cfg.objective.temperature)

    def batches(self, state: LoopState):
        return self.data.iterate(state.epoch, state.index)

    def count(self, batch: dict) -> int:
        return batch["tokens"]

    def step(self, forward, batch: dict, progress: float) -> dict:
        return forward(batch)

    @torch.no_grad()
    def evaluate(self, forward) -> dict:
        """The held-out sentences' loss (and SimCSE's match rate), same noise every time; dropout off."""
        if self.val is None:
            return {}
        self.model.eval()
        sums: dict[str, float] = {}
        n = min(len(self.val), 10)
        for i in range(n):
            with autocast(self.bf16):
                out = forward(to_device(self.val.batch(0, i)))
            for k, v in out.items():
                sums[f"val_{k}"] = sums.get(f"val_{k}", 0.0) + float(v)
        self.model.train()
        return {k: round(v / max(1, n), 4) for k, v in sums.items()}

    def gather(self) -> dict:
        return {"encoder": {k: v.detach().cpu() for k, v in self.encoder.transformers_model.state_dict().items()}}

    def write(self, folder: Path, whole: dict, files: dict[str, str], final: bool) -> None:
        body = self.encoder.transformers_model
        weights = whole["encoder"]
        if final and self.start is not None:  # checkpoint-last keeps the unmixed weights, so a resume continues them
            weights = mix_weights(weights, self.start, self.cfg.model.keep_init)
        save_hf(folder, body, self.tokenizer, files, state_dict=weights)
        write_sentence_layout(folder, self.cfg.model.init, self.cfg.objective.pooling, self.cfg.model.max_seq_len,
                              body.config.hidden_size)
        if not final:  # shared (tied) weights once each: safetensors' save_model handles them
            save_model(self.model, str(folder / STATE))

    def rng_state(self) -> dict:
        return {}

    def load_rng_state(self, saved: dict) -> None:
        pass

    def summary(self, state: LoopState) -> dict:
        epochs = round(state.epoch + state.index / max(1, len(self.data)), 2)
        # keep_init: the saved encoder is the mix; the val_* figures are the adapted weights' before mixing
        return {"sentences": len(self.data.sentences), "epochs": epochs,
                **({"keep_init": self.cfg.model.keep_init} if self.start is not None else {})}


def mix_weights(adapted: dict[str, torch.Tensor], start: dict[str, torch.Tensor],
                keep: float) -> dict[str, torch.Tensor]:
    """keep x start + (1 - keep) x adapted, tensor by tensor (Wortsman et al., 2022, "Robust fine-tuning of
    zero-shot models": WiSE-FT). Measured on four dev tasks (benchmarks/results/domain_adaptation.md): SimCSE's
    full step cost SetFit 12.6 points on WordNet glosses, half of it 0.8, while keeping most of the gain on RT and
    ACL (+1.9 -> +1.5, +3.3 -> +2.1). Integer buffers (position ids) are copied, not mixed."""
    return {k: (keep * start[k].float() + (1 - keep) * v.float()).to(v.dtype) if v.is_floating_point() else v
            for k, v in adapted.items()}


def resolve_pooling(cfg: PretrainConfig) -> None:
    """`objective.pooling: auto` -> the init's own (a sentence-transformers folder's mean or cls), else mean; in
    place."""
    if cfg.objective.pooling == "auto":
        cfg.objective.pooling = (folder_pooling(cfg.model.init) if Path(cfg.model.init).is_dir() else None) or "mean"


def run_sentence_adaptation(cfg: PretrainConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Adapt `cfg.model.init` with TSDAE or SimCSE; write the encoder (HF + sentence-transformers layout)."""
    inputs = {"model.init": cfg.model.init, **{f"corpus.sources[{i}]": s for i, s in enumerate(cfg.corpus.sources)}}
    resolve_pooling(cfg)  # before the run records its config (a resumed run compares the same)
    return run(cfg, SentenceAdaptation, inputs, resume, overwrite)
