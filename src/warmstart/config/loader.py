"""Config dataclasses for every command, loaded from YAML recipes and `section.key=value` overrides.

A recipe is a flat YAML file whose sections mirror the dataclasses below. The resolved config
(recipe + overrides + defaults) is written as `warmstart_config.yaml` beside every output, so a run
can always be reproduced from its folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import yaml

from warmstart.errors import WarmstartError

CONFIG_FILENAME = "warmstart_config.yaml"


# ---------------------------------------------------------------- loading
C = TypeVar("C")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown_key(key: str, valid: list[str], where: str) -> WarmstartError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"
    return WarmstartError(f"{where}: unknown config key '{key}'{hint}")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check a YAML value against a dataclass field type, converting the obvious cases (int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except WarmstartError:
                continue
        raise WarmstartError(f"{where}: expected {tp}, got {value!r}")
    if origin is dict:  # name -> section (a study's tasks and pretrainings)
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise WarmstartError(f"{where}: expected a mapping of names to sections, got {value!r}")
        return {str(k): _coerce(v, item, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, list):
            raise WarmstartError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item, where) for v in value]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise WarmstartError(f"{where}: expected a section (mapping), got {value!r}")
        return from_dict(tp, value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise WarmstartError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def from_dict(cls: type[C], data: dict[str, Any], where: str = "config") -> C:
    """Build dataclass `cls` from a nested dict, rejecting unknown keys with a suggestion."""
    types_ = _field_types(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in types_:
            raise _unknown_key(str(key), list(types_), where)
        kwargs[key] = _coerce(value, types_[key], f"{where}: {key}")
    return cls(**kwargs)


def _set_dotted(data: dict[str, Any], cls: type, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node, node_cls = data, cls
    for i, key in enumerate(keys):
        types_ = _field_types(node_cls)
        if key not in types_:
            raise _unknown_key(key, list(types_), f"override '{dotted}'")
        if i == len(keys) - 1:
            node[key] = value
        else:
            node_cls = types_[key]
            if not dataclasses.is_dataclass(node_cls):
                raise WarmstartError(f"override '{dotted}': '{key}' is not a section")
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise WarmstartError(f"override '{dotted}': section '{key}' was given a value ({node!r}); "
                                     f"set its keys instead, as {key}.KEY=value")


def load_config(cls: type[C], path: str | Path | None, overrides: list[str] = ()) -> C:
    """Read a YAML recipe (or none, for defaults) and apply `section.key=value` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise WarmstartError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise WarmstartError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise WarmstartError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    for item in overrides:
        if "=" not in item:
            raise WarmstartError(f"override '{item}': expected section.key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        _set_dotted(data, cls, key.strip(), value)
    return from_dict(cls, data, str(path) if path else "config")


IMAGE_OBJECTIVES = ("simclr", "autoencoder")


def is_image_recipe(path: str | Path | None, overrides: list[str] = ()) -> bool:
    """Images or text? Image recipes have a `data.sources` list or `model.backbone` (text pretraining reads
    `corpus`, text fine-tuning `data.path`), or an image objective."""
    data: dict[str, Any] = {}
    if path is not None and Path(path).is_file():
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError):
            return False  # load_config reports the YAML error
    keys = {k.split("=", 1)[0].strip() for k in overrides}
    if not isinstance(data, dict):
        return False
    section = lambda name: data.get(name) if isinstance(data.get(name), dict) else {}  # noqa: E731
    objective = section("objective").get("name")
    for item in overrides:
        if item.split("=", 1)[0].strip() == "objective.name":
            objective = item.split("=", 1)[1].strip()
    return (objective in IMAGE_OBJECTIVES or "sources" in section("data") or "backbone" in section("model")
            or "architecture" in data or bool(keys & {"data.sources", "model.backbone", "architecture"}))


def save_config(config: Any, folder: str | Path) -> Path:
    """Write the resolved config beside an output, so the run can be reproduced from its folder."""
    out = Path(folder) / CONFIG_FILENAME
    out.write_text(yaml.safe_dump(asdict(config), sort_keys=False), encoding="utf-8")
    return out


def finished_with(folder: str | Path, config: Any) -> bool:
    """A run folder is done when its metrics exist and it ran with the same config. The saved config is read
    back through the current schema, so a field added since (with its default) does not count as a change."""
    folder = Path(folder)
    saved = folder / CONFIG_FILENAME
    if not ((folder / "metrics.json").is_file() and saved.is_file()):
        return False
    try:
        return from_dict(type(config), yaml.safe_load(saved.read_text(encoding="utf-8")) or {}) == config
    except WarmstartError:  # a field since removed or renamed: not the same recipe any more
        return False
