"""Host time of the text job's batch preparation at BERT-base shape (reading a block, then `prepare`: masks and
the sparse head's slots), with the eager and the compiled settings: the host work that runs serially with a GPU
step's kernel launches.

    .venv/bin/python benchmarks/host_prep.py

2026-12-04, Intel Xeon (AMX), 2 threads: read 2.74 ms + prepare 0.68 ms per 128 x 128 batch (medians of 40;
an earlier draft of this script measured 3.07 + 0.76),
against some 23 ms a compiled H200 step leaves the GPU idle (README, Speed: On a GPU).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import shared_tokenizer
from gpu_throughput import SHAPES, shape_overrides

from warmstart.config import PretrainConfig, load_config
from warmstart.engine.distributed import Cluster
from warmstart.pretraining.text import TextPretraining


def median_ms(fn, items) -> float:
    times = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main(batches: int = 40) -> None:
    shape = SHAPES["base"]
    for compile_ in ("false", "true"):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            shared_tokenizer(work / "tokenizer")
            cfg = load_config(PretrainConfig, None, [
                *shape_overrides(work / "tokenizer", work, work / "out", shape), f"train.compile={compile_}"])
            job = TextPretraining(cfg, Cluster(), work / "none", False, True)
            blocks = job.data.iterate(0, 0)
            read = median_ms(lambda _, it=blocks: next(it), range(batches))
            raw = [b for _, _, b in (next(blocks) for _ in range(batches))]
            prep = median_ms(job.prepare, raw)
        print(f"compile={compile_}: read {read:.2f} ms + prepare {prep:.2f} ms per {shape['batch']} x "
              f"{shape['max_seq_len']} batch (medians of {batches}; {torch.get_num_threads()} threads)", flush=True)


if __name__ == "__main__":
    main()
