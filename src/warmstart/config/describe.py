"""`--print-config`: every key of a command's config with its value (the default, or what a recipe and
overrides make it), its one-line help and what it accepts, read from the dataclasses' schema."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from warmstart.config.schema import accepted


def _value(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def describe(config: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    """-> (dotted key, value as YAML, help + accepted range) for every leaf field, in declaration order."""
    rows = []
    for f in dataclasses.fields(config):
        value, key = getattr(config, f.name), f"{prefix}{f.name}"
        meta = f.metadata or {}
        if dataclasses.is_dataclass(value):
            rows.extend(describe(value, f"{key}."))
            continue
        note = meta.get("help", "")
        rng = accepted(f)
        if rng:
            note = f"{note} [{rng}]" if note else f"[{rng}]"
        if isinstance(value, dict) and value and all(dataclasses.is_dataclass(v) for v in value.values()):
            value = {k: dataclasses.asdict(v) for k, v in value.items()}
        rows.append((key, _value(value), note))
    return rows


def print_config(config: Any) -> str:
    """The table `--print-config` prints: `key = value  # help [range]`, aligned."""
    rows = describe(config)
    width = max(len(f"{k} = {v}") for k, v, _ in rows)
    return "\n".join(f"{f'{k} = {v}':<{width}}  # {note}" if note else f"{k} = {v}" for k, v, note in rows)
