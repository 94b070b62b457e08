"""The root command line: plugin commands plus `plugins`, `datasets`, `cache`, `doctor`, `version`.

`main()` is the one place where errors become exit codes (see mltk.errors.ExitCode).
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Annotated, Any, Optional

import typer

from mltk import __version__
from mltk.errors import ExitCode, MltkError
from mltk.output import Output, Table
from mltk.plugins import Registry, discover

HELP = (
    "mltk: ten recent machine-learning research methods behind one command line.\n\n"
    "Each method is a plugin with train, eval and predict (plus its own verb). "
    "`mltk plugins` lists what is installed."
)

Json = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
_registry: Registry | None = None
_FILE_ERRORS = (
    errno.ENAMETOOLONG, errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM,
)  # fmt: skip


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _plugins_table(registry: Registry) -> Table:
    rows = []
    for p in registry.plugins:
        extra = (
            "-"
            if p.extra is None
            else (f"{p.extra} (installed)" if p.extra_installed else f"{p.extra} (missing)")
        )
        status = "ok" if p.loaded else f"failed: {p.error}"
        rows.append([p.name, p.version or "-", ", ".join(p.commands) or "-", extra, status])
    return Table("plugins", ["name", "version", "commands", "extra", "status"], rows)


def _plugin_records(registry: Registry) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "module": p.module,
            "distribution": p.distribution,
            "version": p.version,
            "commands": p.commands,
            "datasets": p.datasets,
            "extra": p.extra,
            "extra_installed": p.extra_installed,
            "loaded": p.loaded,
            "error": p.error,
        }
        for p in registry.plugins
    ]


def cmd_plugins(json_out: Json = False) -> None:
    """List the installed plugins, their commands and whether their extra is installed."""
    registry = _registry or discover()
    out = Output(json=json_out)
    out.result(
        {"plugins": _plugin_records(registry)} if json_out else None,
        table=None if json_out else _plugins_table(registry),
    )


def cmd_datasets(json_out: Json = False) -> None:
    """List the datasets plugins register (embedded ones need no path)."""
    registry = _registry or discover()
    datasets = list(registry.datasets.values())
    rows = [
        [d.name, d.plugin, "yes" if d.embedded else "no (give a path)", d.description]
        for d in datasets
    ]
    table = Table("datasets", ["name", "plugin", "embedded", "description"], rows)
    records = [
        {
            "name": d.name,
            "plugin": d.plugin,
            "embedded": d.embedded,
            "loader": d.loader,
            "description": d.description,
        }
        for d in datasets
    ]
    Output(json=json_out).result(
        {"datasets": records} if json_out else None, table=None if json_out else table
    )


def cmd_version(json_out: Json = False) -> None:
    """Print the mltk version."""
    Output(json=json_out).result(
        {"version": __version__}, text=None if json_out else f"mltk {__version__}"
    )


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def cmd_doctor(json_out: Json = False) -> None:
    """Versions, devices, cache and plugin health: what to paste into a bug report."""
    import platform

    from mltk import cache

    registry = _registry or discover(warn=False)
    versions = {"python": platform.python_version(), "mltk": __version__}
    for name in ("torch", "numpy", "diffusers", "transformers", "typer", "safetensors"):
        versions[name] = _package_version(name)
    devices: list[str] = []
    torch_info: dict[str, Any] = {}
    try:
        import torch

        from mltk.device import available_devices

        devices = available_devices()
        torch_info = {"cuda": torch.version.cuda, "threads": torch.get_num_threads()}
    except ImportError as exc:
        torch_info = {"error": str(exc)}
    root = cache.cache_root()
    entries = cache.list_entries(root)
    data = {
        "versions": versions,
        "devices": devices,
        "torch": torch_info,
        "cache": {"path": str(root), "entries": len(entries), "bytes": cache.total_size(root)},
        "plugins": _plugin_records(registry),
    }
    out = Output(json=json_out)
    if json_out:
        out.result(data)
        return
    lines = ["versions:"]
    lines += [f"  {k}: {v or 'not installed'}" for k, v in versions.items()]
    lines.append(f"devices: {', '.join(devices) or 'none (torch missing)'}")
    lines.append(f"cache: {root} ({len(entries)} entries, {_human_size(data['cache']['bytes'])})")
    lines.append("plugins:")
    for p in registry.plugins:
        state = "ok" if p.loaded else f"FAILED ({p.error})"
        lines.append(f"  {p.name} {p.version or ''}: {state}")
    out.result(data, text="\n".join(lines))


cache_app = typer.Typer(help="Inspect and clear the dataset cache.", no_args_is_help=True)


@cache_app.command("list")
def cache_list(json_out: Json = False) -> None:
    """List cached dataset entries."""
    from mltk import cache

    entries = cache.list_entries()
    rows = [[e.name, e.key, _human_size(e.size), str(e.path)] for e in entries]
    table = Table("cache", ["name", "key", "size", "path"], rows)
    records = [
        {"name": e.name, "key": e.key, "bytes": e.size, "path": str(e.path), "created": e.created}
        for e in entries
    ]
    Output(json=json_out).result(
        {"root": str(cache.cache_root()), "entries": records},
        table=None if (json_out or not entries) else table,
        text=None if (json_out or entries) else f"the cache at {cache.cache_root()} is empty",
    )


@cache_app.command("path")
def cache_path(json_out: Json = False) -> None:
    """Print the cache folder."""
    from mltk import cache

    root = str(cache.cache_root())
    Output(json=json_out).result({"path": root}, text=None if json_out else root)


@cache_app.command("clear")
def cache_clear(
    name: Optional[str] = typer.Option(None, "--name", help="Only entries of this dataset."),
    json_out: Json = False,
) -> None:
    """Delete cached entries (all of them, or one dataset's)."""
    from mltk import cache

    freed = cache.clear(name)
    Output(json=json_out).result(
        {"bytes_freed": freed}, text=None if json_out else f"freed {_human_size(freed)}"
    )


def _version_callback(value: bool) -> None:
    if value:
        print(f"mltk {__version__}")
        raise typer.Exit()


def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """mltk: ten recent machine-learning research methods behind one command line."""


def _placeholder(summary: str) -> typer.Typer:
    """A plugin's entry in `mltk --help` without building its verbs' options."""
    group = typer.Typer(help=summary)

    @group.callback(invoke_without_command=True)
    def _() -> None:  # pragma: no cover - replaced whenever the plugin is the one invoked
        pass

    return group


def build_app(
    extra_plugins: dict[str, Any] | None = None, argv: list[str] | None = None
) -> typer.Typer:
    """The root app with every discovered plugin added as `mltk <name> ...`.

    Only the plugin named in `argv` gets its verbs built (each verb's options are generated from
    its config); the others appear by name and summary, which is all `mltk --help` shows.
    """
    from mltk.verbs import Plugin

    global _registry
    _registry = discover(extra_plugins)
    app = typer.Typer(
        name="mltk",
        help=HELP,
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    app.command("plugins")(cmd_plugins)
    app.command("datasets")(cmd_datasets)
    app.command("doctor")(cmd_doctor)
    app.command("version")(cmd_version)
    app.add_typer(cache_app, name="cache")
    for name in sorted(_registry.commands):
        cmd = _registry.commands[name]
        group = cmd.app
        if isinstance(cmd.app, Plugin):
            lazy = argv is not None and name not in argv and "_MLTK_COMPLETE" not in os.environ
            group = _placeholder(cmd.summary) if lazy else cmd.app.typer_app()
        app.add_typer(group, name=name, help=cmd.summary or None, rich_help_panel="Methods")
    return app


def _error(message: str, code: int) -> int:
    print(f"mltk: error: {message}", file=sys.stderr, flush=True)
    return code


def command_for(argv: list[str], extra_plugins: dict[str, Any] | None = None):
    """The click command of the root app, built for `argv` (see build_app)."""
    return typer.main.get_command(build_app(extra_plugins, argv[:1]))


def run(
    argv: list[str] | None = None, extra_plugins: dict[str, Any] | None = None, *, command=None
) -> int:
    """Run the command line and return the exit code (for tests and embedding; `command`, from
    `command_for`, saves building the app again when one process runs many commands)."""
    debug = os.environ.get("MLTK_DEBUG", "") not in ("", "0")
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        command = command or command_for(args, extra_plugins)
        rv = command.main(args=argv, prog_name="mltk", standalone_mode=False)
        if rv == ExitCode.INTERRUPTED:  # typer turns Ctrl-C into Exit(130)
            return _error("interrupted", ExitCode.INTERRUPTED)
        return rv if isinstance(rv, int) else ExitCode.OK
    except MltkError as exc:
        if debug:
            traceback.print_exc()
        return _error(str(exc), int(exc.exit_code))
    except KeyboardInterrupt:
        return _error("interrupted", ExitCode.INTERRUPTED)
    except Exception as exc:
        from typer import Abort

        try:
            from typer._click.exceptions import ClickException, UsageError
        except ImportError:  # typer before 0.26 used click itself
            from click.exceptions import ClickException, UsageError

        if isinstance(exc, UsageError):
            message = exc.format_message()
            if not message.strip():  # a bare group: its help was printed, nothing went wrong
                return ExitCode.USAGE
            at_root = exc.ctx is None or exc.ctx.parent is None
            if message.startswith("No such command") and _registry is not None and at_root:
                names = ", ".join(sorted(_registry.commands)) or "none"
                message += f" Installed plugins: {names} (see `mltk plugins`)."
            hint = ""
            if exc.ctx is not None:
                hint = f" See '{exc.ctx.command_path} --help'."
            return _error(message.rstrip(".") + "." + hint, ExitCode.USAGE)
        if isinstance(exc, ClickException):
            return _error(exc.format_message(), exc.exit_code)
        if isinstance(exc, Abort):
            return _error("aborted", ExitCode.INTERRUPTED)
        if isinstance(exc, BrokenPipeError):
            return ExitCode.RUNTIME
        if isinstance(exc, OSError) and exc.errno in _FILE_ERRORS:
            # a file a plugin was pointed at: one sentence, not a raw OSError
            if debug:
                traceback.print_exc()
            name = str(exc.filename or "")
            if len(name) > 80:
                name = f"{name[:40]}... ({len(name):,} characters)"
            code = ExitCode.USAGE if exc.errno == errno.ENAMETOOLONG else ExitCode.DATA
            reason = "the name is too long" if exc.errno == errno.ENAMETOOLONG else exc.strerror
            return _error(f"{name}: {reason}" if name else reason, code)
        if isinstance(exc, UnicodeDecodeError):
            if debug:
                traceback.print_exc()
            return _error("an input file is not UTF-8 text (is it a binary file?)", ExitCode.DATA)
        if debug:
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        return _error(
            f"{type(exc).__name__}: {first} (set MLTK_DEBUG=1 for the traceback)", ExitCode.RUNTIME
        )


def main() -> None:
    code = run()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.exit(code)
