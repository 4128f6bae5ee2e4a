"""`warmstart pretrain|finetune|predict|rank|study|report|demo`: parse, build the config, call. Errors are one line, exit 2."""

from __future__ import annotations

import argparse
import json
import os
import sys

from warmstart.errors import WarmstartError
from warmstart.tasks.registry import run_task


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="warmstart", description="Pretrain without labels, warm-start every "
                                "downstream task, and know whether it helped.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, helptext in (("pretrain", "pretrain an encoder: text (MLM/NSP, ELECTRA) or images (SimCLR, autoencoder)"),
                           ("finetune", "fine-tune a checkpoint (or scratch): text or image classification")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("config", nargs="?", help="YAML recipe (see configs/)")
        s.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. train.max_minutes=5")
        if name == "pretrain":
            s.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoint-last")
        s.add_argument("--report-to", choices=["none", "tensorboard"], default=None,
                       help="also log to TensorBoard (OUTPUT_DIR/../tensorboard/NAME), as train.report_to")
    pr = sub.add_parser("predict", help="predict a file with a fine-tuned checkpoint (CSV or JSONL out)")
    pr.add_argument("checkpoint", help="a fine-tuned checkpoint folder")
    pr.add_argument("--input", required=True, help="CSV/TSV/JSONL with a text column, or a text file (one per line)")
    pr.add_argument("--output", default=None, help="where to write (.csv or .jsonl); default INPUT.predictions.csv")
    pr.add_argument("--text-column", default=None, help="default: the column the checkpoint was trained on")
    pr.add_argument("--text-pair-column", default=None)
    pr.add_argument("--batch-size", type=int, default=64)
    rk = sub.add_parser("rank", help="rank candidate checkpoints for a task from frozen features (LogME, H-score, "
                                     "kNN, linear probe) before fine-tuning any")
    rk.add_argument("--task", required=True, help="the task's fine-tuning recipe (its data and labelled sample)")
    rk.add_argument("--candidates", nargs="+", required=True, help="checkpoint folders to score")
    rk.add_argument("--output", default=None, help="the ranking table (CSV); default rank.csv")
    rk.add_argument("--set", nargs="*", default=[], dest="overrides", help="recipe overrides, section.key=value")
    rk.add_argument("--scores", nargs="+", default=None, help="compute only these (logme hscore knn probe; default "
                                                                    "all); knn, the default order, is the cheapest")
    st = sub.add_parser("study", help="run a resumable grid (tasks x labels x seeds x inits x strategies) with "
                                      "baselines; write results.csv and report.html")
    st.add_argument("config", help="YAML study (see configs/study/)")
    st.add_argument("overrides", nargs="*", help="key=value overrides, e.g. seeds=1")
    st.add_argument("--report-to", choices=["none", "tensorboard"], default=None)
    rp = sub.add_parser("report", help="write RUN_DIR/report.html (self-contained) from a study's results.csv")
    rp.add_argument("run_dir")
    rp.add_argument("--labels-saved-at", type=int, default=None,
                    help="the pretrained label count that 'labels saved' is measured at (default the smallest)")
    d = sub.add_parser("demo", help="pretrain on the bundled corpus, fine-tune on sentiment vs scratch, report")
    d.add_argument("--output-dir", default="runs/demo")
    d.add_argument("--pretrain-minutes", type=float, default=None)
    d.add_argument("--labels", type=int, nargs="+", default=None)
    d.add_argument("--seeds", type=int, default=None)
    return p


def _quiet_library_progress() -> None:
    """warmstart shows its own progress; transformers' per-file save/load bars are noise around it."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.stdout.reconfigure(line_buffering=True)  # progress lines reach logs (CI, nohup) as they happen
    _quiet_library_progress()
    args = _parser().parse_args(argv)
    config = getattr(args, "config", None)
    if config and "=" in config and not os.path.exists(config):  # no recipe, only overrides
        args.overrides, args.config = [config, *args.overrides], None
    if getattr(args, "report_to", None):
        args.overrides = [*args.overrides, f"{'' if args.command == 'study' else 'train.'}report_to={args.report_to}"]
    try:
        if args.command == "pretrain":
            from warmstart.config import ImagePretrainConfig, PretrainConfig, is_image_recipe, load_config

            if is_image_recipe(args.config, args.overrides):
                from warmstart.pretrain.images import run_image_pretrain

                run_image_pretrain(load_config(ImagePretrainConfig, args.config, args.overrides), resume=args.resume)
            else:
                from warmstart.pretrain.text import run_pretrain

                run_pretrain(load_config(PretrainConfig, args.config, args.overrides), resume=args.resume)
        elif args.command == "finetune":
            from warmstart.config import FinetuneConfig, ImageFinetuneConfig, is_image_recipe, load_config

            if is_image_recipe(args.config, args.overrides):
                from warmstart.tasks.image_classification import run_image_finetune

                print(json.dumps(run_image_finetune(load_config(ImageFinetuneConfig, args.config, args.overrides))))
            else:
                cfg = load_config(FinetuneConfig, args.config, args.overrides)
                print(json.dumps(run_task(cfg)))
        elif args.command == "predict":
            from warmstart.predict import run_predict

            run_predict(args.checkpoint, args.input, args.output, args.text_column, args.text_pair_column,
                        args.batch_size)
        elif args.command == "rank":
            from warmstart.select.rank import run_rank

            run_rank(args.task, args.candidates, args.output, args.overrides, args.scores)
        elif args.command == "study":
            from warmstart.config import StudyConfig, load_config
            from warmstart.study.grid import run_study

            run_study(load_config(StudyConfig, args.config, args.overrides))
        elif args.command == "report":
            from warmstart.study.report import write_report

            print(f"report: {write_report(args.run_dir, args.labels_saved_at)}")
        elif args.command == "demo":
            from warmstart.study.demo import run_demo

            run_demo(args.output_dir, args.pretrain_minutes, args.labels, args.seeds)
    except WarmstartError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from warmstart.engine.distributed import shutdown

    shutdown()  # only after success: a barrier after one process's error would wait for ever
    return 0


if __name__ == "__main__":
    sys.exit(main())
