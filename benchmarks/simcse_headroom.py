"""How much SimCSE has left to learn on each dev task: MiniLM as shipped, scored on the adaptation's own held-out
sentences (the same split, views and batches a run evaluates on) before any step. (issue 21)

    .venv/bin/python benchmarks/simcse_headroom.py wordnet rt acl chatterbot

Measured 2026-12-03 (Intel Xeon with AMX, bf16): match rate 1.000 on all four, loss 0.0047 / 0.0016 / 0.0007 /
0.0000: the held-out task is solved before training, so its loss cannot say when SimCSE over-fits.
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from dev_tasks import build
from domain_adaptation import OBJECTIVES

from warmstart.engine.distributed import Cluster
from warmstart.engine.runtime import set_threads
from warmstart.models.common import minilm_folder
from warmstart.pretraining.recipes import load_pretrain_config
from warmstart.pretraining.sentence import SentenceAdaptation

set_threads(2)
root = Path("runs/domain_adaptation")
for task in sys.argv[1:]:
    d = build(task, root / "data")
    sources = [str(d / "tapt.txt")] + ([str(d / "dapt.txt")] if (d / "dapt.txt").is_file() else [])
    spec = OBJECTIVES["simcse"]
    cfg = load_pretrain_config(None, [], {"output_dir": f"runs/headroom/{task}", "model": {"init": str(minilm_folder()), "max_seq_len": 64},
            "objective": spec["objective"], "corpus": {"sources": sources, "cache_dir": "runs/headroom/cache"},
            "train": {**spec["train"], "max_steps": 1}})
    t = time.perf_counter()
    job = SentenceAdaptation(cfg, Cluster(), Path("runs/headroom/x"), False, True)
    m = job.evaluate(job.objective)
    print(json.dumps({"task": task, "sentences": len(job.data.sentences), **m, "s": round(time.perf_counter() - t, 1)}), flush=True)
