"""Peak memory of pretraining as the corpus grows: the bundled corpus once and repeated 10 times.

    .venv/bin/python benchmarks/pretrain_memory.py [--steps 30] [--repeat 10]

Each run is a fresh `warmstart pretrain` process (tokenizer training, token cache, 4L/256H MLM for
`--steps` steps) whose own peak RSS is reported; the goal is the 10x run within 15% of the 1x run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import CORPUS, MODEL

CHILD = """
import resource, sys
from warmstart.cli import main
try:
    main(sys.argv[1:])
finally:
    print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def peak_rss_mb(corpus: Path, work: Path, steps: int) -> float:
    args = [f"output_dir={work / 'out'}", f"corpus.sources=[{corpus}]", f"corpus.cache_dir={work / 'cache'}",
            *[f"model.{k}={v}" for k, v in MODEL.items()], "objective.nsp=false", f"train.max_steps={steps}",
            "train.eval_every=1000000"]
    proc = subprocess.run([sys.executable, "-c", CHILD, "pretrain", *args], capture_output=True, text=True)
    lines = [x for x in proc.stderr.splitlines() if x.startswith("PEAK_RSS_KB")]
    if proc.returncode or not lines:
        raise SystemExit(f"pretraining failed:\n{proc.stderr[-2000:]}")
    return int(lines[-1].split()[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        text = f.read()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for times in (1, args.repeat):
            corpus = Path(tmp) / f"corpus_x{times}.txt"
            corpus.write_text("\n\n".join([text] * times), encoding="utf-8")
            results[times] = peak_rss_mb(corpus, Path(tmp) / f"run{times}", args.steps)
            print(f"corpus x{times} ({corpus.stat().st_size / 1e6:.1f} MB of text): peak RSS {results[times]:.0f} MB",
                  flush=True)
    growth = results[args.repeat] / results[1] - 1
    print(json.dumps({"peak_rss_mb": {f"x{k}": round(v) for k, v in results.items()},
                      "growth": f"{100 * growth:+.1f}%", "goal": "within +15%"}))


if __name__ == "__main__":
    main()
