"""`warmstart auto|pretrain|finetune|predict|rank|study|report|demo`: parse argv, call the Python API (api.py), print.

Every command takes its recipe (a YAML file, or the name of a bundled recipe) and `section.key=value`
overrides the same way; `--print-config` shows every key with its value, help and range instead of running.
Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from warmstart.errors import WarmstartError

RUN_COMMANDS = ("pretrain", "finetune", "rank", "study")  # the commands that take a recipe and overrides


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _recipe_args(s: argparse.ArgumentParser, what: str, required: bool = False) -> None:
    s.add_argument("config", nargs=None if required else "?", metavar="RECIPE",
                   help=f"{what} recipe: a YAML file or a bundled recipe's name (see configs/)")
    s.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. train.max_minutes=5")
    s.add_argument("--print-config", action="store_true",
                   help="print every key with its value, help and accepted range, and exit")
    s.add_argument("--allow-download", action="store_true",
                   help="a checkpoint given as a hub id (org/name) may be downloaded into the Hugging Face cache "
                        "(otherwise only a cached copy is used); also WARMSTART_ALLOW_DOWNLOAD=1")


def _parser(argv: list[str] = ()) -> argparse.ArgumentParser:
    """The command line. `argv`: only `finetune`'s own help lists the tasks, whose registry imports torch (1.4 s of
    the 2 s that `warmstart --help` took)."""
    from warmstart import __version__

    p = argparse.ArgumentParser(prog="warmstart", description="Pretrain without labels, warm-start every "
                                "downstream task, and know whether it helped.")
    p.add_argument("--version", action="version", version=f"warmstart {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("pretrain", help="pretrain an encoder: text (MLM/NSP, ELECTRA) or images (SimCLR, autoencoder)")
    _recipe_args(s, "pretraining")
    s.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoint-last")
    s = sub.add_parser("finetune", help="fine-tune a checkpoint (or scratch) on a task",
                       description="Fine-tune a checkpoint (or scratch) on a task. Tasks (the recipe's `task:`): "
                                   f"{_task_list() if argv[:1] == ['finetune'] else 'see warmstart finetune --help'}.")
    _recipe_args(s, "fine-tuning")
    s.add_argument("--resume", action="store_true", help="continue a stopped run from the state it saved beside "
                                                          "OUTPUT_DIR (every train.save_every_minutes)")
    for s in (sub.choices["pretrain"], sub.choices["finetune"]):
        s.add_argument("--overwrite", action="store_true", help="replace an output folder warmstart did not write")
        s.add_argument("--report-to", choices=["none", "tensorboard", "wandb", "mlflow"], default=None,
                       help="also send the run's curves to this tracker, as train.report_to")
    pr = sub.add_parser("predict", help="predict a file with a fine-tuned checkpoint (CSV or JSONL out)")
    pr.add_argument("checkpoint", help="a fine-tuned checkpoint folder")
    pr.add_argument("input_file", nargs="?", metavar="INPUT", help="the file to predict: CSV/TSV/JSONL with a text "
                                                                  "column, a text file (one per line), or images")
    pr.add_argument("--input", default=None, help="the same, named (warmstart predict CHECKPOINT --input FILE)")
    pr.add_argument("--output", default=None,
                    help="where to write (.csv or .jsonl; .conll for a token classifier); default INPUT.predictions.csv")
    pr.add_argument("--overwrite", action="store_true", help="replace an --output file that is not predictions "
                                                             "warmstart wrote")
    pr.add_argument("--text-column", default=None, help="default: the column the checkpoint was trained on")
    pr.add_argument("--text-pair-column", default=None)
    pr.add_argument("--batch-size", type=_positive, default=64)
    rk = sub.add_parser("rank", help="rank candidate checkpoints for a task from frozen features (LogME, H-score, "
                                     "kNN, linear probe) before fine-tuning any")
    _recipe_args(rk, "the task's fine-tuning")
    rk.add_argument("--candidates", nargs="+", default=None, help="checkpoint folders to score")
    rk.add_argument("--output", default=None, help="the ranking table (CSV); default rank.csv")
    rk.add_argument("--scores", nargs="+", default=None, help="compute only these (logme hscore knn probe; default "
                                                              "all); knn, the default order, is the cheapest")
    rk.add_argument("--task", default=None, help=argparse.SUPPRESS)  # the earlier spelling of RECIPE
    rk.add_argument("--set", nargs="*", default=[], dest="set_overrides", help=argparse.SUPPRESS)  # of KEY=VALUE
    st = sub.add_parser("study", help="run a resumable grid (tasks x labels x seeds x inits x strategies) with "
                                      "baselines; write results.csv and report.html")
    _recipe_args(st, "study", required=False)
    st.add_argument("--overwrite", action="store_true", help="replace an output folder warmstart did not write")
    st.add_argument("--report-to", choices=["none", "tensorboard", "wandb", "mlflow"], default=None)
    rp = sub.add_parser("report", help="write RUN_DIR/report.html (self-contained) from a study's results.csv")
    rp.add_argument("run_dir")
    rp.add_argument("--labels-saved-at", type=_positive, default=None,
                    help="the pretrained label count that 'labels saved' is measured at (default the smallest)")
    a = sub.add_parser("auto", help="from a labelled table (and unlabelled text) to the best model in a time "
                                    "budget, a verdict and a model folder, in one command",
                       description="Rank the candidate encoders on your labels, adapt the best to your unlabelled "
                                   "text if that raises its score, choose the strategy by cross-validation inside "
                                   "the labels, refit the winner on all of them and report against the rivals. "
                                   "Running it again on the same folder resumes it.")
    a.add_argument("--labelled", required=True, help="the labelled table (CSV/TSV/JSONL) with text and label "
                                                      "columns (one label a text, or a list: multi-label); a "
                                                      "`split` column's test rows only score the result")
    a.add_argument("--unlabelled", nargs="+", default=[], help="unlabelled text files from your domain")
    a.add_argument("--candidates", nargs="+", default=[], help="encoder folders (or hub ids, with --allow-download) "
                                                               "to consider beside the installed MiniLM")
    a.add_argument("--budget", default="30m", help="the time the whole run may take: 15m, 1h, 90s (default 30m)")
    a.add_argument("--output-dir", default="runs/auto")
    n = a.add_mutually_exclusive_group()
    n.add_argument("--labels", type=_positive, default=None, help="use a seeded, stratified sample of this many "
                                                                  "labelled rows (default: all of them)")
    n.add_argument("--per-class", type=_positive, default=None, help="use this many labelled rows of each class")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--text-column", default="text")
    a.add_argument("--label-column", default="label")
    sets = a.add_mutually_exclusive_group()
    sets.add_argument("--label-separator", default=None, help="multi-label: the separator between one cell's "
                                                              "labels (e.g. '|'); lists need none")
    sets.add_argument("--label-columns", nargs="+", default=None, help="multi-label: one 0/1 column per label")
    a.add_argument("--metric", default="accuracy", choices=("accuracy", "balanced_accuracy"),
                   help="what decides and is reported (one label a text): accuracy, or balanced_accuracy, the mean "
                        "of the classes' recalls, every class weighed alike in each fit: for a skewed table whose "
                        "rare classes matter (default accuracy; sets of labels: micro-F1)")
    a.add_argument("--allow-download", action="store_true", help="a candidate given as a hub id may be downloaded")
    a.add_argument("--overwrite", action="store_true", help="make every decision again (or replace a folder "
                                                            "warmstart did not write)")
    d = sub.add_parser("demo", help="pretrain on the bundled corpus and adapt MiniLM to it, fine-tune on sentiment "
                                    "against the rivals, report")
    d.add_argument("--output-dir", default="runs/demo")
    d.add_argument("--pretrain-minutes", type=_positive_float, default=None)
    d.add_argument("--adapt-minutes", type=_positive_float, default=None,
                   help="MiniLM's adaptation budget (default: demo.yaml's 2; it also stops after one pass over the text)")
    d.add_argument("--labels", type=_positive, nargs="+", default=None)
    d.add_argument("--seeds", type=_positive, default=None)
    d.add_argument("--overwrite", action="store_true", help="replace an output folder warmstart did not write")
    return p


def _task_list() -> str:
    from warmstart.tasks.registry import TASKS

    return "; ".join(f"{name}: {t.description}" for name, t in TASKS.items())


def _quiet_library_progress() -> None:
    """warmstart shows its own progress; transformers' per-file save/load bars are noise around it."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def _print_config(args) -> None:
    from warmstart.config import StudyConfig, load_config, recipe_path
    from warmstart.config.describe import print_config

    if args.command == "pretrain":
        from warmstart.pretraining.recipes import load_pretrain_config

        cfg = load_pretrain_config(recipe_path(args.config, "pretrain"), args.overrides)
    elif args.command == "study":
        cfg = load_config(StudyConfig, recipe_path(args.config, "study"), args.overrides, check=False)
    else:
        from warmstart.api import load_finetune_config

        cfg = load_finetune_config(args.config, args.overrides)[1]
    print(print_config(cfg))


