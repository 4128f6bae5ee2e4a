"""A `warmstart predict` killed mid-file, then run again: what the kept chunks save, and what keeping them costs.

    .venv/bin/python benchmarks/predict_resume.py [--rows 10240] [--repeats 3] [--out benchmarks/results]

Fits the public MiniLM's linear probe on 100 Rotten Tomatoes labels, writes `--rows` reviews (the dataset's texts,
repeated) and, from the CLI as a user runs it: predicts them whole (timed); predicts them again, SIGKILLed once
half the chunks are kept (engine/partial.py), then once more (timed: the resumed run), and compares its file with
the whole run's: the kept chunks byte for byte; the chunks the resumed process computed differ where a fresh
process's kernels round otherwise (in bf16, up to about 2e-3 of a probability: the same chunk alone in a fresh
process differs from the whole run's as much). Then, in one process, alternated `--repeats` times: the same rows through the
predictor with each chunk kept on disk and with nothing kept (medians: the cost of keeping). Run it alone.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name, publish  # noqa: E402

import warmstart  # noqa: E402
from warmstart.engine import partial  # noqa: E402
from warmstart.engine.partial import KeptChunks, files_key, finished, partial_path  # noqa: E402
from warmstart.models.common import minilm_folder  # noqa: E402
from warmstart.prediction import Predictor  # noqa: E402
from warmstart.tasks.registry import PREDICT_CHUNK  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "sentiment" / "rotten_tomatoes.csv"
CLI = [sys.executable, "-m", "warmstart", "predict"]


def cli(model: Path, src: Path, out: Path, kill_at: int | None = None) -> float:
    """Run `warmstart predict` -> seconds; `kill_at`: SIGKILL it once that many chunks are kept."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([*CLI, str(model), str(src), "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    while kill_at is not None and proc.poll() is None:
        if len(finished(partial_path(out))) >= kill_at:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    if kill_at is None and proc.returncode != 0:
        raise SystemExit(f"warmstart predict failed ({proc.returncode})")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5 * PREDICT_CHUNK)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    texts = pd.read_csv(DATA)["text"].tolist()
    chunks = -(-args.rows // PREDICT_CHUNK)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = warmstart.finetune("sentiment", init=str(minilm_folder()), output_dir=str(work / "model"),
                                 data={"path": str(DATA), "labels": 100},
                                 train={"strategy": "linear_probe", "max_length": 64})
        src = work / "reviews.csv"
        pd.DataFrame({"id": range(args.rows), "text": [texts[i % len(texts)] for i in range(args.rows)]}).to_csv(
            src, index=False)
        whole_out, out = work / "whole.csv", work / "resumed.csv"
        whole = cli(run.output_dir, src, whole_out)
        killed_at = cli(run.output_dir, src, out, kill_at=chunks // 2)
        kept = len(finished(partial_path(out)))
        resumed = cli(run.output_dir, src, out)
        same = out.read_bytes() == whole_out.read_bytes()
        a, b = pd.read_csv(whole_out), pd.read_csv(out)
        probs = [c for c in a.columns if c.startswith("prob_")]
        diff = (a[probs] - b[probs]).abs().to_numpy().max(axis=1)
        kept_rows = kept * PREDICT_CHUNK
        differ = (f"probabilities of the {kept_rows:,} kept rows: max difference {diff[:kept_rows].max():.1e}; of "
                  f"the {args.rows - kept_rows:,} computed again: {diff[kept_rows:].max():.1e}; predictions that "
                  f"differ: {int((a['prediction'] != b['prediction']).sum())} of {args.rows:,}")
        left = partial_path(out).exists()
        predictor = Predictor(run.output_dir)
        keep, none, writing, write = [], [], [], partial.record

        def timed_record(*a):  # the keeping itself, beside the run's noise
            t0 = time.perf_counter()
            kept_it = write(*a)
            writing.append(time.perf_counter() - t0)
            return kept_it

        partial.record = timed_record
        for r in range(args.repeats):  # alternated, in one process: the cost of writing each chunk down
            path = work / f"kept{r}.csv"
            store = KeptChunks(partial_path(path), files_key({}, [src]), "bench")
            t0 = time.perf_counter()
            predictor.predict_file(src, None, None, 64, False, store)
            keep.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            predictor.predict_file(src, None, None, 64, False, None)
            none.append(time.perf_counter() - t0)
    rows = [("whole run (CLI, model load included)", f"{whole:.1f}", f"{args.rows:,}"),
            (f"killed (SIGKILL) once {chunks // 2} of {chunks} chunks were kept", f"{killed_at:.1f}",
             f"{kept * PREDICT_CHUNK:,} kept"),
            ("the same command again: resumed", f"{resumed:.1f}", f"{args.rows - kept * PREDICT_CHUNK:,}")]
    table = "\n".join(["| run | seconds | rows predicted |", "|---|---|---|",
                       *[f"| {a} | {b} | {c} |" for a, b, c in rows]])
    m_keep, m_none = statistics.median(keep), statistics.median(none)
    text = (f"# A killed `warmstart predict` resumes\n\nMiniLM linear probe (100 RT labels, max_length 64), {args.rows:,} "
            f"rows in chunks of {PREDICT_CHUNK}, {cpu_name()}, torch {__import__('torch').__version__}; "
            f"`{' '.join(sys.argv)}`\n\n{table}\n\nThe resumed file is the whole run's byte for byte: {same}; {differ}; "
            f"kept chunks left behind: {left}. The resumed run took {resumed / whole:.2f} of a whole one.\n\n"
            f"Keeping each chunk on disk (in one process, alternated, medians of {args.repeats}): {m_keep:.2f} s kept "
            f"against {m_none:.2f} s not kept for the {args.rows:,} rows ({100 * (m_keep / m_none - 1):+.1f}%); "
            f"writing the {chunks} chunks down (JSON, flushed and fsynced) took {1000 * sum(writing) / args.repeats:.0f} "
            "ms of each kept run.\n")
    publish(text, args.out, "predict_resume.md")


if __name__ == "__main__":
    main()
