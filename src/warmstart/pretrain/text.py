"""`warmstart pretrain`: corpus -> tokenizer -> token cache -> BERT (MLM + NSP) -> HF checkpoint."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
import yaml

from warmstart.config import CONFIG_FILENAME, PretrainConfig, validate
from warmstart.data.sources import CorpusSources
from warmstart.data.text import (
    PretrainBatches,
    build_token_cache,
    load_tokenizer,
    split_documents_for_validation,
    train_tokenizer,
)
from warmstart.engine.checkpoint import (
    TRAINING_STATE,
    atomic_folder,
    load_training_state,
    publish_into,
    rng_state,
    save_hf,
    set_rng_state,
)
from warmstart.engine.distributed import (
    barrier,
    broadcast_parameters,
    cluster,
    full_optimizer_state,
    full_state_dict,
    parallelize,
    resume_optimizer,
    save_collectively,
)
from warmstart.engine.loop import Budget, LoopSettings, LoopState, make_optimizer, train_loop
from warmstart.engine.runtime import autocast, device, set_threads, use_bf16
from warmstart.engine.tracking import tracking_dir
from warmstart.errors import WarmstartError
from warmstart.models.common import describe
from warmstart.models.text import build_electra, build_pretraining_model
from warmstart.objectives.cooccurrence import ppmi_svd_embeddings
from warmstart.objectives.electra import electra_loss
from warmstart.objectives.mlm import mask_tokens, mlm_nsp_loss
from warmstart.pretrain.run import prepare_run_folder


class Masker:
    """Dynamic masking with its own seeded generator (its state is part of the resumable state)."""

    def __init__(self, tokenizer, probability: float, whole_word: bool, seed: int):
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self.mask_id, self.vocab_size, self.probability = tokenizer.mask_token_id, len(tokenizer), probability
        self.generator = torch.Generator().manual_seed(seed)
        self.continuation = None
        if whole_word:
            vocab = tokenizer.get_vocab()
            self.continuation = torch.zeros(len(tokenizer), dtype=torch.bool)
            self.continuation[[i for t, i in vocab.items() if t.startswith("##")]] = True

    def __call__(self, input_ids: torch.Tensor, generator: torch.Generator | None = None):
        return mask_tokens(input_ids.cpu(), self.special, self.mask_id, self.vocab_size, self.probability,
                           generator or self.generator, self.continuation)


def prepare_tokenizer(cfg: PretrainConfig, docs):
    if cfg.tokenizer.from_checkpoint or cfg.model.init:
        return load_tokenizer(cfg.tokenizer.from_checkpoint or cfg.model.init)
    if cfg.tokenizer.vocab_size < 100:  # 5 special tokens + an alphabet leave no room for word pieces
        raise WarmstartError(f"tokenizer.vocab_size={cfg.tokenizer.vocab_size} is too small; use at least 100")
    return train_tokenizer(docs, cfg.tokenizer.vocab_size, cfg.tokenizer.lowercase, cfg.tokenizer.min_frequency)


@torch.no_grad()
def init_word_embeddings(encoder, how: str, corpus, doc_ids, seed: int) -> float:
    """Overwrite the (decoder-tied) word embeddings from training-document statistics. Returns seconds spent."""
    if how != "ppmi_svd":
        raise WarmstartError(f"model.embedding_init: unknown value '{how}'; use random or ppmi_svd")
    t = time.perf_counter()
    weight = encoder.get_input_embeddings().weight
    vectors = ppmi_svd_embeddings((corpus.doc_tokens(int(d)) for d in doc_ids), weight.shape[0], weight.shape[1],
                                  std=float(weight.std()), seed=seed)
    weight.copy_(torch.from_numpy(vectors))
    seconds = time.perf_counter() - t
    print(f"warmstart pretrain: word embeddings from PPMI-SVD of the training documents ({seconds:.1f} s)")
    return seconds


@torch.no_grad()
def evaluate(model, objective_step, batches: list[dict], masker: Masker, bf16: bool, seed: int) -> dict:
    """Held-out losses/accuracies with a fixed mask (same positions and samples at every evaluation)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    totals: dict[str, float] = {}
    for batch in batches:
        masked, labels = masker(batch["input_ids"], gen)
        draws = torch.rand(int((labels != -100).sum()), generator=gen)  # ELECTRA's generator samples
        with autocast(bf16):
            out = objective_step({k: v.to(device()) for k, v in batch.items()}, masked, labels, draws)
        for k in ("mlm_loss", "mlm_acc", "nsp_acc", "rtd_loss", "rtd_acc"):
            if k in out:
                totals[f"val_{k}"] = totals.get(f"val_{k}", 0.0) + float(out[k])
    return {k: round(v / max(1, len(batches)), 4) for k, v in totals.items()}


