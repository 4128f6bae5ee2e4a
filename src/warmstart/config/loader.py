"""Loading configs: YAML recipes plus `section.key=value` overrides (or Python values), checked by the schema.

A recipe is a YAML file whose sections mirror a config dataclass. A section's keys are merged into that
section's default (so image fine-tuning keeps its own defaults while sharing the train section's class);
unknown keys are refused with the closest valid one suggested; then `schema.validate` checks every value
before any work starts. The resolved config is written as `warmstart_config.yaml` beside every output, so a
run can always be reproduced from its folder.
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

from warmstart.config.schema import validate
from warmstart.errors import WarmstartError

CONFIG_FILENAME = "warmstart_config.yaml"
C = TypeVar("C")
# keys only an image recipe has: a text recipe that meets them was probably meant as one
_IMAGE_KEYS = {"sources", "test_sources", "labels_per_class", "validation_per_class", "architecture", "backbone"}


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown_key(key: str, valid: list[str], where: str) -> WarmstartError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"
    if key not in valid and (key in _IMAGE_KEYS or (key == "data" and "corpus" in valid)):
        hint += " (an image recipe? declare it: task: image_classification, or objective.name: simclr)"
    return WarmstartError(f"{where}: unknown config key '{key}'{hint}")


def _coerce(value: Any, tp: Any, where: str, base: Any = None) -> Any:
    """Check a YAML value against a dataclass field type, converting the obvious cases (int -> float).
    `base`: the field's default, into which a section's keys are merged."""
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
        if dataclasses.is_dataclass(value):  # a section given as an object (the Python API)
            value = asdict(value)
        if not isinstance(value, dict):
            raise WarmstartError(f"{where}: expected a section (mapping), got {value!r}")
        return from_dict(tp, value, where, base)
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


def from_dict(cls: type[C], data: dict[str, Any], where: str = "config", base: C | None = None) -> C:
    """Build dataclass `cls` from a nested dict merged into `base` (default: `cls()`), rejecting unknown keys
    with a suggestion. Not validated: `load_config` and `validate` do that."""
    types_ = _field_types(cls)
    base = cls() if base is None or not isinstance(base, cls) else base
    kwargs = {}
    for key, value in data.items():
        if key not in types_:
            raise _unknown_key(str(key), list(types_), where)
        kwargs[key] = _coerce(value, types_[key], f"{where}: {key}", getattr(base, key))
    return dataclasses.replace(base, **kwargs)


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


def read_recipe(path: str | Path | None) -> dict[str, Any]:
    """A recipe file's mapping ({} for none); one-line errors for a missing file, bad YAML or a non-mapping."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise WarmstartError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise WarmstartError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise WarmstartError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """`section.key=value` -> (dotted key, YAML value)."""
    if "=" not in item:
        raise WarmstartError(f"override '{item}': expected section.key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(cls: type[C], path: str | Path | C | None, overrides: list[str] = (),
                values: dict[str, Any] | None = None, check: bool = True) -> C:
    """Read a YAML recipe (or none, for defaults; or a config object to start from), apply `section.key=value`
    overrides and then `values` ({dotted key: Python value}, the Python API's keyword arguments), and check
    the result."""
    if dataclasses.is_dataclass(path) and not isinstance(path, type):
        data, path = asdict(path), None
    else:
        data = read_recipe(path)
    for item in overrides:
        _set_dotted(data, cls, *parse_override(item))
    for key, value in (values or {}).items():
        _set_dotted(data, cls, key, value)
    where = str(path) if path else "config"
    config = from_dict(cls, data, where)
    if not check:  # --print-config shows a config that is not complete yet
        return config
    try:
        validate(config)
    except WarmstartError as e:
        raise WarmstartError(f"{where}: {e}" if path else str(e)) from None
    return config


def peek(path: str | Path | None, overrides: list[str] = (), key: str = "task") -> Any:
    """The value a dotted `key` will have from the recipe and overrides (None when unset), read before the
    config class is known: `task` says which task's config a fine-tuning recipe is, `objective.name` which
    modality a pretraining recipe is."""
    value: Any = None
    node: Any = read_recipe(path)
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    value = node
    for item in overrides:
        k, v = parse_override(item)
        if k == key:
            value = v
    return value


def bundled_recipes(command: str) -> dict[str, Path]:
    """The recipes shipped inside the package for a command: name -> file (configs/<command>/<name>.yaml)."""
    from importlib import resources

    folder = resources.files("warmstart") / "configs" / command
    if not folder.is_dir():
        return {}
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def recipe_path(recipe: str | Path | None, command: str) -> Path | None:
    """A recipe file, or the bundled recipe of that name (`warmstart pretrain bert`); one line when neither."""
    if recipe is None:
        return None
    path = Path(recipe)
    if path.is_file() or path.suffix in (".yaml", ".yml") or "/" in str(recipe):
        return path  # a path: load_config reports a missing file
    shipped = bundled_recipes(command)
    if str(recipe) in shipped:
        return shipped[str(recipe)]
    raise WarmstartError(f"{recipe}: no such recipe file, and no bundled {command} recipe of that name (bundled: "
                         f"{', '.join(sorted(shipped)) or 'none'})")


def save_config(config: Any, folder: str | Path) -> Path:
    """Write the resolved config beside an output, so the run can be reproduced from its folder."""
    from warmstart.engine.outputs import replace_file

    out, text = Path(folder) / CONFIG_FILENAME, yaml.safe_dump(asdict(config), sort_keys=False)
    replace_file(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))  # whole: a resume reads it back
    return out


def read_saved(folder: str | Path, cls: type[C]) -> C | None:
    """The config saved in a run folder, read through the current schema (a field added since takes its
    default); None when there is none or it no longer fits the schema."""
    saved = Path(folder) / CONFIG_FILENAME
    if not saved.is_file():
        return None
    try:
        return from_dict(cls, yaml.safe_load(saved.read_text(encoding="utf-8")) or {})
    except (WarmstartError, yaml.YAMLError):  # a field since removed or renamed: not the same recipe any more
        return None


def finished_with(folder: str | Path, config: Any) -> bool:
    """A run folder is done when its metrics exist and it ran with the same config. The saved config is read
    back through the current schema, so a field added since (with its default) does not count as a change."""
    if not (Path(folder) / "metrics.json").is_file():
        return False
    return read_saved(folder, type(config)) == config
