"""The sentence-transformers side: the setfit library (the rival every few-label text comparison carries).

setfit 1.2.0 imports `evaluate` when it loads (only its `Trainer.evaluate` uses it, to fetch a metric script
from the hub). This project does not install `evaluate` (a hub fetch at run time), so setfit is installed
without its dependencies (Makefile) and, when `evaluate` is absent, a stand-in module takes its name whose
`load` refuses in one line; warmstart never calls `Trainer.evaluate` (it scores predictions itself).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

from warmstart.errors import WarmstartError

SETFIT_VERSION = "1.2.0"  # the pin in pyproject.toml's `setfit` extra and the Makefile


def _evaluate_stand_in() -> types.ModuleType:
    module = types.ModuleType("evaluate")

    def load(*args: Any, **kwargs: Any) -> None:
        raise WarmstartError("evaluate.load: not available here (it fetches metric scripts from the hub); "
                             "warmstart scores SetFit's predictions itself")

    module.load = load  # type: ignore[attr-defined]
    module.__warmstart_stand_in__ = True  # type: ignore[attr-defined]
    return module


def import_setfit() -> types.ModuleType:
    """The setfit package, importable without `evaluate`. One line when it is not installed."""
    if importlib.util.find_spec("setfit") is None or importlib.util.find_spec("sentence_transformers") is None:
        raise WarmstartError(f"the SetFit baseline needs setfit=={SETFIT_VERSION} and sentence-transformers: "
                             f"pip install sentence-transformers && pip install --no-deps setfit=={SETFIT_VERSION} "
                             "(make setup does both)")
    if "evaluate" not in sys.modules and importlib.util.find_spec("evaluate") is None:
        sys.modules["evaluate"] = _evaluate_stand_in()
    return importlib.import_module("setfit")


def load_setfit_model(folder: str | Path) -> Any:
    """`setfit.SetFitModel` over a local sentence-transformers (or plain HF encoder) folder, checked as every
    checkpoint warmstart reads (engine/checkpoint.require_weights: safetensors only, no checkpoint code, no pickled
    head), offline; the head is always a fresh one."""
    from warmstart.engine.checkpoint import require_weights

    setfit = import_setfit()
    checked = require_weights(folder)
    if (checked / "model_head.pkl").exists():  # setfit would unpickle it (joblib): code that runs on load
        raise WarmstartError(f"{checked}: holds a pickled SetFit head (model_head.pkl), which warmstart does not "
                             "load; give the sentence-transformers body without it")
    return setfit.SetFitModel.from_pretrained(str(checked), local_files_only=True, trust_remote_code=False)
