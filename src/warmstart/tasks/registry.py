"""The task registry: every fine-tuning task, by name, with the function that runs it."""

from __future__ import annotations

from warmstart.errors import WarmstartError

# task -> (module, function): imported on use, so that one task's dependencies never slow another's start
TASK_RUNNERS = {
    "classification": ("warmstart.tasks.classification", "run_finetune"),
    "token_classification": ("warmstart.tasks.token_classification", "run_token_classification"),
    "summarization": ("warmstart.tasks.summarization", "run_summarization"),
    "response_selection": ("warmstart.tasks.response_selection", "run_response_selection"),
}


def run_task(cfg) -> dict:
    """Fine-tune `cfg.task` (a FinetuneConfig) and return its test metrics."""
    import importlib

    if cfg.task not in TASK_RUNNERS:
        raise WarmstartError(f"task: unknown task '{cfg.task}'; use {', '.join(TASK_RUNNERS)}")
    from warmstart.config import validate

    validate(cfg)
    module, function = TASK_RUNNERS[cfg.task]
    return getattr(importlib.import_module(module), function)(cfg)