def _run(args) -> None:
    import warmstart

    if getattr(args, "print_config", False):
        return _print_config(args)
    if args.command == "pretrain":
        warmstart.pretrain(args.config, resume=args.resume, overwrite=args.overwrite, overrides=args.overrides)
    elif args.command == "finetune":
        print(json.dumps(warmstart.finetune(args.config, resume=args.resume, overwrite=args.overwrite,
                                            overrides=args.overrides).metrics))
    elif args.command == "predict":
        if args.input and args.input_file and args.input != args.input_file:
            raise WarmstartError(f"predict: two inputs ({args.input_file} and --input {args.input}); give one")
        if not (args.input or args.input_file):
            raise WarmstartError("predict: give the file to predict: warmstart predict CHECKPOINT FILE")
        warmstart.predict(args.checkpoint, args.input or args.input_file, args.output, text_column=args.text_column,
                          text_pair_column=args.text_pair_column, batch_size=args.batch_size,
                          overwrite=args.overwrite)
    elif args.command == "rank":
        if not args.candidates:
            raise WarmstartError("rank: give the checkpoints to score with --candidates DIR [DIR ...]")
        warmstart.rank(args.config, args.candidates, output=args.output, scores=args.scores,
                       overrides=args.overrides)
    elif args.command == "study":
        if not args.config:
            raise WarmstartError("study: give the study's recipe (see configs/study/)")
        warmstart.study(args.config, overwrite=args.overwrite, overrides=args.overrides)
    elif args.command == "report":
        from warmstart.studies.report import write_report

        print(f"report: {write_report(args.run_dir, args.labels_saved_at)}")
    elif args.command == "auto":
        warmstart.auto(args.labelled, unlabelled=args.unlabelled, candidates=args.candidates, budget=args.budget,
                       output_dir=args.output_dir, labels=args.labels, per_class=args.per_class, seed=args.seed,
                       text_column=args.text_column, label_column=args.label_column,
                       label_separator=args.label_separator, label_columns=args.label_columns,
                       allow_download=args.allow_download, overwrite=args.overwrite, metric=args.metric)
    elif args.command == "demo":
        warmstart.demo(args.output_dir, args.pretrain_minutes, args.labels, args.seeds, overwrite=args.overwrite,
                       adapt_minutes=args.adapt_minutes)


