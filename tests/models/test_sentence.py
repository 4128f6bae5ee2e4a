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
