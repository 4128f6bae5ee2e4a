import pytest

from warmstart.config import FinetuneConfig, PretrainConfig, load_config, save_config
from warmstart.errors import WarmstartError


def test_recipe_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  lr: 0.001\n  max_minutes: 2\nmodel:\n  num_layers: 2\n")
    cfg = load_config(PretrainConfig, recipe, ["train.lr=3e-4", "corpus.sources=[a.txt, b.txt]", "objective.nsp=false"])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.train.max_minutes == 2.0 and isinstance(cfg.train.max_minutes, float)
    assert cfg.model.num_layers == 2
    assert cfg.corpus.sources == ["a.txt", "b.txt"]
    assert cfg.objective.nsp is False


def test_unknown_key_suggests_the_closest(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  learning_rat: 0.1\n")
    with pytest.raises(WarmstartError, match="unknown config key 'learning_rat'"):
        load_config(PretrainConfig, recipe)
    with pytest.raises(WarmstartError, match="did you mean 'max_steps'"):
        load_config(PretrainConfig, None, ["train.max_step=5"])


def test_type_errors_are_one_line(tmp_path):
    with pytest.raises(WarmstartError, match="train: batch_size") as e:
        load_config(PretrainConfig, None, ["train.batch_size=many"])
    assert "\n" not in str(e.value)
    with pytest.raises(WarmstartError, match="not found"):
        load_config(PretrainConfig, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(WarmstartError, match="mapping"):
        load_config(PretrainConfig, bad)


def test_saved_config_reloads_identically(tmp_path):
    cfg = load_config(FinetuneConfig, None, ["init=scratch", "data.labels=100", "train.strategy=linear_probe"])
    path = save_config(cfg, tmp_path)
    assert load_config(FinetuneConfig, path) == cfg
