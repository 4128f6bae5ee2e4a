"""Pretraining configs (text): corpus, tokenizer, model, objective and the training loop's knobs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CorpusConfig:
    """Where the unlabelled text comes from. Each source is a path or an HF dataset id."""

    sources: list[str] = field(default_factory=list)
    text_column: str = "text"  # for CSV / JSONL / HF datasets
    # drop the documents of these splits, as a text file's sidecar `<name>.ids.tsv` (id<TAB>split per line)
    # assigns them: pretraining text that contains an evaluation set's test documents contaminates it
    exclude_splits: list[str] = field(default_factory=list)
    validation_fraction: float = 0.01  # documents held out for validation MLM loss
    max_validation_documents: int = 500
    cache_dir: str = ".cache/warmstart"  # the pre-tokenised token cache, shared across runs


@dataclass
class TokenizerConfig:
    """Train a WordPiece tokenizer on the corpus, or reuse the one of an existing checkpoint."""

    from_checkpoint: str | None = None
    vocab_size: int = 8192
    lowercase: bool = True
    min_frequency: int = 2


@dataclass
class ModelConfig:
    """BERT encoder size. `init` continues pretraining from an HF BERT folder instead."""

    init: str | None = None
    num_layers: int = 4
    hidden_size: int = 256
    num_heads: int = 4
    intermediate_size: int = 1024
    max_seq_len: int = 128
    trust_pickled_weights: bool = False  # allow `init` folders with pickled (.bin) weights only
    # random | ppmi_svd: word embeddings from the corpus's co-occurrence statistics (seconds; see
    # objectives/cooccurrence.py), so that a short MLM/ELECTRA run starts from distributional word vectors
    embedding_init: str = "random"
    dropout: float = 0.0  # cramming: no dropout when every token is seen about once; costs 12% of a CPU step
    # continued pretraining (`init`): the fraction of the budget in which only the heads train, the encoder
    # frozen, so that a freshly initialised MLM head (MiniLM ships without one) does not send its random
    # gradients into the pretrained encoder (the LP-FT idea, for pretraining). 0 = everything trains at once.
    head_warmup: float = 0.0


@dataclass
class ObjectiveConfig:
    name: str = "mlm"  # mlm (BERT, optionally + NSP) | electra (replaced-token detection)
    mlm_probability: float = 0.15
    whole_word_mask: bool = False
    nsp: bool = True
    sparse_prediction: bool = True  # MLM head only on masked positions (same loss, less compute)
    generator_size: float = 0.25  # electra: generator width as a fraction of the discriminator's
    rtd_weight: float = 50.0  # electra: weight of the discriminator loss (the paper's lambda)


@dataclass
class TrainConfig:
    """The one training loop's knobs. The first budget to run out ends the run."""

    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    schedule: str = "linear"  # linear | cosine | constant: decay to zero exactly at the budget
    max_steps: int | None = None
    max_tokens: int | None = None
    max_minutes: float | None = None
    precision: str = "auto"  # auto (measure bf16 vs fp32 matmul here, take the faster) | bf16 | fp32
    compile: bool = False  # torch.compile the encoder: pays on CUDA; measured no gain on a 2-core CPU
    seed: int = 0
    log_every: int = 10
    eval_every: int = 200
    save_every_minutes: float = 10.0
    num_threads: int | None = None
    report_to: str | None = None  # tensorboard: the run's log also goes to OUTPUT_DIR/../tensorboard/NAME
    # multi-process runs: ddp (whole weights everywhere) | fsdp (sharded, torch FSDP2) | deepspeed (ZeRO) |
    # auto (what an accelerate FSDP or DeepSpeed config asks for, else ddp); see distributed.py
    parallel: str = "auto"


@dataclass
class PretrainConfig:
    output_dir: str = "runs/pretrain"
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
