"""Fashion-MNIST: what 15 CPU-minutes of SimCLR or of a denoising autoencoder buy, against scratch and raw pixels.

    .venv/bin/python benchmarks/image_transfer.py [--seeds 3] [--out runs/image_transfer]

Pretrains with configs/pretrain/{simclr,autoencoder}_fashion_mnist.yaml (skipped when the checkpoint
exists), then for each encoder and for the same architecture with random weights: a linear probe on frozen
features with all 58,000 labels (200 a class more choose its C; kNN accuracy beside it), and fine-tuning with 10
labels per class, 100 in all and nothing else (the honest protocol: early stopping and LP-FT's choice inside
them; linear_probe, full, lp_ft; `--seeds` seeds). Logistic regression on raw pixels is the classic baseline,
on the same labels.
Finished cells are reused, so an interrupted run continues. Writes table.md and results.csv under --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
from common import ROOT

FMNIST = ROOT.parent / "shared" / "data" / "images" / "fashion-mnist"
TRAIN, TEST = FMNIST / "train-images-idx3-ubyte.gz", FMNIST / "t10k-images-idx3-ubyte.gz"
RECIPES = {"SimCLR": ROOT / "configs/pretrain/simclr_fashion_mnist.yaml",
           "autoencoder": ROOT / "configs/pretrain/autoencoder_fashion_mnist.yaml"}
FINETUNE = ROOT / "configs/finetune/fashion_mnist.yaml"
ALL_LABELS = ("data.labels=null", "data.validation_per_class=200")  # every training image; 200 a class to choose C


def pretrained(name: str, out: Path) -> Path:
    from warmstart.config import ImagePretrainConfig, load_config
    from warmstart.pretraining.images import run_image_pretrain

    if not (out / "metrics.json").is_file():
        run_image_pretrain(load_config(ImagePretrainConfig, RECIPES[name], [f"output_dir={out}", f"data.sources=[{TRAIN}]"]))
    return out


def cell(out: Path, init: str, architecture: Path, *overrides: str) -> dict:
    from warmstart.config import ImageFinetuneConfig, load_config
    from warmstart.tasks.image_classification import run_image_finetune

    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    cfg = load_config(ImageFinetuneConfig, FINETUNE, [
        f"output_dir={out}", f"init={init}", f"architecture={architecture}", f"data.sources=[{TRAIN}]",
        f"data.test_sources=[{TEST}]", "train.save_model=false", *overrides])
    return run_image_finetune(cfg)


def pixel_cell(out: Path, seed: int, *overrides: str) -> dict:
    """Logistic regression on raw pixels on exactly the labelled sample a fine-tuning cell with these overrides
    sees (studies/baselines.py: C cross-validated inside the labels, or chosen on an explicit dev set)."""
    from warmstart.config import ImageFinetuneConfig, load_config
    from warmstart.studies.baselines import run_baseline

    path = out / "metrics.json"
    if path.is_file():
        return json.loads(path.read_text())
    cfg = load_config(ImageFinetuneConfig, FINETUNE, [
        f"output_dir={out}", "init=scratch", f"data.sources=[{TRAIN}]", f"data.test_sources=[{TEST}]",
        f"train.seed={seed}", *overrides])
    m = run_baseline(cfg, "pixels_logreg")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(m))
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default="runs/image_transfer")
    args = ap.parse_args()
    root = Path(args.out)
    t0 = time.perf_counter()
    encoders = {name: pretrained(name, root / name.lower()) for name in RECIPES}
    arch = encoders["SimCLR"]
    rows = []
    for name, init in {**{k: str(v) for k, v in encoders.items()}, "scratch": "scratch"}.items():
        m = cell(root / "cells" / f"{name}-probe-all", init, arch, "train.strategy=linear_probe",
                 *ALL_LABELS)
        rows.append({"init": name, "protocol": "probe, all labels", "seed": 0, "accuracy": m["accuracy"]})
        rows.append({"init": name, "protocol": "kNN, all labels", "seed": 0, "accuracy": m["knn_accuracy"]})
        print(f"  {name:12s} all labels: probe {m['accuracy']:.4f} kNN {m['knn_accuracy']:.4f}", flush=True)
        for seed in range(args.seeds):
            for strategy in ("linear_probe", "full", "lp_ft"):
                m = cell(root / "cells" / f"{name}-{strategy}-10pc-seed{seed}", init, arch, f"train.strategy={strategy}",
                         f"train.seed={seed}")
                rows.append({"init": name, "protocol": f"10/class {strategy}", "seed": seed, "accuracy": m["accuracy"]})
                print(f"  {name:12s} 10/class {strategy:12s} seed {seed}: {m['accuracy']:.4f}", flush=True)
    m = pixel_cell(root / "cells" / "pixels-all", 0, *ALL_LABELS)
    rows.append({"init": "raw pixels + LR", "protocol": "probe, all labels", "seed": 0, "accuracy": m["accuracy"]})
    for seed in range(args.seeds):
        m = pixel_cell(root / "cells" / f"pixels-10pc-seed{seed}", seed)
        rows.append({"init": "raw pixels + LR", "protocol": "10/class linear_probe", "seed": seed, "accuracy": m["accuracy"]})
    results = pd.DataFrame(rows)
    results.to_csv(root / "results.csv", index=False)
    g = results.groupby(["init", "protocol"])["accuracy"]
    cellfmt = (100 * g.mean()).round(1).astype(str) + " ± " + (100 * g.std(ddof=1)).fillna(0).round(1).astype(str)
    table = cellfmt.unstack("protocol").reindex(["SimCLR", "autoencoder", "scratch", "raw pixels + LR"])
    cols = ["probe, all labels", "kNN, all labels", "10/class linear_probe", "10/class full", "10/class lp_ft"]
    table = table[[c for c in cols if c in table.columns]].fillna("–")
    text = "\n".join(["| encoder | " + " | ".join(table.columns) + " |", "|---|" + "---|" * len(table.columns)]
                     + [f"| {i} | " + " | ".join(table.loc[i]) + " |" for i in table.index])
    (root / "table.md").write_text(text + "\n", encoding="utf-8")
    meta = {k: json.loads((v / "metrics.json").read_text()) for k, v in encoders.items()}
    print(f"\nFashion-MNIST test accuracy (%), mean ± std over {args.seeds} seeds (all-label cells: one run); "
          f"{torch.get_num_threads()} threads; {(time.perf_counter() - t0) / 60:.0f} min\n"
          + "".join(f"{k}: {m['train_seconds'] / 60:.1f} min, {m['epochs']} epochs, {m['images_per_s']:.0f} images/s\n"
                    for k, m in meta.items()) + f"\n{text}")


if __name__ == "__main__":
    main()
