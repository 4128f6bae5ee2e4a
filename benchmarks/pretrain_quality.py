"""Speed is not bought with quality: held-out MLM loss of warmstart vs the Hugging Face recipe.

    .venv/bin/python benchmarks/pretrain_quality.py [--steps 300] [--minutes 10]

1. Equal tokens: both recipes train the same BERT (4L/256H, seq 128, batch 32, 15% masking, lr 5e-4,
   6% warm-up then linear decay, seed 0) for `--steps` steps on the same lines; goal: warmstart's held-out
   loss within 2% of the reference's.
2. Equal time: each trains for `--minutes` of wall clock (the HF recipe's step count is set from its rate
   measured in part 1, so that its schedule also ends annealed); goal: warmstart reaches a lower loss.
Both models are scored by the same function (HF's collator with a fixed seed) on the same held-out lines.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from common import MODEL, corpus_lines, hf_eval_loss, hf_recipe, shared_tokenizer


def split_lines(lines: list[str], every: int = 50) -> tuple[list[str], list[str]]:
    """Every 50th line held out (2%), the rest for training."""
    return [x for i, x in enumerate(lines) if i % every], [x for i, x in enumerate(lines) if not i % every]


def warmstart_train(tok_dir: Path, train_file: Path, work: Path, budget: str) -> Path:
    from warmstart.config import PretrainConfig, load_config
    from warmstart.pretraining.text import run_pretrain

    cfg = load_config(PretrainConfig, None, [
        f"output_dir={work / 'ws'}", f"corpus.sources=[{train_file}]", f"corpus.cache_dir={work / 'cache'}",
        "corpus.validation_fraction=0", f"tokenizer.from_checkpoint={tok_dir}",
        *[f"model.{k}={v}" for k, v in MODEL.items()], "objective.nsp=false", "train.batch_size=32",
        "train.lr=5e-4", "train.warmup_fraction=0.06", budget, "train.eval_every=1000000", "train.log_every=20",
        "train.save_every_minutes=1000"])
    return run_pretrain(cfg)


def warmstart_eval(folder: Path, tokenizer, held_out: list[str]) -> float:
    from datasets import Dataset
    from transformers import BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(folder)
    ids = tokenizer(held_out)["input_ids"]
    flat = [t for row in ids for t in row]
    t = MODEL["max_seq_len"]
    blocks = Dataset.from_dict({"input_ids": [flat[i:i + t] for i in range(0, len(flat) // t * t, t)]})
    return hf_eval_loss(model, tokenizer, blocks, t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tokenizer = shared_tokenizer(work / "tokenizer")
        train, held_out = split_lines(corpus_lines())
        train_file = work / "train.txt"
        train_file.write_text("\n".join(train) + "\n", encoding="utf-8")  # one document, cut every 256 lines

        hf = hf_recipe(tokenizer, train, args.steps, eval_lines=held_out)
        ws = warmstart_eval(warmstart_train(work / "tokenizer", train_file, work, f"train.max_steps={args.steps}"),
                            tokenizer, held_out)
        tokens = args.steps * 32 * MODEL["max_seq_len"]
        print(f"equal tokens ({tokens:,}): HF recipe {hf['val_mlm_loss']:.4f}, warmstart {ws:.4f} "
              f"({100 * (ws / hf['val_mlm_loss'] - 1):+.1f}%; goal within 2%)", flush=True)

        seconds = 60 * args.minutes
        hf_steps = int(hf["tokens_per_s"] * seconds / (32 * MODEL["max_seq_len"]))
        hf_t = hf_recipe(tokenizer, train, hf_steps, eval_lines=held_out, max_seconds=seconds)
        ws_t = warmstart_eval(warmstart_train(work / "tokenizer", train_file, work, f"train.max_minutes={args.minutes}"),
                              tokenizer, held_out)
        metrics = json.loads((work / "ws" / "metrics.json").read_text())
        print(f"equal time ({args.minutes:g} min): HF recipe {hf_t['val_mlm_loss']:.4f} after {hf_t['steps']} steps, "
              f"warmstart {ws_t:.4f} after {metrics['steps']} steps (goal: lower)")


if __name__ == "__main__":
    main()
