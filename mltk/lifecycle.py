"""One run lifecycle for every verb of every plugin, from the command line or from Python.

resolve: preset < --config < command line, checked once (mltk.config), plus the verb's own
cross-field check. execute: set the runtime up, open RUN, reopen a --resume folder (only the
verb's whitelisted fields may change; the rest are named in one warning), create the run or
output folder on first use, call the body, print (or return) its result.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltk import __version__
from mltk.config import (
    CLI,
    PYTHON,
    Where,
    base_values,
    build,
    check_files,
    default_base,
    parse_cli,
    read_file,
    to_dict,
    to_toml,
)
from mltk.errors import DataError, UsageError
from mltk.verbs import SHARED_KEYS, Shared, Verb, specs

TOP_KEYS = ("preset", "run", "runs")


@dataclass
class Call:
    """A verb with everything resolved, ready to run."""

    verb: Verb
    config: Any
    shared: Shared
    preset: str | None = None
    runs: list[str] = field(default_factory=list)
    out: str | None = None
    resume: str | None = None
    json: bool = False
    quiet: bool = False
    print_config: bool = False
    given: dict[str, Any] = field(default_factory=dict)  # fields set by --config or the caller
    given_other: list[str] = field(default_factory=list)  # flags besides fields (--seed, --out)


# -- resolving --------------------------------------------------------------------------------


def _split(verb: Verb, data: dict[str, Any], where: Where) -> tuple[dict, dict, dict]:
    """A --config file's keys as (fields, shared keys, top-level keys)."""
    own = {s.name for s in specs(verb.config)}
    if isinstance(data.get("config"), dict) and "plugin" in data:  # a run's config.json
        if data["plugin"] != verb.plugin:
            raise UsageError(
                f"--config {where.file} is a run of mltk {data['plugin']}, not of mltk {verb.plugin}"
            )
        fields = dict(data["config"])
        if data.get("verb") != verb.name:  # another verb's run: take what this verb knows
            dropped = sorted(k for k in fields if k not in own)
            fields = {k: v for k, v in fields.items() if k in own}
            if dropped:
                print(
                    f"warning: --config {where.file}: `{verb.command}` does not take "
                    f"{', '.join(dropped)}; ignored",
                    file=sys.stderr,
                )
        shared = {k: data[k] for k in SHARED_KEYS if k in data and k not in own}
        top = {"preset": data["preset"]} if data.get("preset") and verb.presets else {}
        return fields, shared, top
    fields, shared, top = {}, {}, {}
    for key, value in data.items():
        if key in own:
            fields[key] = value
        elif key in SHARED_KEYS:
            shared[key] = value
        elif key in TOP_KEYS and (key != "preset" or verb.presets):
            top[key] = value
        else:
            known = [*own, *(k for k in SHARED_KEYS if k not in own)]
            known += ["preset"] if verb.presets else []
            raise UsageError(
                f"--config {where.file}: unknown key {key!r}; known keys: {', '.join(known)}"
            )
    return fields, shared, top