def _joined_values(argv: list[str]) -> list[str]:
    """`--budget -5m` as `--budget=-5m`: argparse reads a value starting with '-' as an option and says only
    "expected one argument"; joined, the value reaches its own check and gets its own message."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--budget" and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1][1:2].isdigit():
            out.append(f"--budget={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.stdout.reconfigure(line_buffering=True)  # progress lines reach logs (CI, nohup) as they happen
    argv = _joined_values(sys.argv[1:] if argv is None else list(argv))
    args = _parser(argv).parse_args(argv)  # --help and a usage error exit here, before transformers is imported
    _quiet_library_progress()
    if args.command in RUN_COMMANDS:
        if args.command == "rank" and (args.task or args.set_overrides):  # the earlier spelling
            args.overrides = [*([args.config] if args.config else []), *args.overrides, *args.set_overrides]
            args.config = args.task
        config = args.config
        if config and "=" in config and not os.path.exists(config):  # no recipe, only overrides
            args.overrides, args.config = [config, *args.overrides], None
        if args.allow_download:  # one switch for everything this command runs (models/hub.py reads it)
            os.environ["WARMSTART_ALLOW_DOWNLOAD"] = "1"
        if getattr(args, "report_to", None):
            args.overrides = [*args.overrides, f"{'' if args.command == 'study' else 'train.'}report_to={args.report_to}"]
    try:
        _run(args)
    except WarmstartError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only folder: one line; the writes are atomic, nothing is lost
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}; free space or fix permissions, then run again", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; a pretraining run continues with --resume, a study or auto by running it again",
              file=sys.stderr)
        return 130
    from warmstart.engine.distributed import shutdown

    shutdown()  # only after success: a barrier after one process's error would wait for ever
    return 0


if __name__ == "__main__":
    sys.exit(main())
