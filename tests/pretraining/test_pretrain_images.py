"""Images end to end on a tiny IDX fixture: SimCLR / autoencoder pretraining -> HF folder -> probe and
fine-tuning; exact resume; plain-transformers loading; the CLI."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_e2e import _run_without_warmstart

from warmstart.cli import main
from warmstart.config import ImageFinetuneConfig, ImagePretrainConfig, load_config
from warmstart.pretraining.images import run_image_pretrain
from warmstart.tasks.image_classification import per_class_split, run_image_finetune

pytestmark = pytest.mark.slow


def pretrain_config(root, out, *overrides):
    return load_config(ImagePretrainConfig, None, [
        f"output_dir={out}", f"data.sources=[{root / 'train-images-idx3-ubyte.gz'}]", "model.image_size=16",
        "model.widths=[8,16]", "model.depths=[1,1]", "objective.projection_dim=8", "train.batch_size=16",
        "train.max_steps=6", "train.log_every=2", "train.eval_every=3", "train.precision=fp32",
        "train.num_threads=1", "train.lr=1e-3", *overrides])


def finetune_config(root, init, out, *overrides):
    return load_config(ImageFinetuneConfig, None, [
        f"output_dir={out}", f"init={init}", f"data.sources=[{root / 'train-images-idx3-ubyte.gz'}]",
        f"data.test_sources=[{root / 't10k-images-idx3-ubyte.gz'}]", "data.labels_per_class=10",
        "data.validation_per_class=5", "train.batch_size=10", "train.max_steps=6", "train.eval_every=3",
        "train.precision=fp32", *overrides])


@pytest.mark.parametrize("objective", ["simclr", "autoencoder"])
def test_pretrain_then_probe_and_finetune(shapes_idx, tmp_path, objective):
    out = run_image_pretrain(pretrain_config(shapes_idx, tmp_path / "pre", f"objective.name={objective}"))
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "metrics.json", "training_log.jsonl"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["images"] == 96 and 0 <= metrics["val_knn_acc"] <= 1
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in log if "loss" in r) and "images_per_s" in log[0]
    probe = run_image_finetune(finetune_config(shapes_idx, out, tmp_path / "probe", "train.strategy=linear_probe"))
    assert probe["test_size"] == 30 and probe["train_labels"] == 30 and 0 <= probe["knn_accuracy"] <= 1
    assert probe["accuracy"] > 0.5  # three easy classes: the probe must beat chance (0.33) clearly
    ft = run_image_finetune(finetune_config(shapes_idx, out, tmp_path / "ft", "train.strategy=lp_ft"))
    assert ft["steps"] == 6 and (tmp_path / "ft" / "predictions.csv").is_file()


def test_checkpoint_loads_with_plain_transformers_and_predicts_the_same(shapes_idx, tmp_path):
    out = run_image_pretrain(pretrain_config(shapes_idx, tmp_path / "pre"))
    run_image_finetune(finetune_config(shapes_idx, out, tmp_path / "ft", "train.strategy=linear_probe"))
    printed = _run_without_warmstart(f"""
        import torch, json
        from transformers import AutoModel, AutoModelForImageClassification
        enc = AutoModel.from_pretrained("{out}")
        assert type(enc).__name__ == "ResNetModel", type(enc)
        clf = AutoModelForImageClassification.from_pretrained("{tmp_path / 'ft'}").eval()
        print(json.dumps(clf.config.id2label))
    """)
    assert json.loads(printed.strip().splitlines()[-1]) == {"0": "0", "1": "1", "2": "2"}


def test_vit_backbone_and_scratch_from_an_architecture(shapes_idx, tmp_path):
    out = run_image_pretrain(pretrain_config(shapes_idx, tmp_path / "vit", "model.backbone=vit", "model.patch_size=4",
                                             "model.hidden_size=16", "model.num_layers=1", "model.num_heads=2"))
    assert json.loads((out / "config.json").read_text())["model_type"] == "vit"
    scratch = run_image_finetune(finetune_config(shapes_idx, "scratch", tmp_path / "s", f"architecture={out}"))
    assert scratch["init"] == "scratch" and scratch["steps"] == 6


def test_a_crash_mid_run_then_resume_gives_the_uninterrupted_weights(shapes_idx, tmp_path, monkeypatch):
    """Checkpoint every step, crash inside step 5 of 8, resume: bitwise the weights of an uninterrupted run
    (the schedule, data order, augmentation RNG, optimizer and BatchNorm statistics all continue)."""
    import warmstart.pretraining.images as module
    from warmstart.engine.runtime import device

    cuda = device().type == "cuda"
    if cuda:  # cuDNN's fastest weight gradients add with atomics, in no fixed order: two runs would differ
        monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    common = ("train.max_steps=8", "train.save_every_minutes=1e-9")
    run_image_pretrain(pretrain_config(shapes_idx, tmp_path / "a", *common))
    calls = {"n": 0}
    real = module.nt_xent_loss

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "nt_xent_loss", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_image_pretrain(pretrain_config(shapes_idx, tmp_path / "b", *common))
    assert not (tmp_path / "b" / "model.safetensors").exists()
    monkeypatch.setattr(module, "nt_xent_loss", real)
    run_image_pretrain(pretrain_config(shapes_idx, tmp_path / "b", *common), resume=True)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    # bitwise on the CPU; on CUDA within float rounding, should a kernel outside cuDNN still add in no fixed order
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) if cuda else torch.equal(a[k], b[k]) for k in a)


def test_per_class_split_is_balanced_and_disjoint():
    labels = torch.arange(100) % 4
    train, val = per_class_split(labels, 5, 3, seed=0)
    assert torch.bincount(labels[train]).tolist() == [5] * 4 and torch.bincount(labels[val]).tolist() == [3] * 4
    assert not set(train.tolist()) & set(val.tolist())
    assert torch.equal(per_class_split(labels, 5, 3, seed=0)[0], train)


def test_cli_routes_image_recipes(shapes_idx, tmp_path, capsys):
    assert main(["pretrain", f"output_dir={tmp_path / 'p'}", f"data.sources=[{shapes_idx / 'train-images-idx3-ubyte.gz'}]",
                 "model.image_size=16", "model.widths=[8]", "model.depths=[1]", "train.batch_size=16",
                 "train.max_steps=2", "train.precision=fp32", "objective.name=autoencoder"]) == 0
    assert (tmp_path / "p" / "model.safetensors").is_file()
    assert main(["pretrain", f"data.sources=[{tmp_path / 'missing'}]", "train.max_steps=2"]) == 2
    assert "an image recipe? declare it" in capsys.readouterr().err
    assert main(["pretrain", f"data.sources=[{tmp_path / 'missing'}]", "train.max_steps=2", "objective.name=simclr"]) == 2
    assert "missing: no such file" in capsys.readouterr().err


@pytest.mark.parametrize("parallel", ["ddp", "fsdp", "deepspeed"])
def test_two_process_simclr_pretraining(shapes_idx, tmp_path, parallel):
    """torchrun with 2 gloo processes: negatives gathered across processes, one checkpoint written by rank 0;
    with fsdp the ResNet's stages are sharded, and the checkpoint is gathered whole."""
    import subprocess

    from test_e2e import _flat
    from transformers import AutoModel

    from tests.engine.test_distributed import _launch, on_cpu

    cfg = pretrain_config(shapes_idx, tmp_path / "two", "train.max_steps=4", "train.eval_every=2",
                          f"train.parallel={parallel}")
    done = subprocess.run([*_launch("torchrun", 2), "pretrain", *[f"{k}={v}" for k, v in _flat(cfg).items()]],
                          capture_output=True, text=True, timeout=300, env=on_cpu())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes" in done.stdout and (f"{parallel}: sharded" in done.stdout) == (parallel != "ddp")
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["images"] == 64  # the global batch of 16, not 2 x 16
    assert 0 <= metrics["val_knn_acc"] <= 1  # the kNN monitor runs through the sharded model too
    model = AutoModel.from_pretrained(tmp_path / "two")
    assert load_file(tmp_path / "two" / "model.safetensors").keys() == model.state_dict().keys()


