"""Text pretraining: corpus -> tokenizer -> token cache -> BERT (MLM + NSP) or ELECTRA -> HF checkpoint.

The run itself (claim, processes, resume, loop, saving) is the skeleton's (run.py); this module supplies the
data, the model, the objective step and how the encoder is written.
"""

from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from warmstart.config import PretrainConfig
from warmstart.data.sources import CorpusSources
from warmstart.data.text import (
    PretrainBatches,
    build_token_cache,
    load_tokenizer,
    split_documents_for_validation,
    train_tokenizer,
    word_continuation,
)
from warmstart.engine.checkpoint import atomic_folder, save_hf
from warmstart.engine.distributed import Cluster, barrier, full_state_dict
from warmstart.engine.loop import LoopState
from warmstart.engine.runtime import autocast, compiled, to_device
from warmstart.errors import WarmstartError
from warmstart.models.common import describe
from warmstart.models.text import build_electra, build_pretraining_model, mlm_head
from warmstart.objectives.cooccurrence import ppmi_svd_embeddings
from warmstart.objectives.electra import electra_loss
from warmstart.objectives.mlm import (
    mask_tokens,
    masked_lm_loss,
    mlm_nsp_loss,
    prediction_capacity,
    prediction_slots,
)
from warmstart.pretraining.run import run


class Masker:
    """Dynamic masking with its own seeded generator (its state is part of the resumable state)."""

    def __init__(self, tokenizer, probability: float, whole_word: bool, seed: int):
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self.mask_id, self.vocab_size, self.probability = tokenizer.mask_token_id, len(tokenizer), probability
        self.generator = torch.Generator().manual_seed(seed)
        self.continuation = word_continuation(tokenizer) if whole_word else None

    def __call__(self, input_ids: torch.Tensor, generator: torch.Generator | None = None):
        """input_ids (B, T) on the host -> (masked_ids, labels) (B, T)."""
        return mask_tokens(input_ids, self.special, self.mask_id, self.vocab_size, self.probability,
                           generator or self.generator, self.continuation)


def prepare_tokenizer(cfg: PretrainConfig, docs):
    if cfg.tokenizer.from_checkpoint or cfg.model.init:
        return load_tokenizer(cfg.tokenizer.from_checkpoint or cfg.model.init)
    return train_tokenizer(docs, cfg.tokenizer.vocab_size, cfg.tokenizer.lowercase, cfg.tokenizer.min_frequency)


@torch.no_grad()
def init_word_embeddings(encoder, how: str, corpus, doc_ids, seed: int) -> float:
    """Overwrite the (decoder-tied) word embeddings from training-document statistics (`how`: ppmi_svd, the only
    choice the schema lets through). Returns seconds spent."""
    t = time.perf_counter()
    weight = encoder.get_input_embeddings().weight
    vectors = ppmi_svd_embeddings((corpus.doc_tokens(int(d)) for d in doc_ids), weight.shape[0], weight.shape[1],
                                  std=float(weight.std()), seed=seed)
    weight.copy_(torch.from_numpy(vectors))
    seconds = time.perf_counter() - t
    print(f"warmstart pretrain: word embeddings from PPMI-SVD of the training documents ({seconds:.1f} s)")
    return seconds


@torch.no_grad()
def evaluate(model, objective_step, batches: list[dict], prepare, bf16: bool, seed: int) -> dict:
    """Held-out losses/accuracies with a fixed mask (same positions and samples at every evaluation).
    `prepare(batch, generator)`: the job's host half of a step, drawing from `generator`."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    totals: dict[str, float] = {}
    for batch in batches:
        with autocast(bf16):
            out = objective_step(tensors(to_device(prepare(batch, gen))))
        for k in ("mlm_loss", "mlm_acc", "nsp_acc", "rtd_loss", "rtd_acc"):
            if k in out:
                totals[f"val_{k}"] = totals.get(f"val_{k}", 0.0) + float(out[k])
    return {k: round(v / max(1, len(batches)), 4) for k, v in totals.items()}


def tensors(batch: dict) -> dict[str, torch.Tensor]:
    """What the objective is given: the tensors of a prepared batch (its plain numbers stay on the host, and a
    compiled objective is not specialised on them)."""
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}


def padded_to(width: int, pad_id: int, batch: dict[str, torch.Tensor], masked: torch.Tensor, labels: torch.Tensor
              ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """A padded batch and its masked ids and labels (B, T) widened to (B, `width`): ids with [PAD], token types
    and attention with 0 (not attended), labels with -100 (not predicted); (B,) tensors as they are."""
    extra = width - labels.shape[1]
    if extra <= 0:
        return batch, masked, labels
    fill = {"input_ids": pad_id, "token_type_ids": 0, "attention_mask": 0}

    def widen(t: torch.Tensor, value: int) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, extra), value=value)

    wide = {k: widen(v, fill[k]) if k in fill and v.ndim == 2 else v for k, v in batch.items()}
    return wide, widen(masked, pad_id), widen(labels, -100)


def real_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Tokens of a batch that are not padding (packed blocks have none)."""
    return int(batch["attention_mask"].sum()) if "attention_mask" in batch else int(batch["input_ids"].numel())


