"""`train.report_to: tensorboard | wandb | mlflow` (`--report-to`): every logged record of a run also goes to an
experiment tracker, through accelerate's trackers (the ones `Accelerator(log_with=...)` uses), so warmstart's
runs sit beside those of any accelerate or Trainer script.

The events live inside the run's own folder, `OUTPUT_DIR/tracking/` (TensorBoard event files, W&B's run
folder, an MLflow file store), as HF Trainer keeps its logs under `output_dir`. A fine-tuning run publishes
its folder whole at the end, so its tracker writes into a staging folder beside it that moves in with the
rest (tasks/finetune.write_run). W&B follows its own settings (WANDB_MODE=offline writes only locally;
WANDB_PROJECT names the project, default "warmstart"); MLflow writes to MLFLOW_TRACKING_URI when the user has
set one, else to a local file store in the run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from warmstart.errors import WarmstartError

TRACKERS = ("none", "tensorboard", "wandb", "mlflow")
TRACKING = "tracking"  # the folder inside a run that holds its tracker's files
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow-skinny"}


@dataclass(frozen=True)
class Tracking:
    """Which tracker a run reports to, where its files go, and the run's name there."""

    kind: str
    folder: Path
    run_name: str


def tracking_for(report_to: str | None, folder: str | Path, run_name: str | None = None) -> Tracking | None:
    """The tracking of a run whose tracker files go to `folder` (None: not tracked)."""
    if report_to in (None, "", "none"):
        return None
    if report_to not in TRACKERS:
        raise WarmstartError(f"train.report_to: unknown tracker '{report_to}'; use {', '.join(TRACKERS)}")
    folder = Path(folder)
    return Tracking(report_to, folder, run_name or folder.parent.name)


class Tracker:
    """accelerate's tracker of `tracking.kind`, fed the loop's records (numbers only; the step is the x axis)."""

    def __init__(self, tracking: Tracking):
        from accelerate import PartialState

        PartialState()  # accelerate's trackers log through its logger, which needs its state; this joins an
        # existing process group (torchrun) and creates none of its own
        tracking.folder.mkdir(parents=True, exist_ok=True)
        try:
            self.tracker = self._make(tracking)
        except ModuleNotFoundError:
            raise WarmstartError(f"train.report_to={tracking.kind} needs the {PACKAGES[tracking.kind]} package: "
                                 f"pip install 'warmstart[{tracking.kind}]'") from None
        self.tracker.main_process_only = False  # only the main process makes one
        self.tracker.start()

    @staticmethod
    def _make(tracking: Tracking):
        from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker

        if tracking.kind == "tensorboard":
            return TensorBoardTracker(tracking.run_name, tracking.folder)
        if tracking.kind == "wandb":
            import wandb  # noqa: F401 (a missing package is reported before accelerate's own message)

            return WandBTracker(os.environ.get("WANDB_PROJECT", "warmstart"), dir=str(tracking.folder),
                                name=tracking.run_name)
        import mlflow

        if not os.environ.get("MLFLOW_TRACKING_URI"):
            # a local file store inside the run folder; MLflow 3 asks for this opt-in to a file backend
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((tracking.folder / "mlruns").resolve().as_uri())
        return MLflowTracker(experiment_name="warmstart", run_name=tracking.run_name)

    def log(self, record: dict) -> None:
        values = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        self.tracker.log(values, step=int(record["step"]))

    def close(self) -> None:
        self.tracker.finish()
