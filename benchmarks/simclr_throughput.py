"""SimCLR images/s: warmstart against a plain PyTorch loop, same model, same augmentations, same machine.

    .venv/bin/python benchmarks/simclr_throughput.py [--repeats 3] [--steps 40] [--images F] [overrides]
    .venv/bin/python benchmarks/simclr_throughput.py --host

The plain loop is how SimCLR is usually written (torchvision-style): a Dataset whose `__getitem__` draws
two augmented views of one image, a DataLoader that batches them (pinned when there is a GPU), the model in
the default memory format, `torch.optim.AdamW` with defaults, in the precision warmstart's `auto` picks on
this machine (bf16 autocast where it is faster, as a user would set it). It uses warmstart's own
augmentation functions, applied per image on the host, so the views are the same distribution; warmstart
draws the views' parameters on the host and makes the pixels where the model is (data/vision.py).
On a GPU machine both loops run there (the device is warmstart's choice, `WARMSTART_DEVICE` included).
The reference is measured with 0 and 2 DataLoader workers (up to 8 on a machine with more cores) and the
faster one is kept. `--images`: another image source (e.g. a .npy of colour images, with
`model.image_size=96`) instead of Fashion-MNIST. Runs alternate in one process; medians and the ratio are
printed and written to benchmarks/results/simclr_throughput.md (`--out`: elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, steady_rate

IDX = ROOT.parent / "shared" / "data" / "images" / "fashion-mnist" / "train-images-idx3-ubyte.gz"
RECIPE = ROOT / "configs" / "pretrain" / "simclr_fashion_mnist.yaml"
BATCH = 256


def warmstart_rate(work: Path, steps: int, overrides: list[str], images: Path = IDX) -> float:
    from warmstart.config import ImagePretrainConfig, load_config
    from warmstart.pretraining.images import run_image_pretrain

    cfg = load_config(ImagePretrainConfig, RECIPE, [
        f"output_dir={work / 'ws'}", f"data.sources=[{images}]", f"train.max_steps={steps}", "train.max_minutes=null",
        "train.log_every=1", "train.eval_every=100000", "train.save_every_minutes=1000", f"train.batch_size={BATCH}", *overrides])
    run_image_pretrain(cfg)
    log = [json.loads(line) for line in (work / "ws" / "training_log.jsonl").read_text().splitlines()]
    return steady_rate([r["seconds"] for r in log if "images_per_s" in r], BATCH)


def plain_rate(images: torch.Tensor, steps: int, workers: int, overrides: list[str]) -> float:
    """The reference loop. -> steady-state images/s"""
    from torch.utils.data import DataLoader, Dataset

    from warmstart.config import ImagePretrainConfig, load_config
    from warmstart.data.vision import augment, channel_stats
    from warmstart.engine.runtime import autocast, device, place, to_device, use_bf16
    from warmstart.models.images import build_image_backbone, image_feature_dim, image_features
    from warmstart.objectives.simclr import ProjectionHead, nt_xent_loss

    cfg = load_config(ImagePretrainConfig, RECIPE, overrides)
    mean, std = channel_stats(images)

    class TwoViews(Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            gen = torch.Generator().manual_seed(i)
            one = images[i:i + 1]
            return (augment(one, cfg.objective.augment, cfg.model.image_size, mean, std, gen)[0],
                    augment(one, cfg.objective.augment, cfg.model.image_size, mean, std, gen)[0])

    backbone = build_image_backbone(cfg.model, images.shape[1], seed=0)
    dim = image_feature_dim(backbone.config)
    head = ProjectionHead(dim, dim, cfg.objective.projection_dim)
    place(backbone), place(head)
    bf16 = use_bf16("auto")
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    loader = DataLoader(TwoViews(), batch_size=BATCH, shuffle=True, drop_last=True, num_workers=workers,
                        persistent_workers=workers > 0, pin_memory=device().type == "cuda")
    times = []

    def views():  # epochs until the steps are done (a small image set has few batches)
        while True:
            yield from loader

    for step, (v1, v2) in enumerate(views()):
        with autocast(bf16):
            z = head(image_features(backbone, to_device(torch.cat([v1, v2]), non_blocking=True)))
            loss = nt_xent_loss(*z.chunk(2), cfg.objective.temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device().type == "cuda":
            torch.cuda.synchronize()  # the clock reads the GPU's work, not its queue
        times.append(time.perf_counter())
        if step + 1 == steps:
            break
    return steady_rate(times, BATCH)


def host_costs(repeats: int = 7) -> str:
    """What the host spends a batch of 256 on the views: all of them (as before the split, and as the plain loop
    does, in its workers) against their parameters only (warmstart's prepare since the split). Medians, ms."""
    from warmstart.config import AugmentConfig
    from warmstart.data.vision import draw_view, simclr_views

    def median_ms(fn, *args) -> float:
        fn(*args)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - t)
        return 1000 * statistics.median(times)

    def two_draws(shape, cfg, size, gen):
        return [draw_view(shape[0], shape[1], cfg, size, gen) for _ in range(2)]

    rows = ["| images | views made on the host (ms) | parameters only (ms) |", "|---|---|---|"]
    for name, shape, size, cfg in (
            ("Fashion-MNIST 1x28x28 -> 32, the recipe", (256, 1, 28, 28), 32,
             AugmentConfig(crop_min_scale=0.2, jitter_p=0.8)),
            ("colour 3x96x96 -> 96, blur_p 0.5 (STL-10-like)", (256, 3, 96, 96), 96, AugmentConfig(blur_p=0.5))):
        images = torch.randint(0, 256, shape, dtype=torch.uint8)
        gen = torch.Generator().manual_seed(0)
        mean, std = [0.5] * 3, [0.25] * 3
        full = median_ms(simclr_views, images, cfg, size, mean, std, gen)
        params = median_ms(two_draws, shape, cfg, size, gen)
        rows.append(f"| {name} | {full:.1f} | {params:.2f} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--images", type=Path, default=IDX, help="the images (IDX, .npy/.npz, a folder)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "simclr_throughput.md")
    p.add_argument("--host", action="store_true", help="only the host's cost of a batch's views")
    p.add_argument("overrides", nargs="*", help="recipe overrides for both loops, e.g. model.widths=[64,128,256]")
    args = p.parse_args()
    from warmstart.data.images import load_images
    from warmstart.engine.runtime import set_threads

    set_threads(None)
    if args.host:
        print(host_costs())
        return
    images = load_images([str(args.images)]).images[:20000]
    pool = (0, max(2, min(8, os.cpu_count() or 2)))
    rates: dict[str, list[float]] = {"warmstart": [], **{f"plain PyTorch ({w} workers)": [] for w in pool}}
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            rates["warmstart"].append(warmstart_rate(Path(tmp), args.steps, args.overrides, args.images))
        for workers in pool:
            rates[f"plain PyTorch ({workers} workers)"].append(plain_rate(images, args.steps, workers, args.overrides))
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f} img/s" for k, v in rates.items()), flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    plain = [v for k, v in rates.items() if k != "warmstart"]
    reference = max(statistics.median(v) for v in plain)
    ratios = [w / max(p) for w, *p in zip(rates["warmstart"], *plain, strict=True)]
    lines = ["| loop | images/s (median) |", "|---|---|"] + [f"| {k} | {v:,.0f} |" for k, v in med.items()]
    lines.append(f"\nRatio warmstart / best plain loop: **{statistics.median(ratios):.2f}x** (median of "
                 f"{args.repeats} alternated repeats; {args.steps} steps of batch {BATCH}, "
                 f"{'Fashion-MNIST' if args.images == IDX else args.images.name}, {torch.get_num_threads()} threads{'; ' + ' '.join(args.overrides) if args.overrides else ''}). Reference median: {reference:,.0f} images/s.")
    text = "\n".join(lines)
    print(text)
    out = args.out
    command = " ".join(["benchmarks/simclr_throughput.py", *([f"--images {args.images}"] if args.images != IDX else []),
                        *args.overrides])
    with out.open("a") as f:  # one section per configuration measured
        f.write(f"\n## `.venv/bin/python {command}`\n\n{text}\n")


if __name__ == "__main__":
    main()
