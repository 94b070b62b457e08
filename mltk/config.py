"""Configurations: a verb's dataclass filled from a preset, a TOML file and the command line.

Precedence, lowest first: the dataclass defaults or a named preset, then `--config FILE`
(TOML, or a run's config.json), then the options given on the command line. Every value, from
wherever it comes, passes through `check`: its type, finiteness, declared range, choices and
path kind, each failure one sentence naming the option (exit 2, or 5 for a missing file).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, TypeVar

from mltk.errors import DataError, UsageError
from mltk.verbs import MISSING, SHARED_KEYS, Shared, Spec, range_text, show_value, specs

T = TypeVar("T")
INT_LIMIT = 2**63 - 1  # no option takes a larger integer: it would overflow every C library


class Where:
    """How a value's source is named in an error: `--lr`, `--config f.toml: lr =` or `lr =`."""

    def __init__(self, kind: str, file: str | None = None) -> None:
        self.kind, self.file = kind, file

    def __call__(self, spec: Spec) -> str:
        if self.kind == "cli":
            return spec.flag
        if self.kind == "file":
            return f"--config {self.file}: {spec.name} ="
        return f"{spec.name} ="


CLI = Where("cli")
PYTHON = Where("python")


def _type_name(spec: Spec) -> str:
    if spec.is_list:
        return f"a list of {getattr(spec.item_type, '__name__', 'str')}"
    if spec.choices:
        return "one of " + ", ".join(map(str, spec.choices))
    if spec.type is Path:
        return "a path"
    return getattr(spec.type, "__name__", str(spec.type))


def parse_cli(spec: Spec, raw: Any) -> Any:
    """A command-line string turned into the field's type (lists are comma-separated)."""
    if raw is None or not isinstance(raw, str) and not isinstance(raw, list):
        return raw
    if spec.type in (int, float) and isinstance(raw, str):
        try:
            return spec.type(raw.strip())
        except ValueError:
            noun = "an integer" if spec.type is int else "a number"
            raise UsageError(f"{spec.flag} {raw!r} is not {noun}") from None
    if spec.is_list:
        items = raw if isinstance(raw, list) else [p.strip() for p in raw.split(",")]
        if not isinstance(raw, list) and raw.strip() == "":
            items = []
        kind = spec.item_type
        if kind in (int, float):
            try:
                return tuple(kind(p) for p in items)
            except ValueError as exc:
                noun = "integers" if kind is int else "numbers"
                raise UsageError(
                    f"{spec.flag} {raw!r} must be {noun} separated by commas, e.g. 1,2,3"
                ) from exc
        return tuple(items)
    return raw


def _type_ok(spec: Spec, value: Any) -> bool:
    kind = spec.item_type if spec.is_list else spec.type
    values = value if spec.is_list else [value]
    if spec.is_list and not isinstance(value, (list, tuple)):
        return False
    for v in values:
        if kind is bool:
            ok = isinstance(v, bool)
        elif kind is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif kind is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif kind in (str, Path) or spec.choices:
            ok = isinstance(v, (str, Path))
        else:
            ok = True
        if not ok:
            return False
    return True


def check(spec: Spec, value: Any, where: Where) -> Any:
    """The value, coerced to the field's type, or UsageError/DataError naming the option."""
    name = where(spec)
    if value is None:
        if spec.optional:
            return None
        raise UsageError(f"{name} needs a value")
    if not _type_ok(spec, value):
        if where.kind == "cli":
            raise UsageError(f"{name} {value!r} is not {_type_name(spec)}")
        src = "--config " + where.file if where.kind == "file" else "the value"
        raise UsageError(
            f"{src}: {spec.name} = {value!r} has the wrong type; expected {_type_name(spec)}"
        )
    values = list(value) if spec.is_list else [value]
    kind = spec.item_type if spec.is_list else spec.type
    out = []
    for v in values:
        if kind is float:
            v = float(v)
            if not math.isfinite(v):
                raise UsageError(f"{name} {v} must be a finite number")
        if kind in (int, float):
            _check_range(spec, v, name)
        if kind is str or spec.choices or kind is Path:
            v = str(v)
            if spec.choices and v not in spec.choices:
                raise UsageError(
                    f"{name} must be one of {', '.join(map(str, spec.choices))}; got {v!r}"
                )
            if v.strip() == "" and not spec.meta.get("allow_empty"):
                raise UsageError(f"{name} is empty; give a value")
            if "\x00" in v:
                raise UsageError(f"{name} holds a NUL character")
        out.append(v)
    if spec.is_list:
        if not out and not spec.meta.get("allow_empty"):
            raise UsageError(f"{name} names nothing; give at least one value")
        return tuple(out)
    value = out[0]
    if spec.type is Path and value != "-":
        value = Path(value)
    return value


def check_files(cfg: Any) -> Any:
    """The path fields point where they should (checked after every value's type and range, and
    after the verb's own checks: a usage error is reported before a missing file); files and
    folders that are read are made absolute, so a run folder works from any directory."""
    changes = {}
    for spec in specs(type(cfg)):
        value = getattr(cfg, spec.name)
        if spec.meta.get("path") and value is not None:
            checked = check_path(spec.flag, str(value), spec.meta["path"], spec.meta)
            changes[spec.name] = str(checked) if spec.type is str else checked
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _check_range(spec: Spec, v: Any, name: str) -> None:
    meta = spec.meta
    if isinstance(v, int) and abs(v) > INT_LIMIT:
        raise UsageError(f"{name} {v} is too large")
    bad = (
        (meta.get("min") is not None and v < meta["min"])
        or (meta.get("max") is not None and v > meta["max"])
        or (meta.get("above") is not None and not v > meta["above"])
        or (meta.get("below") is not None and not v < meta["below"])
    )
    if bad:
        if meta.get("min") == 0 and all(meta.get(k) is None for k in ("max", "above", "below")):
            raise UsageError(f"{name} {show_value(v)} must not be negative")
        raise UsageError(f"{name} {show_value(v)} must be {range_text(meta)}")


