"""End to end on tiny fixtures: pretrain -> standard HF folder -> fine-tune -> predictions, and the CLI."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_pretrain_config
from safetensors.torch import load_file

from warmstart.cli import main
from warmstart.config import FinetuneConfig, load_config
from warmstart.errors import WarmstartError
from warmstart.pretraining.text import run_pretrain
from warmstart.tasks.classification import run_finetune

pytestmark = pytest.mark.slow


def _run_without_warmstart(code: str) -> str:
    """Run code in a fresh interpreter and check it never imported warmstart."""
    code = textwrap.dedent(code) + "\nimport sys\nassert not any(m.startswith('warmstart') for m in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_pretrained_folder_loads_with_plain_transformers(pretrained):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "warmstart_config.yaml", "metrics.json",
                 "training_log.jsonl"):
        assert (pretrained / name).is_file(), name
    metrics = json.loads((pretrained / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["tokens"] > 0 and "val_mlm_loss" in metrics
    out = _run_without_warmstart(f"""
        import torch
        from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, BertForPreTraining
        path = {str(pretrained)!r}
        tok = AutoTokenizer.from_pretrained(path)
        batch = tok(["the film was great"], return_tensors="pt")
        mlm, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
        assert not info["missing_keys"], info
        pre, info = BertForPreTraining.from_pretrained(path, output_loading_info=True)
        assert not info["missing_keys"], info
        AutoModel.from_pretrained(path)
        with torch.no_grad():
            a = mlm(**batch).logits
            b = pre(**batch).prediction_logits
        assert torch.allclose(a, b, atol=1e-5)
        print("ok", a.shape[-1])
    """)
    assert out.split()[0] == "ok" and int(out.split()[1]) == len(__import__("transformers").AutoTokenizer
                                                                  .from_pretrained(str(pretrained)))


def _finetune(sentiment_csv, out, init, *overrides):
    cfg = load_config(FinetuneConfig, None, [f"output_dir={out}", f"init={init}", f"data.path={sentiment_csv}",
                                             "train.max_epochs=3", "train.batch_size=16", "train.precision=fp32",
                                             *overrides])
    return run_finetune(cfg)


def test_finetune_full_round_trips_through_transformers(pretrained, sentiment_csv, tmp_path):
    out = tmp_path / "ft"
    metrics = _finetune(sentiment_csv, out, pretrained, "data.labels=40", "train.lr=1e-3", "train.patience=3")
    assert metrics["train_labels"] == 40 and metrics["test_size"] == 40 and metrics["validation_labels"] == 0
    assert metrics["held_out_labels"] == 8  # chosen inside the 40: 32 to train, 8 to choose when to stop
    assert metrics["selection_steps"] == 6  # 3 epochs of 32 at batch 16
    assert metrics["refit_steps"] == round(metrics["best_step"] * 40 / 32) == metrics["steps"]  # then all 40
    assert 0 <= metrics["accuracy"] <= 1
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == 40 and set(preds["prediction"]) <= {0, 1}
    # Plain transformers reproduces warmstart's test-split probabilities.
    texts = json.dumps(preds["text"].tolist())
    got = _run_without_warmstart(f"""
        import json, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        tok = AutoTokenizer.from_pretrained({str(out)!r})
        model = AutoModelForSequenceClassification.from_pretrained({str(out)!r}).eval()
        with torch.no_grad():
            p = model(**tok(json.loads({texts!r}), padding=True, return_tensors="pt")).logits.softmax(-1)
        print(json.dumps(p[:, 1].tolist()))
    """)
    assert np.allclose(json.loads(got), preds["prob_1"], atol=1e-4)


def test_linear_probe_changes_only_the_head(pretrained, sentiment_csv, tmp_path):
    out = tmp_path / "lp"
    metrics = _finetune(sentiment_csv, out, pretrained, "train.strategy=linear_probe", "train.pooling=mean")
    assert "probe_C" in metrics
    before, after = load_file(pretrained / "model.safetensors"), load_file(out / "model.safetensors")
    shared = [k for k in after if k.startswith("bert.encoder") or k.startswith("bert.embeddings")]
    assert shared and all(torch.equal(after[k], before[k]) for k in shared)
    assert metrics["accuracy"] > 0.7  # the fixture's sentiment words are easy to separate


def test_lp_ft_starts_from_the_probe_and_never_ends_below_it_on_validation(pretrained, sentiment_csv, tmp_path):
    probe = _finetune(sentiment_csv, tmp_path / "lp", pretrained, "train.strategy=linear_probe", "train.pooling=mean")
    lpft = _finetune(sentiment_csv, tmp_path / "lpft", pretrained, "train.strategy=lp_ft", "train.pooling=mean",
                     "train.max_steps=20", "train.eval_every=5", "train.patience=3")
    assert lpft["val_accuracy"] >= lpft["probe_val_accuracy"]  # on the held-out share of the labels
    if lpft["best_step"] == 0:  # fine-tuning never beat the probe: the refit is the probe on all N, as probe's run
        assert lpft["accuracy"] == probe["accuracy"] and lpft["refit_steps"] == 0


def test_scratch_uses_the_same_architecture_and_tokenizer(pretrained, sentiment_csv, tmp_path):
    with pytest.raises(WarmstartError, match="scratch needs `tokenizer: PATH`"):
        _finetune(sentiment_csv, tmp_path / "s", "scratch")
    metrics = _finetune(sentiment_csv, tmp_path / "s", "scratch", f"tokenizer={pretrained}")
    a, b = load_file(tmp_path / "s" / "model.safetensors"), load_file(pretrained / "model.safetensors")
    assert a["bert.embeddings.word_embeddings.weight"].shape == b["bert.embeddings.word_embeddings.weight"].shape
    assert not torch.equal(a["bert.encoder.layer.0.attention.self.query.weight"],
                           b["bert.encoder.layer.0.attention.self.query.weight"])
    assert metrics["init"] == "scratch"


def test_interrupted_pretraining_resumes_to_identical_weights(pretrained, corpus_file, tmp_path, monkeypatch):
    # A fixed tokenizer: WordPiece training breaks ties in hash-map order, so two trainings can differ.
    common = ("train.save_every_minutes=1e-9", "objective.nsp=false", f"tokenizer.from_checkpoint={pretrained}")
    full = run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "full", tmp_path / "cache", *common))
    import warmstart.pretraining.text as pretrain

    calls = {"n": 0}
    real = pretrain.mlm_nsp_loss

    def dies_on_the_fourth_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    cfg = tiny_pretrain_config(corpus_file, tmp_path / "cut", tmp_path / "cache", *common)
    monkeypatch.setattr(pretrain, "mlm_nsp_loss", dies_on_the_fourth_step)
    with pytest.raises(KeyboardInterrupt):
        run_pretrain(cfg)
    monkeypatch.setattr(pretrain, "mlm_nsp_loss", real)
    resumed = run_pretrain(cfg, resume=True)
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [r["step"] for r in map(json.loads, (resumed / "training_log.jsonl").read_text().splitlines())
             if "loss" in r]
    assert steps == sorted(set(steps)) and steps == [r["step"] for r in map(
        json.loads, (full / "training_log.jsonl").read_text().splitlines()) if "loss" in r]  # each step once


def test_cli_errors_are_one_line_with_exit_2(pretrained, tmp_path, capsys):
    # the checkpoint is checked first (cheap), then the data
    assert main(["finetune", f"init={tmp_path}/none", f"data.path={tmp_path}/missing.csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "none: checkpoint folder not found" in err and "\n" not in err
    assert main(["finetune", f"init={pretrained}", f"data.path={tmp_path}/missing.csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing.csv: file not found" in err and "\n" not in err
    recipe = tmp_path / "r.yaml"
    recipe.write_text("corpus:\n  sources: [nowhere.txt]\ntrain:\n  max_steps: 1\n")
    assert main(["pretrain", str(recipe)]) == 2
    assert "nowhere.txt: file not found" in capsys.readouterr().err
    assert main(["pretrain", str(recipe), "train.max_stpes=3"]) == 2
    assert "did you mean 'max_steps'" in capsys.readouterr().err
    assert main(["pretrain", str(recipe), f"output_dir={tmp_path}/o", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_continued_pretraining_from_a_folder_without_heads(pretrained, corpus_file, tmp_path):
    """Like MiniLM: a plain BertModel folder; the MLM/NSP heads are created, its tokenizer is reused."""
    from transformers import AutoTokenizer, BertModel

    base = tmp_path / "encoder_only"
    BertModel.from_pretrained(str(pretrained)).save_pretrained(base)
    AutoTokenizer.from_pretrained(str(pretrained)).save_pretrained(base)
    out = run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "tapt", tmp_path / "cache", f"model.init={base}",
                                            "train.max_steps=2"))
    a, b = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    assert "cls.predictions.transform.dense.weight" in b
    assert b["bert.embeddings.word_embeddings.weight"].shape == a["embeddings.word_embeddings.weight"].shape
    assert (out / "tokenizer.json").read_text() == (base / "tokenizer.json").read_text()


@pytest.mark.parametrize("warmup", [0.0, 0.5])
def test_head_warmup_keeps_the_encoder_frozen_for_its_share_of_the_budget(pretrained, corpus_file, tmp_path, warmup):
    """Continued pretraining of a folder without heads: with `model.head_warmup`, the fresh MLM head trains alone
    for that fraction of the steps (the encoder bit-identical meanwhile), then everything trains."""
    from transformers import AutoTokenizer, BertForPreTraining, BertModel

    base = tmp_path / "encoder_only"
    BertModel.from_pretrained(str(pretrained)).save_pretrained(base)
    AutoTokenizer.from_pretrained(str(pretrained)).save_pretrained(base)
    common = (f"model.init={base}", f"model.head_warmup={warmup}", "train.save_every_minutes=1e-9",
              "train.log_every=1", "objective.nsp=false")
    a = load_file(base / "model.safetensors")

    def encoder_moved(out) -> bool:
        b = load_file(out / "model.safetensors")
        return any(not torch.equal(a[k], b[f"bert.{k}"]) for k in a if f"bert.{k}" in b and "pooler" not in k)

    head_only = run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "w3", tmp_path / "cache", *common,
                                                  "train.max_steps=8", "train.warmup_fraction=0"))
    head = load_file(head_only / "model.safetensors")["cls.predictions.transform.dense.weight"]
    torch.manual_seed(0)  # the fresh head exactly as warmstart initialises it (train.seed=0)
    fresh = BertForPreTraining.from_pretrained(str(base)).cls.predictions.transform.dense.weight
    assert not torch.equal(head, fresh)  # the head trained
    # 8 steps: with warm-up 0.5, steps 1-4 train the head alone, steps 5-8 everything
    assert encoder_moved(head_only)
    stopped = run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "w4", tmp_path / "cache", *common,
                                                "train.max_steps=8", "train.warmup_fraction=0",
                                                "train.max_tokens=1"))  # the budget ends after one step
    assert encoder_moved(stopped) == (warmup == 0.0)


def test_sentence_pair_classification(pretrained, tmp_path):
    rows = [{"premise": f"the film was {w}", "hypothesis": f"it was {v}", "label": int(w == v),
             "split": ["train", "validation", "test"][i % 3]}
            for i, (w, v) in enumerate([(w, v) for w in ("good", "bad", "dull") for v in ("good", "bad", "dull")] * 6)]
    path = tmp_path / "pairs.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    metrics = _finetune(path, tmp_path / "pairs", pretrained, "data.text_column=premise",
                        "data.text_pair_column=hypothesis")
    assert metrics["test_size"] == 18
    saved = pd.read_csv(tmp_path / "pairs" / "predictions.csv")
    test = tmp_path / "test_pairs.jsonl"
    pd.DataFrame([r for r in rows if r["split"] == "test"]).to_json(test, orient="records", lines=True)
    from warmstart.prediction import run_predict

    again = pd.read_csv(run_predict(str(tmp_path / "pairs"), str(test), str(tmp_path / "p.csv")))
    assert list(again["hypothesis"]) == [r["hypothesis"] for r in rows if r["split"] == "test"]  # the input's columns
    assert list(again["prediction"]) == list(saved["prediction"])
    from warmstart.prediction import Predictor  # (text, pair) tuples in memory: the same predictions

    pairs = [(r["premise"], r["hypothesis"]) for r in rows if r["split"] == "test"]
    in_memory = Predictor(tmp_path / "pairs").predict(pairs)
    assert list(in_memory["prediction"].astype(int)) == list(saved["prediction"])
    assert list(in_memory.columns[:2]) == ["premise", "hypothesis"]


def test_electra_pretraining_saves_a_discriminator_that_plain_transformers_loads(pretrained, corpus_file,
                                                                                sentiment_csv, tmp_path):
    out = run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "electra", tmp_path / "cache",
                                            "objective.name=electra", "objective.nsp=false",
                                            f"tokenizer.from_checkpoint={pretrained}"))
    assert (out / "generator" / "model.safetensors").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"val_mlm_loss", "val_rtd_acc"} <= set(metrics)
    got = _run_without_warmstart(f"""
        import torch
        from transformers import AutoModel, AutoTokenizer, ElectraForPreTraining
        path = {str(out)!r}
        model, info = ElectraForPreTraining.from_pretrained(path, output_loading_info=True)
        assert not info["missing_keys"], info
        encoder = AutoModel.from_pretrained(path)
        batch = AutoTokenizer.from_pretrained(path)(["the film was great"], return_tensors="pt")
        print(type(encoder).__name__, tuple(model(**batch).logits.shape))
    """)
    assert got.split()[0] == "ElectraModel"
    ft = _finetune(sentiment_csv, tmp_path / "ft", out, "train.pooling=mean", "data.labels=40")
    assert 0 <= ft["accuracy"] <= 1
    with pytest.raises(WarmstartError, match="needs a linear head"):
        _finetune(sentiment_csv, tmp_path / "lp", out, "train.strategy=linear_probe")
    with pytest.raises(WarmstartError, match="objective.nsp works with objective.name=mlm only"):
        run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "e2", tmp_path / "cache", "objective.name=electra"))


def test_missing_budget_fails_before_reading_data(tmp_path, capsys):
    assert main(["pretrain", f"corpus.sources=[{tmp_path}/not_read_yet.txt]", "train.max_minutes=null"]) == 2
    assert "no training budget" in capsys.readouterr().err


def test_ppmi_svd_embedding_init_is_used_and_stays_tied_to_the_decoder(corpus_file, tmp_path):
    from transformers import BertForPreTraining

    common = ("train.max_steps=1", "train.lr=1e-9", "train.warmup_fraction=0")
    plain = run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "plain", tmp_path / "cache", *common))
    spectral = run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "ppmi", tmp_path / "cache", *common,
                                                 "model.embedding_init=ppmi_svd"))
    a, b = (BertForPreTraining.from_pretrained(p) for p in (plain, spectral))
    emb_a, emb_b = a.get_input_embeddings().weight.detach(), b.get_input_embeddings().weight.detach()
    assert not torch.allclose(emb_a, emb_b, atol=1e-3)
    assert torch.equal(b.cls.predictions.decoder.weight, emb_b)
    assert abs(float(emb_b.std()) - float(emb_a.std())) < 0.01  # same scale as the random init
    with pytest.raises(WarmstartError, match="embedding_init"):
        run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "x", tmp_path / "cache", *common,
                                          "model.embedding_init=glove"))


def test_sigkill_at_a_random_step_then_resume_gives_identical_weights(pretrained, corpus_file, tmp_path):
    """A real `warmstart pretrain` process killed with SIGKILL mid-run, then `--resume`d, ends with exactly the
    weights of an uninterrupted run (CPU, one thread, fixed tokenizer)."""
    import os
    import random
    import signal
    import time

    common = ("train.save_every_minutes=1e-9", "objective.nsp=false", f"tokenizer.from_checkpoint={pretrained}",
              "train.max_steps=30", "train.log_every=1", "train.eval_every=1000")
    full = run_pretrain(tiny_pretrain_config(corpus_file, tmp_path / "full", tmp_path / "cache", *common))
    cfg = tiny_pretrain_config(corpus_file, tmp_path / "cut", tmp_path / "cache", *common)
    args = [f"{k}={v}" for k, v in _flat(cfg).items()]
    kill_at = random.Random().randint(3, 15)  # well before the last of 30 steps, so the kill lands mid-run
    proc = subprocess.Popen([sys.executable, "-m", "warmstart.cli", "pretrain", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "cut" / "training_log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= kill_at:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "cut" / "model.safetensors").exists(), "the run finished before it was killed"
    resumed = run_pretrain(cfg, resume=True)
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"differs after a kill at step {kill_at}"


def _flat(cfg, prefix: str = "") -> dict:
    """A config as `section.key=value` overrides (lists in YAML flow style)."""
    from dataclasses import asdict

    out = {}
    for k, v in (asdict(cfg) if not isinstance(cfg, dict) else cfg).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif v is not None:
            out[f"{prefix}{k}"] = f"[{', '.join(map(str, v))}]" if isinstance(v, list) else v
    return out
