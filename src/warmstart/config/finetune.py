"""Fine-tuning configs (text tasks): the labelled data, the training knobs, forgetting measures."""

from __future__ import annotations

from dataclasses import dataclass, field

from warmstart.config.strategies import StrategySections


@dataclass
class LabelledDataConfig:
    """A labelled table: CSV, JSONL, an HF `save_to_disk` folder or a hub id."""

    path: str = ""
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    split_column: str | None = "split"  # values train / validation / test; seeded split if absent
    validation_size: float = 0.1
    test_size: float = 0.1
    labels: int | None = None  # a seeded subsample of the training split (stratified for classification)
    validation_labels: int | None = None  # cap the validation split (few-label honesty)
    # token_classification: CoNLL files (token<TAB>tag lines, a blank line between sentences) in a folder
    # (train/validation/test.*) or one file; or JSONL / HF datasets with these two list columns
    tokens_column: str = "tokens"
    tags_column: str = "tags"
    # summarization: JSONL documents {sentences, labels, summary} (or ACLSum records, whose summaries and
    # labels are per aspect: `aspect` picks one, `all` joins them); the extract's budget in words
    aspect: str = "all"
    max_words: int | None = None  # default: the median length of the training split's reference summaries
    # response_selection: JSONL conversations {turns: [...]} or a novel's text (quoted paragraphs in a row)
    context_turns: int = 2  # earlier turns kept as the context of a reply
    candidates: int = 10  # evaluation: the true reply among candidates-1 sampled others (recall@1 of 10)


@dataclass
class FinetuneTrainConfig(StrategySections):
    # full | linear_probe | lp_ft | freeze | gradual_unfreeze | llrd | l2sp | lora (see strategies.py; each
    # has its own section, e.g. train.lora.r=16)
    strategy: str = "full"
    pooling: str = "cls"  # cls (HF standard pooler) | mean
    lr: float = 5e-5
    head_lr: float | None = None  # defaults to lr; a fresh head learns faster than a pretrained body
    batch_size: int = 16
    max_epochs: int = 20
    max_steps: int | None = None
    max_minutes: float | None = None  # a wall-clock cap (the schedule ends there), whatever the encoder's size
    patience: int = 3  # evaluations without validation improvement before stopping
    eval_every: int | None = None  # steps; default once per epoch
    max_length: int = 128
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    dropout: float = 0.1
    precision: str = "auto"
    seed: int = 0
    save_model: bool = True
    report_to: str | None = None  # tensorboard (see tracking.py)
    negatives: int = 7  # response_selection: sampled wrong replies per training context (listwise loss)


@dataclass
class ForgettingConfig:
    """Measure forgetting after fine-tuning (see forgetting.py): MLM loss increase and CKA on `samples` lines
    of `texts` (the pretraining corpus); off while `texts` is empty."""

    texts: list[str] = field(default_factory=list)
    samples: int = 512


TASKS = ("classification", "token_classification", "summarization", "response_selection")


@dataclass
class FinetuneConfig:
    output_dir: str = "runs/finetune"
    task: str = "classification"  # classification (incl. sentence pairs) | token_classification |
    # summarization (extractive) | response_selection (dialogue)
    init: str = ""  # a checkpoint folder, or "scratch"
    tokenizer: str | None = None  # the tokenizer/architecture folder; required when init is scratch
    trust_pickled_weights: bool = False  # allow an `init` folder with pickled (.bin) weights only
    data: LabelledDataConfig = field(default_factory=LabelledDataConfig)
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    forgetting: ForgettingConfig = field(default_factory=ForgettingConfig)