def check_path(name: str, value: str, kind: str, meta: dict | None = None) -> Any:
    """A path option: "file", "dir", "exists" (read) or "output" (a file to write)."""
    meta = meta or {}
    if value == "-" and meta.get("dash"):
        return "-"
    path = Path(value).expanduser()
    try:
        exists, is_dir = path.exists(), path.is_dir()
        if kind == "output":
            folder = path.parent if str(path.parent) else Path(".")
            suffixes = meta.get("suffixes")
            if is_dir:
                raise UsageError(f"{name} {value} is a folder; name a file")
            if suffixes and path.suffix.lower() not in suffixes:
                raise UsageError(f"{name} {value}: name a {' or '.join(suffixes)} file")
            if not folder.is_dir():
                raise UsageError(f"{name} {value}: the folder {folder} does not exist")
            if not os.access(folder, os.W_OK):
                raise UsageError(f"{name} {value}: the folder {folder} is not writable")
            return path
    except OSError as exc:
        raise UsageError(f"{name} is not a usable path ({_reason(exc)})") from exc
    if not exists:
        raise DataError(f"{name} {value} does not exist")
    if kind == "file" and is_dir:
        raise DataError(f"{name} {value} is a folder; give a file")
    if kind == "dir" and not is_dir:
        raise DataError(f"{name} {value} is a file; give a folder")
    return path.resolve()


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long"
    return exc.strerror or str(exc)


def apply(cfg: T, values: dict[str, Any], *, where: Where = PYTHON) -> T:
    """A copy of dataclass `cfg` with `values` checked and applied; unknown keys are errors."""
    fields = {s.name: s for s in specs(type(cfg))}
    changes = {}
    for key, value in values.items():
        if key not in fields:
            raise UsageError(
                f"{_source(where)}unknown key {key!r}; known keys: {', '.join(fields)}"
            )
        changes[key] = check(fields[key], value, where)
    return dataclasses.replace(cfg, **changes)


def validate(cfg: Any) -> Any:
    """Check every field of a config built in Python, naming options as on the command line."""
    for spec in specs(type(cfg)):
        if not (spec.optional and getattr(cfg, spec.name) is None):
            check(spec, getattr(cfg, spec.name), CLI)
    return cfg


def _source(where: Where) -> str:
    return f"--config {where.file}: " if where.kind == "file" else ""


def build(cls: type[T], base: dict[str, Any], layers: list[tuple[dict, Where]]) -> T:
    """`cls(**base)` with each layer's values checked and applied in turn."""
    fields = {s.name: s for s in specs(cls)}
    merged = dict(base)
    for values, where in layers:
        for key, value in values.items():
            if key not in fields:
                raise UsageError(
                    f"{_source(where)}unknown key {key!r}; known keys: {', '.join(fields)}"
                )
            merged[key] = check(fields[key], value, where)
    missing = [s for s in fields.values() if s.required and s.name not in merged]
    if missing:
        s = missing[0]
        label = s.name.upper() if s.positional else s.flag
        raise UsageError(f"missing {label}")
    return cls(**merged)


def base_values(cfg: Any) -> dict[str, Any]:
    """The field values of a (preset) instance, without checking them again."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def default_base(cls: type) -> dict[str, Any]:
    return {s.name: s.default for s in specs(cls) if s.default is not MISSING}


# -- files ------------------------------------------------------------------------------------


def read_file(path: str | os.PathLike) -> dict[str, Any]:
    """A TOML file, or a JSON object (a run's config.json)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    name = f"--config {path}"
    p = check_path("--config", str(path), "file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{name} cannot be read ({_reason(exc)})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name} is not UTF-8 text, so not a TOML file") from exc
    if p.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{name} is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise UsageError(f"{name} does not hold a JSON object")
        return data
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{name} is not valid TOML ({exc})") from exc


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    return read_file(path)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON values: paths as strings, tuples as lists."""
    out = {}
    for f in dataclasses.fields(cfg):
        out[f.name] = _plain(getattr(cfg, f.name))
    return out


config_to_dict = to_dict


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, source: str) -> T:
    """Rebuild a config saved by `to_dict` (unknown keys are errors)."""
    return build(cls, default_base(cls), [(data, Where("file", source))])


config_from_dict = from_dict


def to_toml(sections: list[tuple[str | None, dict[str, Any]]], header: str = "") -> str:
    """TOML for flat key/value sections (None values are left out: TOML has no null)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for title, values in sections:
        if title:
            lines.append(f"# {title}")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key}: not set")
                continue
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def shared_from(values: dict[str, Any]) -> dict[str, Any]:
    return {k: values[k] for k in SHARED_KEYS if k in values}


__all__ = [
    "CLI",
    "PYTHON",
    "Shared",
    "Where",
    "apply",
    "build",
    "check",
    "check_path",
    "from_dict",
    "parse_cli",
    "read_file",
    "to_dict",
    "to_toml",
]
