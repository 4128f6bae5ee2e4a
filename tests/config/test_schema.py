"""Every number in a config is checked before any work starts (issue 18.3), by the one schema."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from warmstart.cli import main
from warmstart.config import (
    FinetuneConfig,
    ImageFinetuneConfig,
    ImagePretrainConfig,
    PretrainConfig,
    StudyConfig,
    knob,
    load_config,
    validate,
)
from warmstart.config.schema import plain_name
from warmstart.errors import WarmstartError

BAD_PRETRAIN = [
    ("train.max_steps=-5", "train.max_steps=-5: must be >= 1"),
    ("train.max_steps=0", "train.max_steps=0: must be >= 1"),
    ("train.max_minutes=-1", "train.max_minutes=-1.0: must be > 0"),
    ("train.max_tokens=0", "train.max_tokens=0: must be >= 1"),
    ("train.batch_size=-4", "train.batch_size=-4: must be >= 1"),
    ("train.lr=0", "train.lr=0.0: must be > 0"),
    ("train.lr=-1e-3", "train.lr=-0.001: must be > 0"),
    ("train.lr=nan", "train.lr=nan: must be a finite number"),
    ("train.lr=.inf", "train.lr=inf: must be a finite number"),
    ("train.grad_accum=0", "train.grad_accum=0: must be >= 1"),
    ("train.warmup_fraction=1", "train.warmup_fraction=1.0: must be >= 0 and < 1"),
    ("train.save_every_minutes=0", "train.save_every_minutes=0.0: must be > 0"),
    ("train.schedule=exp", "train.schedule='exp': unknown value; use linear, cosine, constant"),
    ("train.precision=fp16", "train.precision='fp16': unknown value; use auto, bf16, fp32"),
    ("train.attention=flash", "train.attention='flash': unknown value; use auto, sdpa, eager"),
    ("objective.mlm_probability=0", "objective.mlm_probability=0.0: must be > 0 and < 1"),
    ("objective.mlm_probability=1.5", "objective.mlm_probability=1.5: must be > 0 and < 1"),
    ("objective.name=gpt", "objective.name='gpt': unknown value; use mlm, electra"),
    ("model.max_seq_len=2", "model.max_seq_len=2: must be >= 8"),
    ("model.num_heads=3", "model.num_heads=3 does not divide model.hidden_size=256"),
    ("model.num_layers=0", "model.num_layers=0: must be >= 1"),
    ("model.dropout=1", "model.dropout=1.0: must be >= 0 and < 1"),
    ("tokenizer.vocab_size=50", "tokenizer.vocab_size=50: must be >= 100"),
    ("corpus.validation_fraction=1", "corpus.validation_fraction=1.0: must be >= 0 and < 1"),
    ("objective.name=electra", "objective.nsp works with objective.name=mlm only"),
    ("model.head_warmup=0.2", "model.head_warmup freezes a pretrained encoder"),
]


@pytest.mark.parametrize("override,message", BAD_PRETRAIN)
def test_bad_pretraining_values_are_refused_naming_the_key(override, message):
    with pytest.raises(WarmstartError) as e:
        load_config(PretrainConfig, None, [override])
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("config", [PretrainConfig, ImagePretrainConfig])
def test_cuda_graphs_with_gradient_accumulation_are_refused(config):
    """CUDA graph trees overwrite the first micro-batch's gradients (pytorch#169545): refused before any work."""
    graphs = ["train.compile=true", "train.compile_mode=reduce-overhead"]
    with pytest.raises(WarmstartError, match="cannot accumulate gradients") as e:
        load_config(config, None, [*graphs, "train.grad_accum=2"])
    assert "\n" not in str(e.value)
    assert load_config(config, None, [*graphs, "train.grad_accum=1"]).train.compile_mode == "reduce-overhead"
    assert load_config(config, None, ["train.compile=true", "train.grad_accum=2"]).train.grad_accum == 2


BAD_FINETUNE = [
    ("train.batch_size=0", "train.batch_size=0: must be >= 1"),
    ("train.max_length=2", "train.max_length=2: must be >= 4"),
    ("train.strategy=magic", "train.strategy='magic': unknown value; use full, linear_probe"),
    ("train.pooling=max", "train.pooling='max': unknown value; use auto, cls, cls_token, mean"),
    ("train.patience=-1", "train.patience=-1: must be >= 0"),
    ("train.lora.r=0", "train.lora.r=0: must be >= 1"),
    ("train.llrd.decay=1.5", "train.llrd.decay=1.5: must be > 0 and <= 1"),
    ("data.labels=0", "data.labels=0: must be >= 1"),
    ("data.candidates=1", "data.candidates=1: must be >= 2"),
    ("data.test_size=0.6", "leave no training rows"),
]


