"""What a `warmstart pretrain` process pays before its first step: the wall time of a tiny run from the CLI and the
heavy libraries it imports, for this tree and, with `--before REV`, for an earlier commit (a git worktree of it,
put first on PYTHONPATH), alternated in one run, medians.

Every launched process pays it (torchrun and accelerate start one a GPU or core; the suite's distributed tests
launch about 25 pairs), and so does every command a user types.

    .venv/bin/python benchmarks/startup.py [--before REV] [--repeats 5] [--out benchmarks/results/startup.md]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from few_label import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sklearn", "scipy.stats", "pandas", "deepspeed", "mlflow", "matplotlib", "datasets", "peft",
         "sentence_transformers")


def corpus(path: Path) -> None:
    rng = random.Random(0)
    words = "the film story actor scene plot was is a very and this movie good bad".split()
    docs = ["\n".join(" ".join(rng.choice(words) for _ in range(10)) + "." for _ in range(4)) for _ in range(60)]
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")


def run(src: Path, tmp: Path, text: Path) -> tuple[float, set[str]]:
    """One tiny pretraining run from the CLI with `src` first on the path. -> (wall s, heavy modules imported)"""
    out = tmp / f"run{time.monotonic_ns()}"
    cmd = [sys.executable, "-X", "importtime", "-m", "warmstart", "pretrain", f"output_dir={out}",
           f"corpus.sources=[{text}]", f"corpus.cache_dir={out}.cache", "tokenizer.vocab_size=200",
           "tokenizer.min_frequency=1", "model.num_layers=2", "model.hidden_size=32", "model.num_heads=2",
           "model.intermediate_size=64", "model.max_seq_len=32", "train.batch_size=8", "train.max_steps=6",
           "train.precision=fp32"]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)})
    wall = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    imported = set(re.findall(r"\|\s+([\w.]+)\s*$", done.stderr, flags=re.MULTILINE))
    return wall, {m for m in HEAVY if m in imported}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=None, help="an earlier commit to time beside this tree")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/startup.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus(tmp / "corpus.txt")
        trees = {"this tree": ROOT / "src"}
        if args.before:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tmp / "before"),
                            args.before], check=True, capture_output=True)
            trees = {f"before ({args.before})": tmp / "before" / "src", **trees}
        try:
            walls: dict[str, list[float]] = {name: [] for name in trees}
            heavy: dict[str, set[str]] = {}
            for _ in range(args.repeats):  # alternated
                for name, src in trees.items():
                    wall, heavy[name] = run(src, tmp, tmp / "corpus.txt")
                    walls[name].append(wall)
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "before")],
                               capture_output=True)
    lines = [f"# A tiny `warmstart pretrain` from the CLI: wall time and heavy imports ({time.strftime('%Y-%m-%d')})",
             "", f"CPU: {cpu_name()}, 2 cores, alone. `.venv/bin/python benchmarks/startup.py"
             f"{' --before ' + args.before if args.before else ''} --repeats {args.repeats}`: 6 steps of a 2-layer "
             f"BERT (the steps take well under a second: the rest is starting up); medians of {args.repeats}, "
             "alternated.", "", "| tree | wall s (median) | min | max | heavy libraries imported |", "|---|---|---|---|---|"]
    for name, times in walls.items():
        lines.append(f"| {name} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} | "
                     f"{', '.join(sorted(heavy[name])) or 'none'} |")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
