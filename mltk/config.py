"""Configurations: one dataclass per plugin, filled from a preset, a TOML file and the CLI.

Precedence, lowest first: the dataclass defaults or a named preset, then `--config FILE.toml`,
then the options given on the command line (a CLI value of None means "not given").
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from mltk.errors import DataError, UsageError

T = TypeVar("T")


def _type_ok(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = get_origin(tp)
    if origin in (Union, getattr(types, "UnionType", Union)):
        return any(_type_ok(value, a) for a in get_args(tp))
    if tp is type(None):
        return value is None
    if origin is typing.Literal:
        return value in get_args(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return not args or all(_type_ok(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is Path:
        return isinstance(value, (str, Path))
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _coerce(value: Any, tp: Any) -> Any:
    if tp is float and isinstance(value, int):
        return float(value)
    if tp is Path and isinstance(value, str):
        return Path(value)
    if get_origin(tp) is tuple and isinstance(value, list):
        return tuple(value)
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _flag(field: dataclasses.Field) -> str:
    """The option that sets a field: `metadata={"flag": ...}` where it differs from --field-name."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def apply(cfg: T, values: dict[str, Any], *, source: str) -> T:
    """A copy of dataclass `cfg` with `values` applied; unknown keys, wrong types and non-finite
    floats (nan, inf) are UsageError."""
    hints = typing.get_type_hints(type(cfg))
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    names = list(fields)
    changes = {}
    for key, value in values.items():
        if key not in names:
            raise UsageError(f"{source}: unknown key {key!r}; known keys: {', '.join(names)}")
        tp = hints[key]
        if not _type_ok(value, tp):
            raise UsageError(
                f"{source}: {key} = {value!r} has the wrong type; expected {_type_name(tp)}"
            )
        value = _coerce(value, tp)
        if isinstance(value, float) and not math.isfinite(value):
            where = _flag(fields[key]) if source == "command line" else f"{source}: {key} ="
            raise UsageError(f"{where} {value} must be a finite number")
        changes[key] = value
    return dataclasses.replace(cfg, **changes)


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    path = Path(path)
    if path.is_dir():
        raise DataError(f"--config {path} is a folder; give a TOML file")
    if not path.is_file():
        raise DataError(f"--config {path} does not exist")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except UnicodeDecodeError as exc:
        raise UsageError(f"--config {path} is not UTF-8 text, so not a TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {path} is not valid TOML ({exc})") from exc


def build_config(
    cls: type[T],
    *,
    preset: T | None = None,
    file: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
) -> T:
    """Preset (or defaults), then the TOML file, then CLI overrides that are not None."""
    cfg = preset if preset is not None else cls()
    if file is not None:
        cfg = apply(cfg, read_toml(file), source=f"--config {file}")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return apply(cfg, given, source="command line")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def config_from_dict(cls: type[T], data: dict[str, Any], *, source: str) -> T:
    """Rebuild a config saved by `config_to_dict` (ignoring nothing: unknown keys are errors)."""
    return apply(cls(), data, source=source)