@pytest.mark.parametrize("override,message", BAD_FINETUNE)
def test_bad_finetuning_values_are_refused_naming_the_key(override, message):
    with pytest.raises(WarmstartError) as e:
        load_config(FinetuneConfig, None, ["data.validation_size=0.5", override] if "test_size" in override else [override])
    assert message in str(e.value)


@pytest.mark.parametrize("cls,override,message", [
    (ImagePretrainConfig, "objective.temperature=0", "objective.temperature=0.0: must be > 0"),
    (ImagePretrainConfig, "model.widths=[8, -1]", "model.widths=-1: must be >= 1"),
    (ImagePretrainConfig, "objective.augment.flip_p=2", "objective.augment.flip_p=2.0: must be >= 0 and <= 1"),
    (ImagePretrainConfig, "model.depths=[1]", "one width and one depth per ResNet stage"),
    (ImageFinetuneConfig, "data.labels_per_class=0", "data.labels_per_class=0: must be >= 1"),
    (StudyConfig, "seeds=0", "seeds=0: must be >= 1"),
    (StudyConfig, "strategies=[full, nope]", "strategies='nope': unknown value"),
    (StudyConfig, "tasks={'../x': {recipe: a.yaml, labels: [10]}}", "'../x' must be a plain name"),
    (StudyConfig, "tasks={a/b: {recipe: a.yaml, labels: [10]}}", "'a/b' must be a plain name"),
    (StudyConfig, "tasks={t: {recipe: a.yaml, labels: [0]}}", "labels=0: must be >= 1"),
])
def test_every_command_gets_the_checks(cls, override, message):
    with pytest.raises(WarmstartError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config(cls, None, [override])


def test_a_recipe_file_is_named_in_the_message(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  batch_size: -4\n")
    with pytest.raises(WarmstartError, match=r"r.yaml: train.batch_size=-4: must be >= 1"):
        load_config(PretrainConfig, recipe)


def test_image_finetuning_keeps_its_own_defaults_through_the_shared_train_section():
    cfg = load_config(ImageFinetuneConfig, None, ["train.patience=7"])
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.max_epochs, cfg.train.patience) == (1e-3, 64, 100, 7)
    assert load_config(FinetuneConfig, None, []).train.lr == 5e-5


def test_text_finetuning_trains_a_fixed_budget_by_default_and_images_still_stop_early():
    """Text: no early stopping unless asked (benchmarks/results/fixed_budget.md: stopping on a held-out fifth of 100
    labels cost 11 points with full fine-tuning, 3.7 with LP-FT, 10 with LoRA, 16 entity-F1 points on WNUT-16); images keep
    their measured recipe's early stopping (100 epochs at most, patience 5)."""
    assert load_config(FinetuneConfig, None, []).train.patience == 0
    assert load_config(ImageFinetuneConfig, None, []).train.patience == 5


def test_a_config_built_in_python_is_checked_too():
    cfg = PretrainConfig()
    cfg.train.batch_size = -1
    with pytest.raises(WarmstartError, match="train.batch_size=-1"):
        validate(cfg)


def _numeric_fields(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = set(typing.get_args(tp)) or {tp}
        if dataclasses.is_dataclass(tp):
            yield from _numeric_fields(tp, f"{prefix}{f.name}.")
        elif args & {int, float} or typing.get_args(tp) in ((int,), (float,)):
            yield f"{prefix}{f.name}", f


@pytest.mark.parametrize("cls", [PretrainConfig, FinetuneConfig, ImagePretrainConfig, ImageFinetuneConfig,
                                 StudyConfig])
def test_every_numeric_knob_declares_its_range_and_help(cls):
    unchecked = [k for k, f in _numeric_fields(cls)
                 if not any(f.metadata.get(b) is not None for b in ("gt", "ge", "lt", "le"))]
    assert not unchecked, f"give these knobs a range: {unchecked}"
    missing_help = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("help")]
    assert not missing_help, missing_help


def test_plain_names():
    for ok in ("sentiment", "ner-500", "a_b.c"):
        assert plain_name(ok, "tasks") == ok
    for bad in ("", ".", "..", "a/b", "../x", "a b", "~"):
        with pytest.raises(WarmstartError):
            plain_name(bad, "tasks")


def test_knob_default_and_factory():
    @dataclasses.dataclass
    class C:
        a: int = knob(3, "three", ge=1)
        b: list[int] = knob(help="list", factory=lambda: [1])

    assert C().a == 3 and C().b == [1] and C().b is not C().b


@pytest.mark.parametrize("argv", [
    ["pretrain", "train.max_steps=-5"], ["pretrain", "train.batch_size=-4", "train.max_steps=2"],
    ["pretrain", "train.max_minutes=-1"], ["pretrain", "objective.mlm_probability=0", "train.max_steps=2"],
    ["finetune", "init=x", "train.lr=nan"],
])
def test_the_cli_refuses_before_any_work(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not list(tmp_path.iterdir()), "a refused config must not create anything"