def run_pretrain(cfg: PretrainConfig, resume: bool = False) -> Path:
    """Pretrain and write a standard HF checkpoint to `cfg.output_dir`. Returns that folder."""
    t0 = time.perf_counter()
    out = Path(cfg.output_dir)
    tc = cfg.train
    validate(cfg)  # loaded configs are checked already; one built in Python is checked here
    budget = Budget(tc.max_steps, tc.max_tokens, tc.max_minutes)  # fail before any data is read
    group = cluster(tc.parallel)
    if tc.batch_size % group.world:
        raise WarmstartError(f"train.batch_size={tc.batch_size} is not divisible by {group.world} processes")
    if cfg.model.head_warmup and group.sharded:
        raise WarmstartError("model.head_warmup is not supported with sharded (fsdp, deepspeed) training")
    if tc.compile and group.sharded:
        raise WarmstartError("train.compile is not supported with sharded (fsdp, deepspeed) training; "
                             "set train.compile=false")
    set_threads(tc.num_threads or max(1, (os.cpu_count() or 1) // group.world))
    bf16 = use_bf16(tc.precision)
    resume_dir = prepare_run_folder(out, resume, group.main, group.world)  # recovers a kill mid-save

    docs = CorpusSources(cfg.corpus.sources, cfg.corpus.text_column, tuple(cfg.corpus.exclude_splits))  # streamed, never held in memory
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
    if group.main:  # rank 0 builds the token cache, the others then map it
        corpus = build_token_cache(docs, tokenizer, cfg.corpus.cache_dir)
    barrier(group.world)
    if not group.main:
        corpus = build_token_cache(docs, tokenizer, cfg.corpus.cache_dir)
    train_ids, val_ids = split_documents_for_validation(corpus.num_docs, cfg.corpus.validation_fraction,
                                                        cfg.corpus.max_validation_documents, tc.seed)
    seq_len = cfg.model.max_seq_len
    data = PretrainBatches(corpus, train_ids, tokenizer, seq_len, tc.batch_size, cfg.objective.nsp, tc.seed)
    val_batches = []
    if len(val_ids) >= 2 or (len(val_ids) and not cfg.objective.nsp):
        try:
            val_batches = list(itertools.islice(PretrainBatches(
                corpus, val_ids, tokenizer, seq_len, tc.batch_size, cfg.objective.nsp, tc.seed + 1).epoch(0), 20))
        except WarmstartError:  # validation split too small for one block: skip validation
            val_batches = []

    electra = cfg.objective.name == "electra"
    if electra:
        encoder, generator = build_electra(cfg.model, tokenizer, tc.seed, cfg.objective.generator_size)
        model = torch.nn.ModuleDict({"discriminator": encoder, "generator": generator})  # one optimizer, shared params once
    else:
        encoder = model = build_pretraining_model(cfg.model, tokenizer, tc.seed)
    init_seconds = 0.0
    if not resume and cfg.model.embedding_init != "random":
        init_seconds = init_word_embeddings(encoder, cfg.model.embedding_init, corpus, train_ids, tc.seed)
    if resume:
        from safetensors.torch import load_file
        encoder.load_state_dict(load_file(resume_dir / "model.safetensors"), strict=False)
        if electra:
            generator.load_state_dict(load_file(resume_dir / "generator" / "model.safetensors"), strict=False)
    model.to(device())
    broadcast_parameters(model, group.world)  # before sharding: every process cuts its shard from one tensor
    what = "ELECTRA" if electra else ("MLM+NSP" if cfg.objective.nsp else "MLM")
    if group.main:
        print(f"warmstart pretrain: {describe(encoder)}; {len(corpus.tokens):,} tokens in {corpus.num_docs:,} "
              f"documents ({len(val_ids)} held out); {what}, seq {seq_len}, batch {tc.batch_size}x{tc.grad_accum}, "
              f"{'bf16' if bf16 else 'fp32'}" + (f", {group.world} processes" if group.world > 1 else "")
              + (f" ({group.mode}: sharded)" if group.sharded else ""))

    def objective_step(batch: dict, masked: torch.Tensor, labels: torch.Tensor, draws: torch.Tensor) -> dict:
        masked, labels = masked.to(batch["input_ids"].device), labels.to(batch["input_ids"].device)
        if electra:
            return electra_loss(encoder, generator, batch["input_ids"], masked, labels, cfg.objective.rtd_weight,
                                draws, batch.get("attention_mask"), batch.get("token_type_ids"))
        return mlm_nsp_loss(encoder, {**batch, "input_ids": masked}, labels, cfg.objective.sparse_prediction)

    forward, optimizer, engine = parallelize(model, objective_step, lambda: make_optimizer(model, tc.lr, tc.weight_decay),
                                             group, tc.batch_size, tc.grad_accum, LoopSettings.max_grad_norm)
    masker = Masker(tokenizer, cfg.objective.mlm_probability, cfg.objective.whole_word_mask, tc.seed)
    state = LoopState(seconds=init_seconds)  # a budget in minutes includes the embedding initialisation
    if resume:
        saved = load_training_state(resume_dir)
        resume_optimizer(optimizer, engine, saved, resume_dir)
        state = LoopState(**saved["loop"])
        set_rng_state(saved["rng"])
        masker.generator.set_state(saved["masker_rng"])
    elif group.main:
        shutil.rmtree(resume_dir, ignore_errors=True)
        for stale in ("training_log.jsonl",):
            (out / stale).unlink(missing_ok=True)
    config_text = yaml.safe_dump(asdict(cfg), sort_keys=False)
    if group.main:
        (out / CONFIG_FILENAME).write_text(config_text, encoding="utf-8")
    if tc.compile:  # in place (Module.compile), so state-dict keys and checkpoints stay plain
        encoder.base_model.compile(dynamic=False)

    def step_fn(batch: dict) -> dict:
        if cfg.model.head_warmup:  # `state` is the loop's own: its progress as of the last step
            encoder.base_model.requires_grad_(
                budget.progress(state.step, state.tokens, state.seconds) >= cfg.model.head_warmup)
        masked, labels = masker(batch["input_ids"])  # the global batch: the same masks in every process
        chosen = labels != -100
        # ELECTRA's samples, drawn for the global batch: each process uses its rows' share (objectives/electra.py)
        draws = torch.rand(int(chosen.sum()), generator=masker.generator) if electra else None
        if group.world == 1:
            return forward(batch, masked, labels, draws)
        rows = group.rows(len(labels))
        if electra:
            draws = draws[int(chosen[:rows.start].sum()):int(chosen[:rows.stop].sum())]
        out = forward({k: v[rows] for k, v in batch.items()}, masked[rows], labels[rows], draws)
        # Each process's means are weighted by its share of what they average over (masked tokens for the MLM,
        # real tokens for replaced-token detection), times the number of processes, which the gradient average
        # divides out: the result is the global batch's loss.
        def share(counted: torch.Tensor) -> torch.Tensor:
            return counted[rows].sum() * group.world / counted.sum().clamp(min=1)

        for k in ("mlm_loss", "mlm_acc"):
            out[k] = out[k] * share(chosen)
        if electra:
            real = batch["attention_mask"].bool().cpu() if "attention_mask" in batch else torch.ones_like(chosen)
            for k in ("rtd_loss", "rtd_acc", "replaced"):
                out[k] = out[k] * share(real)
        out["loss"] = out["mlm_loss"] + (cfg.objective.rtd_weight * out["rtd_loss"] if electra else 0.0) \
            + out.get("nsp_loss", 0.0)
        return out

    def eval_fn(state: LoopState) -> tuple[dict, bool]:
        if not val_batches:
            return {}, False
        return evaluate(model, forward, val_batches, masker, bf16, tc.seed), False

    def gather() -> dict:
        """Weights and optimizer state, whole (a collective when sharded: every process calls it)."""
        return {"encoder": full_state_dict(encoder, group),
                "generator": full_state_dict(generator, group) if electra else None,
                "optimizer": full_optimizer_state(optimizer, group)}

    def save_encoder(folder: Path, whole: dict, extra: dict[str, str]) -> None:
        save_hf(folder, encoder, tokenizer, extra, state_dict=whole["encoder"])
        if electra:  # kept for continued pretraining; the discriminator is the encoder users load
            save_hf(folder / "generator", generator, None, state_dict=whole["generator"])

    def save_resumable(state: LoopState) -> dict:
        whole = gather()

        def write(folder: Path) -> None:
            save_encoder(folder, whole, {CONFIG_FILENAME: config_text})
            torch.save({"optimizer": whole["optimizer"], "loop": asdict(state), "rng": rng_state(),
                        "masker_rng": masker.generator.get_state()}, folder / TRAINING_STATE)
        save_collectively(resume_dir, write, engine, out, group)
        return whole

    settings = LoopSettings(lr=tc.lr, warmup_fraction=tc.warmup_fraction, schedule=tc.schedule,
                            grad_accum=tc.grad_accum, bf16=bf16, log_every=tc.log_every,
                            eval_every=tc.eval_every, save_every_minutes=tc.save_every_minutes, desc="pretrain",
                            cluster=group, engine=engine, tracking_dir=tracking_dir(tc.report_to, out))
    state = train_loop(model, optimizer, data.iterate(state.epoch, state.index), step_fn, budget, settings, state,
                       tokens_fn=lambda b: int(b["attention_mask"].sum()) if "attention_mask" in b
                       else int(b["input_ids"].numel()),
                       eval_fn=eval_fn, save_fn=save_resumable, log_path=out / "training_log.jsonl")
    final = eval_fn(state)[0]
    whole = save_resumable(state) if group.main or group.sharded else None
    if not group.main:
        barrier(group.world)
        return out
    metrics = {"steps": state.step, "tokens": state.tokens, "train_seconds": round(state.seconds, 1),
               "tokens_per_s": round(state.tokens / max(state.seconds, 1e-9), 1),
               "wall_seconds": round(time.perf_counter() - t0, 1), **final}
    # The final checkpoint: HF files written to a temporary folder, then moved in file by file.
    shutil.rmtree(out / "generator", ignore_errors=True)  # a stale generator/ would block the move below
    publish_into(out, lambda f: save_encoder(f, whole, {
        CONFIG_FILENAME: config_text, "metrics.json": json.dumps(metrics, indent=2)}))
    shutil.rmtree(out / ".tokenizer", ignore_errors=True)
    print(f"warmstart pretrain: done, {state.step} steps, {state.tokens:,} tokens, "
          f"{metrics['tokens_per_s']:,.0f} tokens/s; " + " ".join(f"{k}={v}" for k, v in final.items())
          + f"\n  checkpoint: {out}")
    barrier(group.world)
    return out