def resolve(verb: Verb, *, cli: dict | None = None, python: dict | None = None) -> Call:
    fields = {s.name: s for s in specs(verb.config)}
    if cli is not None:
        given = {
            k[2:]: parse_cli(fields[k[2:]], v)
            for k, v in cli.items()
            if k.startswith("f_") and v is not None and v != []
        }
        shared_specs = {s.name: s for s in specs(Shared)}
        shared_given = {
            k[2:]: parse_cli(shared_specs[k[2:]], v)
            for k, v in cli.items()
            if k.startswith("s_") and v is not None
        }
        controls = {k[2:]: v for k, v in cli.items() if k.startswith("c_") and v not in (None, [])}
        where = CLI
    else:
        values = dict(python or {})
        given = {k: values.pop(k) for k in list(values) if k in fields}
        shared_given = {k: values.pop(k) for k in list(values) if k in SHARED_KEYS}
        allowed = {"preset", "config", "out", "resume", "run", "runs", "quiet"}
        unknown = [k for k in values if k not in allowed]
        if unknown:
            known = [*fields, *SHARED_KEYS, *sorted(allowed)]
            raise UsageError(f"unknown key {unknown[0]!r}; known keys: {', '.join(known)}")
        controls = {k: v for k, v in values.items() if v is not None}
        if "runs" in controls:
            controls["run"] = controls.pop("runs")
        where = PYTHON
    for key in ("config", "out", "resume", "preset"):
        if key in controls and str(controls[key]).strip() == "":
            raise UsageError(f"--{key} is empty; give a value")
    file_fields, file_shared, top = {}, {}, {}
    if "config" in controls:
        file_where = Where("file", str(controls["config"]))
        file_fields, file_shared, top = _split(verb, read_file(controls["config"]), file_where)
    else:
        file_where = Where("file", "")
    preset = controls.get("preset") or top.get("preset") or verb.default_preset
    if verb.presets:
        if preset not in verb.presets:
            raise UsageError(f"--preset must be one of {', '.join(verb.presets)}; got {preset!r}")
        base = {**default_base(verb.config), **base_values(verb.presets[preset])}
    else:
        base = default_base(verb.config)
    cfg = build(verb.config, base, [(file_fields, file_where), (given, where)])
    shared_fields = [k for k in SHARED_KEYS if k not in fields]
    for key in list(shared_given) + list(file_shared):
        if key in fields:  # cannot happen from the CLI (no such option) but can from Python
            raise UsageError(f"{key} is a field of {verb.command}; set it as such")
    shared = build(
        Shared,
        base_values(Shared()),
        [(file_shared, file_where), ({k: shared_given[k] for k in shared_given}, where)],
    )
    del shared_fields
    runs = controls.get("run", top.get("run", top.get("runs")))
    if runs is None:
        runs = []
    elif isinstance(runs, (str, Path)):
        runs = [runs]
    runs = [str(r) for r in runs]
    if any(not r.strip() for r in runs):
        raise UsageError("RUN is empty; give a run folder")
    if verb.run in ("read", "read?") and len(runs) > 1:
        raise UsageError(f"{verb.command} takes one RUN; got {len(runs)}")
    if verb.check is not None:
        verb.check(cfg)
    if verb.run in ("read", "read+") and not runs:  # after the options: they are checked first
        raise UsageError(f"missing RUN: give a run folder written by `mltk {verb.plugin} train`")
    cfg = check_files(cfg)
    other = [f"--{k}" for k in ("seed",) if k in shared_given or k in file_shared]
    other += [f"--{k}" for k in ("preset", "out") if k in controls]
    return Call(
        verb=verb,
        config=cfg,
        shared=shared,
        preset=preset if verb.presets else None,
        runs=runs,
        out=controls.get("out"),
        resume=controls.get("resume"),
        json=bool(controls.get("json")),
        quiet=bool(controls.get("quiet")),
        print_config=bool(controls.get("print_config")),
        given={**file_fields, **given},
        given_other=other,
    )


def config_toml(call: Call) -> str:
    """The resolved configuration as TOML that `--config` reads back."""
    verb = call.verb
    own = {s.name for s in specs(verb.config)}
    top: dict[str, Any] = {}
    if call.preset:
        top["preset"] = call.preset
    if call.runs:
        many = verb.run in ("read+", "read*")
        top["runs" if many else "run"] = call.runs if many else call.runs[0]
    shared = {k: v for k, v in to_dict(call.shared).items() if k not in own}
    header = (
        f"{verb.command}: resolved configuration (mltk {__version__})\n"
        f"run it with: {verb.command} --config FILE"
    )
    return to_toml(
        [(None, top), ("shared options", shared), ("options", to_dict(call.config))], header
    )


# -- running ----------------------------------------------------------------------------------


