"""Shared pieces of the benchmarks: the bundled corpus, one tokenizer for all runs, the Hugging Face
reference recipe (run_mlm.py: Trainer + DataCollatorForLanguageModeling over grouped texts), and
measured hardware peaks. Benchmarks are scripts, not tests: the machine is shared and noisy, so each
reports medians of alternated repeats and ratios measured side by side in one process."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "src" / "warmstart" / "demo_data" / "movies_unlabelled.txt.gz"

# The model of ../shared/ANCHORS.md: BERT 4 layers, hidden 256, 4 heads, 8k WordPiece, sequence 128.
MODEL = dict(num_layers=4, hidden_size=256, num_heads=4, intermediate_size=1024, max_seq_len=128)


def corpus_lines(*paths: Path) -> list[str]:
    """Every non-blank line (segment) of the given sources, default the bundled movie text."""
    from warmstart.data.sources import load_documents

    return [seg for doc in load_documents([str(p) for p in paths or [CORPUS]]) for seg in doc]


def shared_tokenizer(folder: Path, vocab_size: int = 8192):
    """Train the WordPiece tokenizer once and save it, so both recipes use the very same vocabulary."""
    from warmstart.data.sources import load_documents
    from warmstart.data.text import load_tokenizer, train_tokenizer

    if not (folder / "tokenizer.json").is_file():
        train_tokenizer(load_documents([str(CORPUS)]), vocab_size).save_pretrained(str(folder))
    return load_tokenizer(str(folder))


def hf_recipe(tokenizer, lines: list[str], steps: int, batch_size: int = 32, seq_len: int = 128,
              mlm_probability: float = 0.15, lr: float = 5e-4, seed: int = 0, bf16: bool = False,
              eval_lines: list[str] | None = None, max_seconds: float | None = None,
              keep_model_in: Path | None = None, model_shape: dict | None = None, compile: bool = False) -> dict:
    """The Hugging Face recipe (run_mlm.py): tokenise, group texts into blocks of `seq_len`,
    `DataCollatorForLanguageModeling`, `Trainer`. Returns steady-state tokens/s (steps after the first
    five) and, with `eval_lines`, the held-out MLM loss; `keep_model_in` saves model and tokenizer there;
    `compile`: Trainer's own `torch_compile=True`."""
    from datasets import Dataset
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    def group(examples: dict) -> dict:
        ids = [t for row in examples["input_ids"] for t in row]
        n = len(ids) // seq_len * seq_len
        return {"input_ids": [ids[i:i + seq_len] for i in range(0, n, seq_len)]}

    def blocks(texts: list[str]) -> Dataset:
        ds = Dataset.from_dict({"text": texts})
        ds = ds.map(lambda b: tokenizer(b["text"], return_special_tokens_mask=False), batched=True,
                    remove_columns=["text"])
        return ds.map(group, batched=True, remove_columns=ds.column_names)

    train = blocks(lines)
    shape = model_shape or MODEL
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=shape["hidden_size"],
                        num_hidden_layers=shape["num_layers"], num_attention_heads=shape["num_heads"],
                        intermediate_size=shape["intermediate_size"], pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = BertForMaskedLM(config)
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter())
            if max_seconds and times[-1] - times[0] > max_seconds:
                control.should_training_stop = True

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(out, per_device_train_batch_size=batch_size, max_steps=steps, learning_rate=lr,
                                 warmup_steps=0.06, weight_decay=0.01, lr_scheduler_type="linear",
                                 logging_strategy="no", save_strategy="no", report_to="none", seed=seed,
                                 bf16=bf16, use_cpu=not torch.cuda.is_available(), disable_tqdm=True,
                                 dataloader_drop_last=True, torch_compile=compile)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
        trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator, callbacks=[Clock()])
        trainer.train()
        result = {"steps": len(times), "tokens_per_s": steady_rate(times, batch_size * seq_len)}
        if eval_lines:
            result["val_mlm_loss"] = hf_eval_loss(model, tokenizer, blocks(eval_lines), seq_len)
    if keep_model_in:
        model.save_pretrained(keep_model_in)
        tokenizer.save_pretrained(keep_model_in)
    return result


@torch.no_grad()
def hf_eval_loss(model, tokenizer, blocks, seq_len: int, batches: int = 20, seed: int = 1) -> float:
    """Held-out MLM loss with a fixed mask, as in warmstart's evaluation."""
    from transformers import DataCollatorForLanguageModeling

    model.eval()
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    torch.manual_seed(seed)
    losses = []
    for i in range(min(batches, len(blocks) // 32)):
        batch = collator([{"input_ids": x} for x in blocks[i * 32:(i + 1) * 32]["input_ids"]])
        losses.append(float(model(**batch).loss))
    return statistics.mean(losses)


def steady_rate(step_times: list[float], tokens_per_step: int, skip: int = 5) -> float:
    """Tokens/s over the steps after the first `skip` (warm-up, allocator, first-touch costs)."""
    if len(step_times) <= skip + 1:
        raise ValueError("too few steps to measure a steady rate")
    return tokens_per_step * (len(step_times) - 1 - skip) / (step_times[-1] - step_times[skip])


def measured_peaks(repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of an fp32 matmul and of a bf16 `nn.Linear` under autocast (oneDNN; AMX where present)."""
    x32, w32 = torch.randn(4096, 1024), torch.randn(1024, 1024)
    lin = torch.nn.Linear(1024, 1024)

    def best(fn) -> float:
        fn()
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(5):
                fn()
            runs.append((time.perf_counter() - t) / 5)
        return 2 * 4096 * 1024 * 1024 / min(runs) / 1e9

    def bf16_linear():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            lin(x32)

    return {"fp32_matmul_gflops": best(lambda: x32 @ w32), "bf16_linear_gflops": best(bf16_linear)}


def model_flops_per_token(vocab: int, mlm_fraction: float = 0.15, sparse: bool = True,
                          model_shape: dict | None = None) -> float:
    """Training FLOPs per token (forward + backward = 6 x multiply-adds x 2 ... i.e. 6 per weight):
    the encoder's dense layers, attention scores over `max_seq_len`, and the MLM head on the masked
    positions only (what a sparse head computes; a dense head spends more but does no more useful work)."""
    shape = model_shape or MODEL
    h, i, layers, t = shape["hidden_size"], shape["intermediate_size"], shape["num_layers"], shape["max_seq_len"]
    dense = layers * (4 * h * h + 2 * h * i)
    attention = layers * 2 * t * h  # QK^T and AV multiply-adds per token
    head = (h * h + h * vocab) * (mlm_fraction if sparse else 1.0)
    return 6 * (dense + attention + head)


def kept_sections(path: Path, keep) -> str:
    """The `## ` sections of a results file whose heading `keep(heading)` accepts, carried over as they are (with
    any protocol note inside them), so that a run of some tasks or domains rewrites the file without deleting the
    tables it did not measure. -> the text to append ('' when nothing is kept)"""
    if not path.is_file():
        return ""
    out, keeping = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            keeping = bool(keep(line[3:]))
        if keeping:
            out.append(line)
    return ("\n" + "\n".join(out) + "\n") if out else ""
