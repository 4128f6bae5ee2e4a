"""Config dataclasses for every command, loaded from YAML recipes and `section.key=value` overrides.

A recipe is a flat YAML file whose sections mirror the dataclasses below. The resolved config
(recipe + overrides + defaults) is written as `warmstart_config.yaml` beside every output, so a run
can always be reproduced from its folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from warmstart.errors import WarmstartError
from warmstart.strategies import StrategySections

CONFIG_FILENAME = "warmstart_config.yaml"


# ---------------------------------------------------------------- pretraining
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


# ---------------------------------------------------------------- fine-tuning
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


# ---------------------------------------------------------------- loading
C = TypeVar("C")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown_key(key: str, valid: list[str], where: str) -> WarmstartError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"
    return WarmstartError(f"{where}: unknown config key '{key}'{hint}")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check a YAML value against a dataclass field type, converting the obvious cases (int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except WarmstartError:
                continue
        raise WarmstartError(f"{where}: expected {tp}, got {value!r}")
    if origin is dict:  # name -> section (a study's tasks and pretrainings)
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise WarmstartError(f"{where}: expected a mapping of names to sections, got {value!r}")
        return {str(k): _coerce(v, item, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, list):
            raise WarmstartError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item, where) for v in value]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise WarmstartError(f"{where}: expected a section (mapping), got {value!r}")
        return from_dict(tp, value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise WarmstartError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def from_dict(cls: type[C], data: dict[str, Any], where: str = "config") -> C:
    """Build dataclass `cls` from a nested dict, rejecting unknown keys with a suggestion."""
    types_ = _field_types(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in types_:
            raise _unknown_key(str(key), list(types_), where)
        kwargs[key] = _coerce(value, types_[key], f"{where}: {key}")
    return cls(**kwargs)


def _set_dotted(data: dict[str, Any], cls: type, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node, node_cls = data, cls
    for i, key in enumerate(keys):
        types_ = _field_types(node_cls)
        if key not in types_:
            raise _unknown_key(key, list(types_), f"override '{dotted}'")
        if i == len(keys) - 1:
            node[key] = value
        else:
            node_cls = types_[key]
            if not dataclasses.is_dataclass(node_cls):
                raise WarmstartError(f"override '{dotted}': '{key}' is not a section")
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise WarmstartError(f"override '{dotted}': section '{key}' was given a value ({node!r}); "
                                     f"set its keys instead, as {key}.KEY=value")


def load_config(cls: type[C], path: str | Path | None, overrides: list[str] = ()) -> C:
    """Read a YAML recipe (or none, for defaults) and apply `section.key=value` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise WarmstartError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise WarmstartError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise WarmstartError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    for item in overrides:
        if "=" not in item:
            raise WarmstartError(f"override '{item}': expected section.key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        _set_dotted(data, cls, key.strip(), value)
    return from_dict(cls, data, str(path) if path else "config")


IMAGE_OBJECTIVES = ("simclr", "autoencoder")


def is_image_recipe(path: str | Path | None, overrides: list[str] = ()) -> bool:
    """Images or text? Image recipes have a `data.sources` list or `model.backbone` (text pretraining reads
    `corpus`, text fine-tuning `data.path`), or an image objective."""
    data: dict[str, Any] = {}
    if path is not None and Path(path).is_file():
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError):
            return False  # load_config reports the YAML error
    keys = {k.split("=", 1)[0].strip() for k in overrides}
    if not isinstance(data, dict):
        return False
    section = lambda name: data.get(name) if isinstance(data.get(name), dict) else {}  # noqa: E731
    objective = section("objective").get("name")
    for item in overrides:
        if item.split("=", 1)[0].strip() == "objective.name":
            objective = item.split("=", 1)[1].strip()
    return (objective in IMAGE_OBJECTIVES or "sources" in section("data") or "backbone" in section("model")
            or "architecture" in data or bool(keys & {"data.sources", "model.backbone", "architecture"}))


def save_config(config: Any, folder: str | Path) -> Path:
    """Write the resolved config beside an output, so the run can be reproduced from its folder."""
    out = Path(folder) / CONFIG_FILENAME
    out.write_text(yaml.safe_dump(asdict(config), sort_keys=False), encoding="utf-8")
    return out


def finished_with(folder: str | Path, config: Any) -> bool:
    """A run folder is done when its metrics exist and it ran with the same config. The saved config is read
    back through the current schema, so a field added since (with its default) does not count as a change."""
    folder = Path(folder)
    saved = folder / CONFIG_FILENAME
    if not ((folder / "metrics.json").is_file() and saved.is_file()):
        return False
    try:
        return from_dict(type(config), yaml.safe_load(saved.read_text(encoding="utf-8")) or {}) == config
    except WarmstartError:  # a field since removed or renamed: not the same recipe any more
        return False