def nothing_held_out(num_docs: int) -> str:
    """Why no held-out loss is followed (data/text.split_documents_for_validation holds out whole documents, one of
    10 or more)."""
    why = f"{num_docs} documents, too few to hold one out" if num_docs < 10 else "too little text to hold out a loss"
    return (f": {why}, so no early stopping; blank lines between texts make each one a document, or "
            "corpus.line_by_line=true each line")


class TextPretraining:
    """The text job the skeleton runs (see run.Job)."""

    unit = "tokens"
    watch: tuple[str, str] | None = ("val_mlm_loss", "min")  # the held-out MLM loss: rises when a small corpus
    # is over-fitted. ELECTRA (set in __init__) watches nothing: its discriminator's held-out loss moves with
    # its generator's skill as much as with over-fitting

    def __init__(self, cfg: PretrainConfig, group: Cluster, resume_dir: Path, resume: bool, bf16: bool):
        tc, out = cfg.train, Path(cfg.output_dir)
        if cfg.model.head_warmup and group.sharded:
            raise WarmstartError("model.head_warmup is not supported with sharded (fsdp, deepspeed) training")
        if tc.compile and group.sharded:
            raise WarmstartError("train.compile is not supported with sharded (fsdp, deepspeed) training; "
                                 "set train.compile=false")
        self.cfg, self.group, self.bf16 = cfg, group, bf16
        docs = CorpusSources(cfg.corpus.sources, cfg.corpus.text_column, tuple(cfg.corpus.exclude_splits),
                             cfg.corpus.line_by_line)  # streamed
        if resume:
            tokenizer = load_tokenizer(str(resume_dir))
        elif group.world == 1:
            tokenizer = prepare_tokenizer(cfg, docs)
        else:  # WordPiece training is not deterministic: rank 0 trains, everyone loads that one tokenizer
            shared = out / ".tokenizer"
            if group.main:
                atomic_folder(shared, prepare_tokenizer(cfg, docs).save_pretrained)
            barrier(group.world)
            tokenizer = load_tokenizer(str(shared))
            barrier(group.world)
            if group.main:
                shutil.rmtree(shared, ignore_errors=True)
        if group.main:  # rank 0 builds the token cache, the others then map it
            corpus = build_token_cache(docs, tokenizer, cfg.corpus.cache_dir)
        barrier(group.world)
        if not group.main:
            corpus = build_token_cache(docs, tokenizer, cfg.corpus.cache_dir)
        self.tokenizer, self.corpus, self.data_key = tokenizer, corpus, corpus.key
        # the held-out share grows on a small corpus only where early stopping follows it (not ELECTRA's)
        floor = cfg.corpus.min_validation_tokens if cfg.objective.name != "electra" and tc.patience else 0
        train_ids, val_ids = split_documents_for_validation(corpus.num_docs, cfg.corpus.validation_fraction,
                                                            cfg.corpus.max_validation_documents, tc.seed,
                                                            corpus.doc_token_counts(), floor)
        seq_len, nsp = cfg.model.max_seq_len, cfg.objective.nsp
        self.data = PretrainBatches(corpus, train_ids, tokenizer, seq_len, tc.batch_size, nsp, tc.seed, tc.compile)
        # about how many steps one pass over the training documents takes (their share of the corpus's tokens)
        self.steps_per_pass = max(1, int(len(corpus.tokens) * len(train_ids) / max(1, corpus.num_docs)
                                         / (seq_len * tc.batch_size * tc.grad_accum)))
        self.val_batches = []
        if len(val_ids):
            # NSP's negatives come from another document: one held-out document is checked on MLM alone (the
            # loss early stopping follows), not skipped
            val_nsp = nsp and len(val_ids) >= 2
            try:
                self.val_batches = list(itertools.islice(PretrainBatches(
                    corpus, val_ids, tokenizer, seq_len, tc.batch_size, val_nsp, tc.seed + 1, tc.compile).epoch(0), 20))
            except WarmstartError:  # validation split too small for one block: skip validation
                self.val_batches = []
        self.electra = cfg.objective.name == "electra"
        # nothing held out (too few documents, or too short for one block): nothing to follow, nothing claimed
        self.watch = None if self.electra or not self.val_batches else self.watch
        if self.electra:
            self.encoder, self.generator = build_electra(cfg.model, tokenizer, tc.seed, cfg.objective.generator_size,
                                                         cfg.objective.generator_init)
            # one optimizer; the shared embeddings appear once
            self.model = torch.nn.ModuleDict({"discriminator": self.encoder, "generator": self.generator})
        else:
            self.encoder = self.model = build_pretraining_model(cfg.model, tokenizer, tc.seed)
        # any family but BERT continues as its AutoModelForMaskedLM: MLM alone, through its own head
        self.masked_lm = not self.electra and self.encoder.config.model_type != "bert"
        self.head = mlm_head(self.encoder) if self.masked_lm else None
        if self.masked_lm and nsp:
            raise WarmstartError(f"model.init={cfg.model.init}: a {self.encoder.config.model_type} model has no "
                                 "next-sentence head; set objective.nsp=false")
        self.setup_seconds = 0.0
        if not resume and cfg.model.embedding_init != "random":
            self.setup_seconds = init_word_embeddings(self.encoder, cfg.model.embedding_init, corpus, train_ids, tc.seed)
        if resume:
            self.encoder.load_state_dict(load_file(resume_dir / "model.safetensors"), strict=False)
            if self.electra:
                self.generator.load_state_dict(load_file(resume_dir / "generator" / "model.safetensors"), strict=False)
        self.masker = Masker(tokenizer, cfg.objective.mlm_probability, cfg.objective.whole_word_mask, tc.seed)
        what = "ELECTRA" if self.electra else ("MLM+NSP" if nsp else "MLM")
        self._description = (f"{describe(self.encoder)}; {len(corpus.tokens):,} tokens in {corpus.num_docs:,} "
                             f"documents ({len(val_ids)} held out{nothing_held_out(corpus.num_docs) if floor and not self.val_batches else ''}"
                             f"); {what}, seq {seq_len}, batch "
                             f"{tc.batch_size}x{tc.grad_accum}")
        # the sparse head needs the family's head (models/text.mlm_head); without one the loss is dense
        self.sparse = self.electra or (cfg.objective.sparse_prediction and (not self.masked_lm or self.head is not None))
        # torch.compile of the whole loss (encoder, head, cross-entropy: one graph, fixed shapes from prepare);
        # the modules are untouched, so state-dict keys and checkpoints stay plain
        self.loss = compiled(self._loss, tc.compile_mode) if tc.compile else self._loss

    def describe(self) -> str:
        return self._description

    def _loss(self, batch: dict[str, torch.Tensor]) -> dict:
        if self.electra:
            return electra_loss(self.encoder, self.generator, batch["original_ids"], batch["input_ids"],
                                batch["mlm_positions"], batch["mlm_targets"], self.cfg.objective.rtd_weight,
                                batch["draws"], batch.get("attention_mask"), batch.get("token_type_ids"))
        if self.masked_lm:
            return masked_lm_loss(self.encoder, self.head, batch)
        return mlm_nsp_loss(self.encoder, batch)

    def objective(self, batch: dict[str, torch.Tensor]) -> dict:
        """The forward that the processes' wrapping calls: a prepared batch (`prepare`) -> scalar losses."""
        return self.loss(batch)

    def prepare(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """The host half of a step, done before the batch moves, so that the device half waits on nothing the
        host computes (a copy back, a shape that depends on the data: on a GPU each stalls the queue; three a
        step were there when an H200 ran this at only 1.53x the HF recipe): the global batch's masks (every
        process draws the same), ELECTRA's uniforms, this process's rows and their shares of the global means,
        the sparse head's slots (of one fixed size when the loss is compiled).
        `generator`: draw from it instead of the masker's (validation's fixed masks); validation draws the
        uniforms for every objective, as it always has, so its masks (and held-out figures) match earlier runs.
        -> the objective's tensors and, as plain numbers, `tokens` (the global batch's) and the shares."""
        group, electra = self.group, self.electra
        masked, labels = self.masker(batch["input_ids"], generator)
        if self.cfg.train.compile and "attention_mask" in batch:
            # padded sentence pairs come bucketed by length (one width a batch); a compiled loss gets one shape
            # instead of a recompile per width (dynamo gives up after 8 and runs the rest eagerly). Padded after
            # masking, so the masks are the eager run's
            batch, masked, labels = padded_to(self.cfg.model.max_seq_len, self.tokenizer.pad_token_id, batch,
                                              masked, labels)
        chosen = labels != -100
        draws = torch.rand(int(chosen.sum()), generator=generator or self.masker.generator) \
            if electra or generator is not None else None
        out: dict = {"tokens": real_tokens(batch)}
        if group.world > 1 and generator is None:  # validation runs the whole batch in every process
            rows = group.rows(len(labels))

            # Each process's means are weighted by its share of what they average over (masked tokens for the
            # MLM, real tokens for replaced-token detection), times the number of processes, which the gradient
            # average divides out: the result is the global batch's loss.
            def share(counted: torch.Tensor) -> float:
                return float(counted[rows].sum() * group.world / counted.sum().clamp(min=1))

            out["mlm_share"] = share(chosen)
            if electra:
                real = batch["attention_mask"].bool() if "attention_mask" in batch else torch.ones_like(chosen)
                out["rtd_share"] = share(real)
                draws = draws[int(chosen[:rows.start].sum()):int(chosen[:rows.stop].sum())]
            batch = {k: v[rows] for k, v in batch.items()}
            masked, labels = masked[rows], labels[rows]
        out |= {k: v for k, v in batch.items() if k != "input_ids"} | {"input_ids": masked}
        if electra:
            out["original_ids"] = batch["input_ids"]
        if not self.sparse:
            return out | {"labels": labels}
        fixed = prediction_capacity(labels.numel(), self.masker.probability) if self.cfg.train.compile else 0
        positions, targets = prediction_slots(labels, fixed)  # one shape for a compiled loss
        out |= {"mlm_positions": positions, "mlm_targets": targets}
        if electra:
            out["draws"] = torch.cat([draws, torch.full((len(positions) - len(draws),), 0.5)])
        return out

    def batches(self, state: LoopState):
        for epoch, index, batch in self.data.iterate(state.epoch, state.index):
            yield epoch, index, self.prepare(batch)

    def count(self, batch: dict) -> int:
        return batch["tokens"]

    def step(self, forward, batch: dict, progress: float) -> dict:
        if self.cfg.model.head_warmup:  # only the heads train until the warm-up share of the budget is used
            self.encoder.base_model.requires_grad_(progress >= self.cfg.model.head_warmup)
        out = forward(tensors(batch))
        if "mlm_share" not in batch:
            return out
        for k in ("mlm_loss", "mlm_acc"):
            out[k] = out[k] * batch["mlm_share"]
        if self.electra:
            for k in ("rtd_loss", "rtd_acc", "replaced"):
                out[k] = out[k] * batch["rtd_share"]
        out["loss"] = out["mlm_loss"] + (self.cfg.objective.rtd_weight * out["rtd_loss"] if self.electra else 0.0) \
            + out.get("nsp_loss", 0.0)
        return out

    def evaluate(self, forward) -> dict:
        if not self.val_batches:
            return {}
        # a compiled loss is evaluated eagerly: under no_grad dynamo compiles it again (it guards on grad mode),
        # a second compile at the first evaluation (6 of a 4-step compiled run's 30 s on a CPU, cold cache:
        # tests/pretraining/test_device_step.py) to save a little on the 20 held-out batches (at most) it runs. The
        # module itself is safe to call: compiling rules out sharded training; DDP's replicas hold whole weights.
        step = self._loss if self.cfg.train.compile else forward
        return evaluate(self.model, step, self.val_batches, self.prepare, self.bf16, self.cfg.train.seed)

    def gather(self) -> dict:
        return {"encoder": full_state_dict(self.encoder, self.group),
                "generator": full_state_dict(self.generator, self.group) if self.electra else None}

    def write(self, folder: Path, whole: dict, files: dict[str, str], final: bool) -> None:
        save_hf(folder, self.encoder, self.tokenizer, files, state_dict=whole["encoder"])
        if self.electra:  # kept for continued pretraining; the discriminator is the encoder users load
            save_hf(folder / "generator", self.generator, None, state_dict=whole["generator"])

    def rng_state(self) -> dict:
        return {"masker_rng": self.masker.generator.get_state()}

    def load_rng_state(self, saved: dict) -> None:
        self.masker.generator.set_state(saved["masker_rng"])

    def summary(self, state: LoopState) -> dict:
        return {}


def pretrain_inputs(cfg: PretrainConfig) -> dict[str, str | None]:
    """What text pretraining reads from disk, which its output folder must not overlap."""
    return {"model.init": cfg.model.init, "tokenizer.from_checkpoint": cfg.tokenizer.from_checkpoint,
            "objective.generator_init": cfg.objective.generator_init,
            **{f"corpus.sources[{i}]": s for i, s in enumerate(cfg.corpus.sources)}}


def run_pretrain(cfg: PretrainConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Pretrain and write a standard HF checkpoint to `cfg.output_dir`. Returns that folder."""
    return run(cfg, TextPretraining, pretrain_inputs(cfg), resume, overwrite)
