"""The Python API is the front door (issue 19.5): `import warmstart` in a fresh interpreter, pretrain -> finetune
-> predict on the tiny fixtures, and the same runs through the CLI give the same weights, metrics and rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from safetensors.torch import load_file

import warmstart
from warmstart.errors import WarmstartError

pytestmark = pytest.mark.slow


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_api_and_cli_give_the_same_runs(pretrained, corpus_file, sentiment_csv, tmp_path):
    common = {"corpus.sources": f"[{corpus_file}]", "corpus.cache_dir": str(tmp_path / "cache"),
              "tokenizer.from_checkpoint": str(pretrained), "objective.nsp": "false", "model.num_layers": "2",
              "model.hidden_size": "32", "model.num_heads": "2", "model.intermediate_size": "64",
              "model.max_seq_len": "32", "train.batch_size": "8", "train.max_steps": "4", "train.precision": "fp32",
              "train.num_threads": "1"}
    ft = {"data.path": str(sentiment_csv), "data.labels": "40", "train.max_steps": "6", "train.precision": "fp32",
          "train.pooling": "mean"}
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"id": [3, 1], "text": ["great lovely film", "awful dull plot"]}).to_csv(rows, index=False)
    api = tmp_path / "api"
    out = _python(f"""
        import json, sys
        import warmstart
        assert not any(m.startswith("warmstart.pretraining") for m in sys.modules), "import warmstart stays light"
        pre = warmstart.pretrain(overrides={[f"{k}={v}" for k, v in common.items()]!r}, output_dir={str(api / 'pre')!r})
        run = warmstart.finetune(init=str(pre.output_dir), output_dir={str(api / 'ft')!r},
                                 data={{"path": {str(sentiment_csv)!r}, "labels": 40}},
                                 train={{"max_steps": 6, "precision": "fp32", "pooling": "mean"}})
        model = run.load_model()
        preds = warmstart.predict(run.output_dir, {str(rows)!r}, {str(api / 'p.csv')!r})
        again = run.predictor().predict(["great lovely film", "awful dull plot"])  # rows in memory
        print(json.dumps({{"pre": pre.metrics["steps"], "acc": run.metrics["accuracy"], "ids": list(preds.rows["id"]),
                          "model": type(model).__name__, "version": warmstart.__version__,
                          "same": again["prob_1"].tolist() == preds.rows["prob_1"].tolist()}}))
    """)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["pre"] == 4 and result["ids"] == [3, 1] and result["version"] == warmstart.__version__
    assert result["same"]
    cli = tmp_path / "cli"
    _python(f"""
        import sys
        from warmstart.cli import main
        assert main(["pretrain", *{[f"{k}={v}" for k, v in common.items()]!r}, "output_dir={cli / 'pre'}"]) == 0
        assert main(["finetune", "init={cli / 'pre'}", "output_dir={cli / 'ft'}",
                     *{[f"{k}={v}" for k, v in ft.items()]!r}]) == 0
        assert main(["predict", "{cli / 'ft'}", "--input", "{rows}", "--output", "{cli / 'p.csv'}"]) == 0
    """)
    a, b = load_file(api / "pre" / "model.safetensors"), load_file(cli / "pre" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert json.loads((cli / "ft" / "metrics.json").read_text())["accuracy"] == result["acc"]
    assert pd.read_csv(api / "p.csv").equals(pd.read_csv(cli / "p.csv"))


def test_api_errors_are_exceptions_not_exits(tmp_path):
    with pytest.raises(WarmstartError, match="train.max_steps=-1: must be >= 1"):
        warmstart.pretrain(train={"max_steps": -1})
    with pytest.raises(WarmstartError, match="no bundled finetune recipe of that name"):
        warmstart.finetune("no_such_recipe")
    with pytest.raises(WarmstartError, match="did you mean 'lr'"):
        warmstart.finetune(train__lrr=1.0)


def test_keyword_overrides_and_config_objects(tmp_path):
    from warmstart.api import values_of
    from warmstart.config import FinetuneConfig
    from warmstart.tasks.registry import load_task_config

    assert values_of({"train": {"lr": 1e-3, "lora": {"r": 4}}, "data__labels": 10, "output_dir": "x"}) == \
        {"train.lr": 1e-3, "train.lora.r": 4, "data.labels": 10, "output_dir": "x"}
    from warmstart.api import load_finetune_config

    base = FinetuneConfig(init="ckpt")
    task, cfg = load_finetune_config(base, train={"lr": 1e-3})
    assert task.name == "classification" and cfg.init == "ckpt" and cfg.train.lr == 1e-3 and base.train.lr == 5e-5
    _, named = load_task_config(None, ["task=summarization"])
    assert named.task == "summarization"
