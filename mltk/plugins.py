"""Plugin discovery: entry points in the group "mltk", loaded with pluggy, fault-tolerant.

Built-in plugins and third-party packages take exactly the same path. A plugin that fails to
import (or to register) is skipped with a one-line warning on stderr; `MLTK_STRICT_PLUGINS=1`
makes that an error; `MLTK_LOAD_PLUGINS=a,b` loads only the named plugins.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from mltk import hookspecs
from mltk.errors import MltkError

GROUP = "mltk"
# The plugins this package ships (plugins/, installed as mltk_plugins), in the README's order of
# sections: what docs, tests and benchmarks iterate over.
BUILTIN = (
    "tensor",
    "timediff",
    "aesam",
    "pixart",
    "teach",
    "trace",
    "geom-erasing",
    "growclip",
    "epic",
    "antnet",
)


class PluginError(MltkError):
    """A plugin could not be loaded and MLTK_STRICT_PLUGINS is set, or two plugins clash."""


@dataclass
class Command:
    name: str
    app: Any
    summary: str
    plugin: str


@dataclass
class Dataset:
    name: str
    loader: str
    description: str
    embedded: bool
    plugin: str


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    extra: str | None = None
    extra_installed: bool | None = None
    error: str | None = None
    commands: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return self.error is None


@dataclass
class Registry:
    plugins: list[PluginInfo] = field(default_factory=list)
    commands: dict[str, Command] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)


def _strict() -> bool:
    return os.environ.get("MLTK_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes")


def _wanted() -> set[str] | None:
    raw = os.environ.get("MLTK_LOAD_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _requirement_installed(req: str) -> bool:
    name = req.split(";")[0].strip()
    for sep in "<>=!~[ (":
        name = name.split(sep)[0]
    try:
        metadata.distribution(name)
        return True
    except metadata.PackageNotFoundError:
        return False


_HEADERS: dict[str, dict[str, list[str]]] = {}


def _headers(dist: metadata.Distribution) -> dict[str, list[str]]:
    """The METADATA headers of a distribution, parsed once. (`dist.metadata` parses the whole
    file, long description included, on every access: a tenth of `mltk --help` went there.)"""
    key = str(getattr(dist, "_path", id(dist)))
    if key not in _HEADERS:
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        headers: dict[str, list[str]] = {}
        for line in text.split("\n\n", 1)[0].splitlines():
            name, sep, value = line.partition(": ")
            if sep and not line.startswith((" ", "\t")):
                headers.setdefault(name, []).append(value.strip())
        _HEADERS[key] = headers
    return _HEADERS[key]


def _extra_status(
    dist: metadata.Distribution | None, plugin: str
) -> tuple[str | None, bool | None]:
    """The extra named like the plugin, and whether all its requirements are installed."""
    if dist is None:
        return None, None
    headers = _headers(dist)
    if plugin not in headers.get("Provides-Extra", []):
        return None, None
    markers = (f'extra=="{plugin}"', f"extra=='{plugin}'")
    reqs = [
        r
        for r in headers.get("Requires-Dist", [])
        if ";" in r and any(m in r.split(";", 1)[1].replace(" ", "") for m in markers)
    ]
    return plugin, all(_requirement_installed(r) for r in reqs)


def _fail(info: PluginInfo, message: str, warn: bool) -> None:
    info.error = message
    if _strict():
        raise PluginError(f"plugin {info.name!r} failed to load: {message}")
    if warn:
        print(f"warning: plugin {info.name!r} skipped: {message}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def discover(extra_plugins: dict[str, Any] | None = None, *, warn: bool = True) -> Registry:
    """Load every plugin and collect what it registers.

    `extra_plugins` maps names to already imported plugin objects (plugins registered at run
    time, e.g. from a Python program embedding mltk); they go through the same hooks.
    """
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    wanted = _wanted()

    candidates: list[tuple[PluginInfo, Any]] = []
    seen: set[str] = set()
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in seen or (wanted is not None and ep.name not in wanted):
            continue
        seen.add(ep.name)
        dist = getattr(ep, "dist", None)
        info = PluginInfo(name=ep.name, module=ep.value)
        if dist is not None:
            info.distribution = (_headers(dist).get("Name") or [None])[0]
            info.version = (_headers(dist).get("Version") or [None])[0]
        info.extra, info.extra_installed = _extra_status(dist, ep.name)
        registry.plugins.append(info)
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not take the tool down
            _fail(info, _one_line(exc), warn)
            continue
        candidates.append((info, obj))
    for name, obj in (extra_plugins or {}).items():
        if wanted is not None and name not in wanted:
            continue
        info = PluginInfo(name=name, module=getattr(obj, "__name__", repr(obj)))
        registry.plugins.append(info)
        candidates.append((info, obj))

    for info, obj in candidates:
        try:
            pm.register(obj, name=info.name)
        except Exception as exc:
            _fail(info, _one_line(exc), warn)
            continue
        _collect(pm, info, obj, registry, warn)
    return registry


def _collect(
    pm: pluggy.PluginManager, info: PluginInfo, obj: Any, registry: Registry, warn: bool
) -> None:
    """Call one plugin's hooks on their own, so one plugin's failure leaves the others whole."""
    commands: list[Command] = []
    datasets: list[Dataset] = []

    def register_command(name: str, app: Any, summary: str = "") -> None:
        # `app` is an mltk.verbs.Plugin (verbs declared once) or a plain Typer app
        commands.append(Command(name, app, summary or getattr(app, "summary", ""), info.name))

    def register_dataset(
        name: str, loader: str, description: str = "", embedded: bool = True
    ) -> None:
        if ":" not in loader:
            raise ValueError(f"dataset {name!r}: loader must be 'module:function', got {loader!r}")
        datasets.append(Dataset(name, loader, description, embedded, info.name))

    try:
        for impl in pm.hook.mltk_register_commands.get_hookimpls():
            if impl.plugin is obj:
                impl.function(register=register_command)
        for impl in pm.hook.mltk_register_datasets.get_hookimpls():
            if impl.plugin is obj:
                impl.function(register=register_dataset)
    except Exception as exc:
        pm.unregister(obj)
        _fail(info, _one_line(exc), warn)
        return
    reserved = {"plugins", "cache", "doctor", "version", "datasets"}
    for cmd in commands:
        clash = registry.commands.get(cmd.name)
        if clash is not None or cmd.name in reserved:
            owner = f"plugin {clash.plugin!r}" if clash else "mltk itself"
            _fail(
                info,
                f"its command {cmd.name!r} is already registered by {owner}; refusing the duplicate "
                f"(uninstall one, or choose with MLTK_LOAD_PLUGINS)",
                warn,
            )
            continue
        registry.commands[cmd.name] = cmd
        info.commands.append(cmd.name)
    for ds in datasets:
        clash = registry.datasets.get(ds.name)
        if clash is not None:
            _fail(
                info,
                f"its dataset {ds.name!r} is already registered by plugin {clash.plugin!r}",
                warn,
            )
            continue
        registry.datasets[ds.name] = ds
        info.datasets.append(ds.name)
