"""The strategy table: every transfer strategy on a text task and an image task, with forgetting and drift.

    .venv/bin/python benchmarks/strategies.py [--study configs/study/strategies.yaml] [--seeds 0] \
        [--text-labels 500] [--image-labels 10] [--domains text image]

Each cell is a fine-tuning run from the study's recipe with `train.strategy` set; finished cells are reused
(runs/strategies/<domain>-<labels>-<strategy>-<seed>/metrics.json). Forgetting: text, the increase of
masked-LM loss on pretraining text under the checkpoint's own MLM head; images, the drop of kNN accuracy on
the probe task. Drift: linear CKA between pretrained and fine-tuned features. Writes
benchmarks/results/strategies.md (means over seeds; ± the standard deviation when there are several).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from common import kept_sections  # noqa: E402
from few_label import cpu_name  # noqa: E402


def labels_override(domain: str, spec: dict, labels: int) -> str:
    """`data.labels` for a cell: text counts labels, images count per class (the study's `classes` of each)."""
    return f"data.labels={labels if domain == 'text' else labels * spec['classes']}"


def cell(domain: str, study: dict, labels: int, strategy: str, seed: int) -> dict:
    from warmstart.config import FinetuneConfig, ImageFinetuneConfig, load_config

    out = ROOT / "runs" / "strategies" / f"{domain}-{labels}-{strategy}-{seed}"
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    spec = study[domain]
    count = labels_override(domain, spec, labels)
    overrides = [f"output_dir={out}", f"init={spec['init']}", count, f"train.strategy={strategy}",
                 f"train.seed={seed}", "train.save_model=false", *spec.get("overrides", [])]
    if domain == "text":
        from warmstart.tasks.classification import run_finetune

        return run_finetune(load_config(FinetuneConfig, ROOT / spec["recipe"], overrides))
    from warmstart.tasks.image_classification import run_image_finetune

    return run_image_finetune(load_config(ImageFinetuneConfig, ROOT / spec["recipe"], overrides))


def rival(domain: str, study: dict, labels: int, seed: int) -> float:
    """The classic rival on the labels a cell of `seed` sees (the recipe's data, seeds and draw; C by
    cross-validation inside them): TF-IDF + LR for text, logistic regression on raw pixels for images."""
    from warmstart.config import FinetuneConfig, ImageFinetuneConfig, load_config
    from warmstart.studies.baselines import run_baseline

    spec = study[domain]
    count = labels_override(domain, spec, labels)
    kind = FinetuneConfig if domain == "text" else ImageFinetuneConfig
    cfg = load_config(kind, ROOT / spec["recipe"], [
        f"output_dir=runs/strategies/{domain}-rival", "init=scratch",  # the baselines write nothing there
        count, f"train.seed={seed}", *(o for o in spec.get("overrides", []) if o.startswith("data."))])
    return run_baseline(cfg)["accuracy"]


RIVALS = {"text": "TF-IDF + LR", "image": "Logistic regression on raw pixels"}


def fmt(values: list, scale: float = 1.0, digits: int = 1) -> str:
    values = [v * scale for v in values if v is not None]
    if not values:
        return "–"
    mean = f"{np.mean(values):.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ± {np.std(values):.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="configs/study/strategies.yaml")
    ap.add_argument("--seeds", type=int, nargs="+")
    ap.add_argument("--text-labels", type=int, nargs="+")
    ap.add_argument("--image-labels", type=int, nargs="+")
    ap.add_argument("--domains", nargs="+", default=["text", "image"])
    args = ap.parse_args()
    study = yaml.safe_load((ROOT / args.study).read_text())
    seeds = args.seeds or study["seeds"]
    counts = {"text": args.text_labels or study["text"]["labels"],
              "image": args.image_labels or study["image"]["labels_per_class"]}
    forgetting = {"text": ("mlm_loss_increase", 1.0, 3, "MLM loss increase"), "image": ("knn_drop", 100, 1, "kNN drop (points)")}
    lines = ["# Transfer strategies: accuracy, forgetting, drift", "",
             f"`.venv/bin/python benchmarks/strategies.py --seeds {' '.join(map(str, seeds))} --domains {' '.join(args.domains)}` "
             f"(study: {args.study});",
             "text: Rotten Tomatoes from runs/tasks/pretrained (2-layer BERT, 10 CPU-minutes); images: Fashion-MNIST",
             "from the 15-minute autoencoder ResNet. Forgetting is measured against that checkpoint; CKA 1 = no drift.",
             f"Machine: {cpu_name()}, {torch.get_num_threads()} threads; {date.today()}.",
             "Protocol: the recipe's, with no labels beyond the N (text: each run holds 20% of its N out to choose when "
             "to stop and LP-FT's keep-or-replace, then trains again on all N).", ""]
    for domain in args.domains:
        key, scale, digits, name = forgetting[domain]
        for labels in counts[domain]:
            unit = "labels" if domain == "text" else "labels per class"
            lines += [f"## {domain}, {labels} {unit}", "",
                      f"| strategy | accuracy % | {name} | CKA | trainable parameters | seconds |", "|---|---|---|---|---|---|"]
            for strategy in study["strategies"]:
                runs = [cell(domain, study, labels, strategy, s) for s in seeds]
                lines.append(f"| {strategy} | {fmt([r['accuracy'] for r in runs], 100)} | "
                             f"{fmt([r.get(key) for r in runs], scale, digits)} | {fmt([r.get('cka') for r in runs], 1, 3)} | "
                             f"{fmt([r.get('trainable_parameters') for r in runs], 1, 0)} | {fmt([r['seconds'] for r in runs], 1, 0)} |")
                print(lines[-1], flush=True)
            # the honest rival on the same labels (the recipe's data, seeds and draw)
            lines += ["", f"{RIVALS[domain]} on the same labels: "
                          f"{fmt([rival(domain, study, labels, s) for s in seeds], 100)}"]
            lines.append("")
    out = ROOT / "benchmarks" / "results" / "strategies.md"
    kept = kept_sections(out, lambda heading: heading.split(',')[0] not in args.domains)
    out.write_text("\n".join(lines) + "\n" + kept, encoding="utf-8")
    print(out.read_text())


if __name__ == "__main__":
    main()
