"""warmstart: pretrain without labels, warm-start every downstream task, and know whether it helped.

The Python API (see api.py for keyword overrides and result objects):

    import warmstart
    best = warmstart.auto("labels.csv", unlabelled=["my_texts.txt"], budget="30m", output_dir="runs/auto")
    pre = warmstart.pretrain("bert", output_dir="runs/bert", train={"max_minutes": 5})
    run = warmstart.finetune("sentiment", init=pre.output_dir, data={"labels": 100})
    warmstart.predict(run.output_dir, "reviews.csv").rows
    warmstart.Predictor(run.output_dir).predict(["a gripping film", "dull"])
"""

__version__ = "0.2.0"

from warmstart.api import (  # noqa: E402 (the version first: pyproject reads it)
    AutoResult,
    PredictResult,
    Result,
    TableResult,
    auto,
    demo,
    finetune,
    predict,
    pretrain,
    rank,
    study,
)
from warmstart.errors import WarmstartError  # noqa: E402

__all__ = ["AutoResult", "PredictResult", "Predictor", "Result", "TableResult", "WarmstartError", "__version__",
           "auto", "demo", "finetune", "predict", "pretrain", "rank", "study"]


def __getattr__(name: str):
    """`warmstart.Predictor` on first use: `import warmstart` stays quick (no pandas, torch or model code)."""
    if name == "Predictor":
        from warmstart.prediction import Predictor

        return Predictor
    raise AttributeError(f"module 'warmstart' has no attribute '{name}'")