def test_predict_reproduces_the_finetuned_image_classifier(shapes_idx, tmp_path, monkeypatch):
    import pandas as pd

    from warmstart.prediction import run_predict

    out = run_image_pretrain(pretrain_config(shapes_idx, tmp_path / "pre"))
    run_image_finetune(finetune_config(shapes_idx, out, tmp_path / "ft", "train.strategy=lp_ft"))
    got = pd.read_csv(run_predict(str(tmp_path / "ft"), str(shapes_idx / "t10k-images-idx3-ubyte.gz"),
                                  str(tmp_path / "p.csv")))
    want = pd.read_csv(tmp_path / "ft" / "predictions.csv")
    assert list(got["prediction"]) == list(want["prediction"]) and len(got) == 30
    assert np.allclose(got[["prob_0", "prob_1", "prob_2"]], want[["prob_0", "prob_1", "prob_2"]], atol=1e-4)
    assert got["image"].iloc[0].endswith("t10k-images-idx3-ubyte.gz[0]")
    import io

    from predict_resume import stopped_then_resumed  # killed mid-file, resumed: the same classes

    resumed = stopped_then_resumed(tmp_path / "ft", shapes_idx / "t10k-images-idx3-ubyte.gz", tmp_path / "r.csv",
                                   monkeypatch, size=8)
    assert list(pd.read_csv(io.BytesIO(resumed))["prediction"]) == list(got["prediction"])
    from warmstart.errors import WarmstartError
    from warmstart.prediction import Predictor

    predictor = Predictor(tmp_path / "ft")  # a path through the Predictor: the same rows; rows in memory: one line
    assert list(predictor.predict(shapes_idx / "t10k-images-idx3-ubyte.gz")["prediction"].astype(int)) == \
        list(got["prediction"])
    with pytest.raises(WarmstartError, match="an image classifier predicts image files"):
        predictor.predict(["a text"])


def test_an_epoch_budget_counts_the_images(shapes_idx, tmp_path):
    """train.max_epochs=1 on images: as many steps as whole batches in the images read, then the run ends."""
    import gzip

    with gzip.open(shapes_idx / "train-images-idx3-ubyte.gz", "rb") as f:
        images = int.from_bytes(f.read(8)[4:8], "big")  # IDX header: magic, then the item count
    cfg = pretrain_config(shapes_idx, tmp_path / "e", "train.max_steps=10000", "train.max_epochs=1",
                          "objective.name=autoencoder")
    out = run_image_pretrain(cfg)
    assert json.loads((out / "metrics.json").read_text())["steps"] == images // 16
