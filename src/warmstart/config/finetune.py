"""Fine-tuning configs: the training knobs every task shares (text and images), the text tasks' data and
knobs, forgetting measures."""

from __future__ import annotations

from dataclasses import dataclass

from warmstart.config.pretrain import ATTENTIONS, PRECISIONS, TRACKERS
from warmstart.config.schema import knob
from warmstart.config.strategies import STRATEGIES, StrategySections
from warmstart.errors import WarmstartError


@dataclass
class LabelledDataConfig:
    """A labelled table: CSV, JSONL, an HF `save_to_disk` folder or a hub id."""

    path: str = knob("", "the labelled data: a table, a folder of per-split files, an HF dataset folder or hub id")
    text_column: str = knob("text", "the text column")
    text_pair_column: str | None = knob(None, "a second text column (sentence pairs)")
    label_column: str = knob("label", "the label column")
    label_separator: str | None = knob(None, "multi_label: the separator between one cell's labels "
                                             "('|', ';'); list cells (JSONL, Parquet, HF, a JSON list in CSV) need "
                                             "none")
    label_columns: list[str] = knob(help="multi_label: one 0/1 column per label (Jigsaw, SemEval style), named as "
                                         "the labels; instead of label_column", factory=list)
    split_column: str | None = knob("split", "column with train / validation / test; a seeded split if absent")
    validation_size: float | None = knob(None, "seeded split: fraction carved for an explicit dev set; default 0.1 "
                                               "with data.validation_labels, else 0 (a share nothing reads would "
                                               "be labels lost)", ge=0, lt=1)
    test_size: float = knob(0.1, "seeded split: fraction for test", ge=0, lt=1)
    labels: int | None = knob(None, "the labelled budget: a seeded sample of this many training examples "
                                    "(stratified for classification); selection happens inside them", ge=1)
    balanced: bool = knob(False, "classification: draw the N labels evenly over the classes (SetFit's 'N per "
                                 "class') instead of in the training split's proportions")
    validation_labels: int | None = knob(None, "an explicit dev set of this many labels beyond the N (from the "
                                               "validation split, else the rest of train); reported", ge=1)
    tokens_column: str = knob("tokens", "token_classification: the list-of-words column (JSONL / HF)")
    tags_column: str = knob("tags", "token_classification: the list-of-tags column (JSONL / HF)")
    aspect: str = knob("all", "summarization: the ACLSum aspect to summarise (`all` joins them)")
    max_words: int | None = knob(None, "summarization: the extract's budget in words (default: the median "
                                       "training summary)", ge=1)
    context_turns: int = knob(2, "response_selection: earlier turns kept as the context of a reply", ge=1)
    candidates: int = knob(10, "response_selection: the true reply among candidates-1 others (recall@1 of N)",
                           ge=2)

    @property
    def carved_validation(self) -> float:
        """The share a seeded split carves for validation. Only an explicit dev set (`validation_labels`) reads
        it: under the honest protocol a carved 10% was a tenth of a one-file dataset's labels that no run used
        (300 CoNLL sentences: 240 trained on, 30 tested, 30 dropped)."""
        if self.validation_size is not None:
            return self.validation_size
        return 0.1 if self.validation_labels else 0.0

    def check(self) -> None:
        if self.label_separator is not None and not self.label_separator.strip():
            raise WarmstartError(f"data.label_separator={self.label_separator!r}: an empty or blank separator splits "
                                 "nothing; give the character between one cell's labels, e.g. '|'")
        if len(set(self.label_columns)) < len(self.label_columns):
            raise WarmstartError(f"data.label_columns={self.label_columns}: a column is named twice; name each once")
        if self.label_columns and self.label_separator is not None:
            raise WarmstartError("data.label_columns and data.label_separator: 0/1 columns need no separator; give "
                                 "one of them")
        if self.carved_validation + self.test_size >= 1:
            raise WarmstartError(f"data.validation_size={self.carved_validation} + data.test_size={self.test_size} "
                                 "leave no training rows; keep their sum below 1")