def call_cli(verb: Verb, kw: dict[str, Any]) -> None:
    call = resolve(verb, cli=kw)
    if call.print_config:
        sys.stdout.write(config_toml(call))
        sys.stdout.flush()
        return
    execute(call)


def call_python(verb: Verb, cfg: Any, values: dict[str, Any]) -> dict[str, Any]:
    """What `--json` prints, as a dict; errors are raised (mltk.errors types)."""
    if cfg is not None:
        if not isinstance(cfg, verb.config):
            raise UsageError(
                f"{verb.command} takes a {verb.config.__name__}, not {type(cfg).__name__}"
            )
        values = {**to_dict(cfg), **values}
        values.setdefault("preset", verb.default_preset) if verb.presets else None
    call = resolve(verb, python=values)
    return execute(call, python=True)


def run_verb(plugin: str, verb: str, values: dict[str, Any]) -> dict[str, Any]:
    """`mltk.run("tensor", "complete", observed=0.2)`: the verb found by name among the plugins."""
    from mltk.plugins import discover
    from mltk.verbs import Plugin

    registry = discover(warn=False)
    cmd = registry.commands.get(plugin)
    if cmd is None:
        names = ", ".join(sorted(registry.commands)) or "none"
        raise UsageError(f"no plugin {plugin!r}; installed plugins: {names}")
    if not isinstance(cmd.app, Plugin):
        raise UsageError(f"plugin {plugin!r} does not declare its verbs with mltk.verbs")
    verbs = {alias: v for v in cmd.app.verbs.values() for alias in (v.name, *v.aliases)}
    if verb not in verbs:
        raise UsageError(f"mltk {plugin} has no verb {verb!r}; its verbs: {', '.join(verbs)}")
    return call_python(verbs[verb], None, values)


def execute(call: Call, *, python: bool = False) -> dict[str, Any] | None:
    from mltk.output import SCHEMA_VERSION, jsonable
    from mltk.runs import RunDir
    from mltk.runtime import setup, third_party_quiet

    verb, cfg, shared = call.verb, call.config, call.shared
    resumed = None
    if call.resume is not None:
        resumed = RunDir.create(verb.plugin, resume=call.resume)
        cfg, shared = _resumed_config(call, resumed)
    own = {s.name for s in specs(verb.config)}
    precision = cfg.precision if "precision" in own else shared.precision
    rt = setup(
        device=shared.device,
        precision=precision,
        seed=shared.seed,
        threads=shared.threads,
        deterministic=shared.deterministic,
        json=call.json and not python,
        quiet=call.quiet,
        distributed=verb.distributed,
        auto_precision="fp32" if "precision" in own else None,
    )
    rt.config, rt.given, rt.preset = cfg, set(call.given), call.preset
    spooled: dict[str, Path] = {}
    try:
        cfg = _spool_stdin(verb, cfg, spooled)
        rt.config = cfg
        record = _record(call, shared)
        record["resolved"] = {"device": str(rt.device), "dtype": str(rt.dtype).split(".")[-1]}
        if resumed is not None:
            rt._run, rt.resumed = resumed, True
        elif verb.run in ("new", "read?"):

            def make_run():
                run = RunDir.create(verb.plugin, out=call.out)
                _adopt_spooled(run, rt, spooled)
                run.write_config({**record, "config": to_dict(rt.config)})
                return run

            rt._make_run = make_run
        if verb.output:

            def make_output():
                out = RunDir.create(verb.plugin, out=call.out, label=verb.name)
                _adopt_spooled(out, rt, spooled)
                sources = [
                    str(Path(str(s.path if hasattr(s, "path") else s)).resolve())
                    for s in rt.sources
                ]
                out.write_config({**record, "config": to_dict(rt.config), "sources": sources})
                return out

            rt._make_output = make_output
        opener = verb.open_run or (lambda path: RunDir.open(path, plugin=verb.plugin))
        rt.sources = [opener(path) for path in call.runs]
        try:
            with third_party_quiet(call.quiet):
                data = verb.body(cfg, rt)
        except EOFError as exc:  # click would report it as an interrupt ("aborted", exit 130)
            raise DataError(
                f"an input file ended early (is it empty or cut short?): {exc}"
            ) from exc
        rt.dist.barrier()
    finally:
        rt.dist.close()
        for path in spooled.values():
            if path.exists() and tempfile.gettempdir() in str(path):
                path.unlink()
    if data is None:
        return None
    if python:
        return {"schema_version": SCHEMA_VERSION, **jsonable(data)}
    rt.out.result(data)
    return data


