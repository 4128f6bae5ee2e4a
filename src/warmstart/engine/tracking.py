"""`train.report_to: tensorboard` (`--report-to tensorboard`): every logged record of a run also goes to
TensorBoard, through accelerate's tracker (the one `Accelerator(log_with="tensorboard")` uses), so runs from
warmstart sit beside those of any accelerate or Trainer script in the same `tensorboard --logdir`."""

from __future__ import annotations

from pathlib import Path

from warmstart.errors import WarmstartError

REPORT_TO = ("none", "tensorboard")


def tracking_dir(report_to: str | None, output_dir: str | Path) -> Path | None:
    """Where a run's events go: a `tensorboard/` folder beside the run folder (fine-tuning publishes its folder
    atomically at the end, so events written during training cannot live inside it). None: not tracked."""
    if report_to in (None, "", "none"):
        return None
    if report_to not in REPORT_TO:
        raise WarmstartError(f"train.report_to: unknown tracker '{report_to}'; use {' or '.join(REPORT_TO)}")
    out = Path(output_dir)
    return out.parent / "tensorboard" / out.name


class Tracker:
    """accelerate's TensorBoardTracker, fed the loop's records (numbers only; the step is the x axis)."""

    def __init__(self, folder: Path):
        try:
            from accelerate import PartialState
            from accelerate.tracking import TensorBoardTracker

            PartialState()  # accelerate's trackers log through its logger, which needs its state; this joins an
            # existing process group (torchrun) and creates none of its own
            self.tracker = TensorBoardTracker(folder.name, folder.parent)
            self.tracker.main_process_only = False  # only the main process makes one; no PartialState needed
            self.tracker.start()
        except ModuleNotFoundError:
            raise WarmstartError("train.report_to=tensorboard needs the tensorboard package: "
                                 "pip install 'warmstart[tensorboard]'") from None

    def log(self, record: dict) -> None:
        values = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        self.tracker.log(values, step=int(record["step"]))

    def close(self) -> None:
        self.tracker.finish()