@dataclass
class FinetuneTrainConfig(StrategySections):
    """The fine-tuning knobs every task shares, text and images (each modality adds a few of its own)."""

    strategy: str = knob("full", "which weights train and how (see tasks/strategies.py; each has its section)",
                         choices=STRATEGIES)
    lr: float = knob(5e-5, "peak learning rate of the encoder", gt=0)
    head_lr: float | None = knob(None, "learning rate of the fresh head (default lr)", gt=0)
    batch_size: int = knob(16, "examples per step", ge=1)
    max_epochs: int = knob(20, "epochs: the whole budget, or at most with early stopping (patience > 0)", ge=1)
    max_steps: int | None = knob(None, "steps at most (instead of max_epochs)", ge=1)
    max_minutes: float | None = knob(None, "a wall-clock cap on each training phase, the schedule ending there: "
                                           "the selection and the refit on all N each get it, so a run takes "
                                           "up to about twice this", gt=0)
    # 0 by default, as HF's Trainer and SetFit: stopping on a held-out fifth of 100 labels ended 11 points (full),
    # 3.7 (LP-FT), 10 (LoRA) and 16 entity-F1 points (NER) below the whole budget (benchmarks/results/fixed_budget.md)
    patience: int = knob(0, "0: no early stopping (one fit on all N for the whole max_epochs / max_steps, its last "
                            "weights kept); else evaluations without a better held-out score before stopping", ge=0)
    eval_every: int | None = knob(None, "steps between evaluations (default once per epoch)", ge=1)
    weight_decay: float = knob(0.01, "AdamW weight decay", ge=0)
    warmup_fraction: float = knob(0.1, "fraction of the steps spent warming the learning rate up", ge=0, lt=1)
    precision: str = knob("auto", "auto measures bf16 against fp32 here and takes the faster", choices=PRECISIONS)
    attention: str = knob("auto", "auto: on a CPU, the faster of SDPA and plain matmul attention for each shape, "
                                  "timed here; on a GPU, SDPA", choices=ATTENTIONS)
    seed: int = knob(0, "seed of the labelled sample, the head and the data order", ge=0)
    save_model: bool = knob(True, "write the fine-tuned checkpoint into the run folder")
    save_every_minutes: float = knob(10.0, "minutes between resumable states (finetune --resume)", gt=0)
    holdout: float = knob(0.2, "early stopping without a dev set: the share of the N labels held out to choose "
                               "when to stop (and LP-FT's keep-or-replace)", gt=0, lt=1)
    refit: bool = knob(True, "after choosing, train again on all N labels for the chosen number of epochs")
    report_to: str | None = knob(None, "also send the run's curves to this tracker", choices=TRACKERS)


POOLINGS = ("auto", "cls", "cls_token", "mean")  # tasks/classification.pooled; auto: tasks/finetune.chosen_pooling
CLASS_BALANCES = ("none", "adjusted", "weighted")  # models/probe.fit_logistic's `balance`
ENTITY_TAGS = ("iob1", "as_written")  # what a token classifier learns: tasks/tag_schemes.learnt_tags


@dataclass
class TextTrainConfig(FinetuneTrainConfig):
    """Text tasks' fine-tuning knobs."""

    pooling: str = knob("auto", "auto (the init's own: a sentence-transformers folder's pooling, else cls) | cls "
                                "(the HF pooler) | cls_token (the [CLS] state itself, sentence-transformers' cls) | "
                                "mean (of the last hidden states)", choices=POOLINGS)
    max_length: int = knob(128, "tokens per input, special tokens included", ge=4)
    dropout: float = knob(0.1, "dropout in the encoder while fine-tuning", ge=0, lt=1)
    negatives: int = knob(7, "response_selection: sampled wrong replies per training context", ge=1)
    class_balance: str = knob("none", "classification, for a skewed table whose rare classes matter: every class "
                                      "weighs alike and balanced accuracy chooses C, epochs and the refit's check. "
                                      "adjusted: logit adjustment (each class's log share among the N subtracted "
                                      "from its logit: the probe's head post hoc, the loss as Menon et al. 2021) | "
                                      "weighted: each example weighs N / (classes x its class's count) in the loss "
                                      "and the probe (scikit-learn's class_weight='balanced') | none",
                              choices=CLASS_BALANCES)
    pos_weight_cap: float = knob(10.0, "multi_label: binary cross-entropy weighs each label's positive examples "
                                       "by its negatives / positives among the training rows, at most this "
                                       "(1: unweighted)", ge=1)
    entity_tags: str = knob("iob1", "token_classification: entity tags (BIO, IOB1, BIOES, BILOU) are learnt in "
                                    "their IOB1 reading, one tag a type inside entities, and predicted in the data's "
                                    "scheme | as_written: learn the data's own tags", choices=ENTITY_TAGS)

    def check(self) -> None:
        if self.strategy == "setfit" and self.pooling == "cls":
            raise WarmstartError("train.strategy=setfit trains the sentence embeddings themselves (as SetFit does), "
                                 "not the HF pooler; set train.pooling=mean, cls_token or auto")


@dataclass
class ForgettingConfig:
    """Measure forgetting after fine-tuning (see tasks/forgetting.py): MLM loss increase and CKA on `samples`
    lines of `texts` (the pretraining corpus); off while `texts` is empty."""

    texts: list[str] = knob(help="the pretraining corpus (files) to measure forgetting on; empty: off",
                            factory=list)
    samples: int = knob(512, "lines of `texts` measured", ge=1)


@dataclass
class FinetuneConfig:
    output_dir: str = knob("runs/finetune", "the run folder (published whole at the end; owned by this run)")
    task: str = knob("classification", "classification (incl. sentence pairs) | multi_label | token_classification | "
                                       "summarization (extractive) | response_selection (dialogue); the task "
                                       "registry (tasks/registry.py) holds them")
    init: str = knob("", "a checkpoint folder, or 'scratch'")
    tokenizer: str | None = knob(None, "the tokenizer / architecture folder; required when init is scratch")
    trust_pickled_weights: bool = knob(False, "allow an `init` folder with pickled (.bin) weights only")
    data: LabelledDataConfig = knob(help="the labelled data", factory=LabelledDataConfig)
    train: TextTrainConfig = knob(help="the fine-tuning loop and strategy", factory=TextTrainConfig)
    forgetting: ForgettingConfig = knob(help="forgetting measures (off by default)", factory=ForgettingConfig)