def _record(call: Call, shared: Shared) -> dict[str, Any]:
    """What config.json holds besides the config: plugin, verb, preset and the shared keys."""
    verb = call.verb
    own = {s.name for s in specs(verb.config)}
    record = {"verb": verb.name, "mltk_version": __version__}
    if call.preset:
        record["preset"] = call.preset
    record.update({k: v for k, v in to_dict(shared).items() if k not in own})
    return record


def _resumed_config(call: Call, run) -> tuple[Any, Shared]:
    """The saved config with the whitelisted fields applied; one warning names what is ignored."""
    verb = call.verb
    saved = run.read_config()
    if saved.get("verb") not in (None, verb.name) and verb.resume is not None:
        pass  # a run folder is resumed by the verb that trains: train and its aliases agree
    cfg = run.saved_config(verb.config)
    allowed = set(verb.resume or ())
    changes = {k: v for k, v in call.given.items() if k in allowed}
    cfg = dataclasses.replace(cfg, **changes)
    if verb.check is not None:
        verb.check(cfg)
    flags = {s.name: s.flag for s in specs(verb.config)}
    ignored = [flags[k] for k in flags if k in call.given and k not in allowed]
    ignored += call.given_other
    if ignored:
        can = ", ".join(flags[k] for k in verb.resume or ()) or "nothing"
        print(
            f"warning: --resume continues {run.path} with its saved configuration; ignoring "
            f"{', '.join(ignored)} (only {can} can change)",
            file=sys.stderr,
            flush=True,
        )
    values = {k: saved[k] for k in SHARED_KEYS if k in saved}
    values.update({k: getattr(call.shared, k) for k in ("device", "precision", "threads")})
    values["deterministic"] = call.shared.deterministic or bool(saved.get("deterministic"))
    shared = build(Shared, base_values(Shared()), [(values, Where("file", str(run.path)))])
    return cfg, shared


def _spool_stdin(verb: Verb, cfg: Any, spooled: dict[str, Path]) -> Any:
    """Options that may be `-` read stdin: its bytes go to a temporary file first (parsers want a
    path, and a run folder keeps a copy so that eval and --resume can read the data again)."""
    changes = {}
    for s in specs(verb.config):
        value = getattr(cfg, s.name)
        if s.meta.get("dash") and s.meta.get("path") != "output" and str(value) == "-":
            suffix = (s.meta.get("suffixes") or (".txt",))[0]
            data = sys.stdin.buffer.read()
            if not data:
                raise DataError(f"{s.flag} -: stdin is empty")
            with tempfile.NamedTemporaryFile(
                suffix=suffix, prefix="mltk-stdin-", delete=False
            ) as fh:
                fh.write(data)
            spooled[s.name] = Path(fh.name)
            changes[s.name] = Path(fh.name) if s.type is Path else fh.name
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _adopt_spooled(folder, rt, spooled: dict[str, Path]) -> None:
    """Copy what was read from stdin into the new folder and record that copy's path."""
    if not spooled or not folder.writable:
        return
    changes = {}
    for name, tmp in spooled.items():
        keep = folder.path / f"stdin-{name}{tmp.suffix}"
        shutil.copyfile(tmp, keep)
        value = getattr(rt.config, name)
        changes[name] = keep.resolve() if isinstance(value, Path) else str(keep.resolve())
        folder.kept_inputs[name] = str(keep.resolve())
    rt.config = dataclasses.replace(rt.config, **changes)
