"""The schema of every config: each field says what it is for and which values it accepts, once.

`knob(default, help, ...)` declares a field with its one-line help and its range (`gt`/`ge`/`lt`/`le` for
numbers, item-wise for lists; `choices` for strings). `validate(config)` checks a whole config before any
work starts: every number finite and in range, every choice known, then each section's own `check()` for
rules between fields (heads dividing the width, a sequence long enough for its special tokens). The loader
calls it, so every command, the study and the Python API get the same checks; `--print-config` reads the
same help.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from warmstart.errors import WarmstartError

_MISSING = dataclasses.MISSING


def knob(default: Any = _MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
         gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None,
         choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its help line and accepted range (None passes when the field is optional)."""
    meta = {"help": help, "gt": gt, "ge": ge, "lt": lt, "le": le, "choices": choices}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _describe_range(meta: dict) -> str:
    parts = []
    for key, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if meta.get(key) is not None:
            parts.append(f"{sign} {meta[key]:g}")
    return " and ".join(parts)


def accepted(f: dataclasses.Field) -> str:
    """What a field accepts, in words ('> 0', 'one of a, b'), or '' when anything of its type goes."""
    meta = f.metadata or {}
    if meta.get("choices"):
        return "one of " + ", ".join(meta["choices"])
    rng = _describe_range(meta)
    return f"{rng}" if rng else ""


def _check_value(value: Any, meta: dict, key: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_value(item, meta, key)
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise WarmstartError(f"{key}={value}: must be a finite number")
    if isinstance(value, (int, float)):
        ok = ((meta.get("gt") is None or value > meta["gt"]) and (meta.get("ge") is None or value >= meta["ge"])
              and (meta.get("lt") is None or value < meta["lt"]) and (meta.get("le") is None or value <= meta["le"]))
        if not ok:
            raise WarmstartError(f"{key}={value}: must be {_describe_range(meta)}")
    if isinstance(value, str) and meta.get("choices") and value not in meta["choices"]:
        raise WarmstartError(f"{key}='{value}': unknown value; use {', '.join(meta['choices'])}")


def validate(config: Any, prefix: str = "") -> None:
    """Check every field of a config dataclass (recursively), then its sections' `check()` methods, deepest
    first. Raises a one-line WarmstartError naming the key (`train.lr=-1: must be > 0`)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            validate(value, f"{key}.")
        elif isinstance(value, dict):
            for name, item in value.items():
                if dataclasses.is_dataclass(item):
                    validate(item, f"{key}.{name}.")
        else:
            _check_value(value, f.metadata or {}, key)
    check = getattr(config, "check", None)
    if callable(check):
        check()


def plain_name(name: str, where: str) -> str:
    """A name that becomes a folder name: letters, digits, '-', '_' and '.', not '.' or '..'."""
    if not name or name in (".", "..") or any(not (c.isalnum() or c in "-_.") for c in name):
        raise WarmstartError(f"{where}: '{name}' must be a plain name (letters, digits, '-', '_', '.'; no '/' or "
                             "'..'): it names a folder")
    return name
