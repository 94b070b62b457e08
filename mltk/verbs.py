"""How a plugin declares its verbs: a config dataclass plus a body.

    plugin = Plugin("hello", help="Say hello.")

    @dataclass
    class Greet:
        name: str = option(help="Who to greet.", positional=True)
        times: int = option(1, "How many times.", min=1, max=100)

    @plugin.verb(config=Greet)
    def greet(cfg, rt):
        return {"greeting": " ".join([f"hello {cfg.name}"] * cfg.times)}

The core turns each field into a command-line option (flag, help, choices from `Literal`, range
and path checks from `option(...)`), adds the shared options, merges preset < TOML < command
line, validates once, sets the runtime up (device, precision, seed, threads, DDP) and calls the
body, whose returned dict is the command's result (`--json` prints it). Nothing here imports
torch: `mltk --help` builds every option list from these declarations.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

COMMON = "Common options"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
Precision = Literal["auto", "fp32", "bf16", "fp16"]


def option(
    default: Any = MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    short: str | None = None,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    below: float | None = None,
    unbounded: bool = False,
    path: str | None = None,
    suffixes: Sequence[str] = (),
    dash: bool = False,
    positional: bool = False,
    allow_empty: bool = False,
    panel: str | None = None,
) -> Any:
    """A config field with what the command line needs to know about it.

    `flag` where it differs from `--field-name` (`"--x/--no-x"` for a boolean's two spellings);
    `min`/`max` (inclusive) and `above`/`below` (exclusive) bound a number (`unbounded=True`
    says a number has no bounds on purpose); `path` is "file", "dir", "exists" or "output" (a
    file to write; `suffixes` are the formats written) and `dash=True` lets `-` mean stdin (or
    stdout for an output); `positional` makes it an argument instead of an option.
    """
    meta = {
        "help": help,
        "flag": flag,
        "short": short,
        "min": min,
        "max": max,
        "above": above,
        "below": below,
        "unbounded": unbounded or None,
        "path": path,
        "suffixes": tuple(suffixes) or None,
        "dash": dash or None,
        "positional": positional or None,
        "allow_empty": allow_empty or None,
        "panel": panel,
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    if isinstance(default, list):
        default = tuple(default)
    return field(default=default, metadata=meta)


def overrides(cls: type, names: Sequence[str], *, note: str = "default: the run's") -> type:
    """A dataclass of `cls`'s fields `names`, each optional (None: keep the run's value), with
    their help, ranges and choices: the options a verb that reads a run may change of it."""
    fields = []
    for spec in specs(cls):
        if spec.name in names:
            meta = {**spec.meta, "help": f"{spec.meta.get('help', '').rstrip('.')} ({note})."}
            tp = spec.type if spec.type is not Path else Path
            fields.append((spec.name, Optional[tp], field(default=None, metadata=meta)))
    return dataclasses.make_dataclass(f"{cls.__name__}Overrides", fields)


@dataclass
class Shared:
    """The keys every verb shares, spelled the same everywhere (also in TOML and config.json)."""

    seed: int = option(0, "Seed for python, numpy and torch.", min=0, panel=COMMON)
    device: str = option(
        "auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.", panel=COMMON
    )
    precision: Precision = option(
        "auto", "auto: bf16 on a GPU that supports it, else fp32.", panel=COMMON
    )
    threads: Optional[int] = option(
        None, "CPU threads for torch (default: torch's choice).", min=1, max=4096, panel=COMMON
    )
    deterministic: bool = option(
        False, "Use deterministic kernels (slower).", flag="--deterministic", panel=COMMON
    )


SHARED_KEYS = tuple(f.name for f in dataclasses.fields(Shared))


@dataclass
class Verb:
    """One command of a plugin (see `Plugin.verb`)."""

    plugin: str
    name: str
    body: Callable[[Any, Any], dict]
    config: type
    presets: dict[str, Any] | None = None
    default_preset: str | None = None
    run: str | None = None  # "new" | "read" | "read?" | "read+" | "read*": its run folders
    output: bool = False  # writes its files to a new output folder (--out)
    resume: tuple[str, ...] | None = None  # fields a resumed run may change; None: no --resume
    distributed: bool = False
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    check: Callable[[Any], None] | None = None  # cross-field validation, run before the body
    open_run: Callable[[Any], Any] | None = None  # how RUN is opened (default: an mltk run folder)
    help: str = ""

    @property
    def command(self) -> str:
        return f"mltk {self.plugin} {self.name}"

    def defaults(self) -> dict[str, Any]:
        """Each field's value in the default preset (MISSING for a required field)."""
        values = {s.name: s.default for s in specs(self.config)}
        if self.presets:  # a preset may be an instance of a base class of the verb's config
            cfg = self.presets[self.default_preset]
            values.update({f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)})
        return values

    def __call__(self, cfg: Any = None, /, **values: Any) -> dict:
        """Run the verb from Python: a config instance, or values by field name (see mltk.run)."""
        from mltk.lifecycle import call_python

        return call_python(self, cfg, values)


class Plugin:
    """A plugin's verbs. `register(name, plugin)` in `mltk_register_commands` adds them."""

    def __init__(self, name: str, *, help: str = "", summary: str = "") -> None:
        self.name = name
        self.help = help
        self.summary = summary
        self.verbs: dict[str, Verb] = {}

    def verb(
        self,
        *,
        config: type,
        name: str | None = None,
        presets: dict[str, Any] | None = None,
        default_preset: str | None = None,
        run: str | None = None,
        output: bool = False,
        resume: Sequence[str] | None = None,
        distributed: bool = False,
        examples: Sequence[str] = (),
        aliases: Sequence[str] = (),
        check: Callable[[Any], None] | None = None,
        open_run: Callable[[Any], Any] | None = None,
    ) -> Callable[[Callable], Verb]:
        """Declare `body(cfg, rt) -> dict` as the verb `name` (default: the function's name)."""
        if run not in (None, "new", "read", "read?", "read+", "read*"):
            raise ValueError(f"run must be new, read, read?, read+ or read*; got {run!r}")

        def decorate(body: Callable) -> Verb:
            verb = Verb(
                plugin=self.name,
                name=name or body.__name__.rstrip("_").replace("_", "-"),
                body=body,
                config=config,
                presets=presets,
                default_preset=default_preset or (next(iter(presets)) if presets else None),
                run=run,
                output=output,
                resume=tuple(resume) if resume is not None else None,
                distributed=distributed,
                examples=tuple(examples),
                aliases=tuple(aliases),
                check=check,
                open_run=open_run,
                help=_reflow(inspect.cleandoc(body.__doc__ or "")),
            )
            self.verbs[verb.name] = verb
            return verb

        return decorate

    def typer_app(self):
        """The Typer group `mltk <plugin> ...` with one command per verb (and alias)."""
        import typer

        app = typer.Typer(
            help=self.help,
            no_args_is_help=True,
            context_settings={"help_option_names": ["-h", "--help"]},
        )
        for verb in self.verbs.values():
            callback = _callback(verb)
            epilog = None
            if verb.examples:
                epilog = "Examples:\n\n" + "\n\n".join(f"  {e}" for e in verb.examples)
            app.command(verb.name, help=verb.help, epilog=epilog)(callback)
            for alias in verb.aliases:
                app.command(alias, help=f"Alias of `{verb.name}`. {verb.help}", epilog=epilog)(
                    callback
                )
        return app


def _reflow(text: str) -> str:
    """A docstring's paragraphs as single lines (the help renderer wraps them itself)."""
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


# -- fields as command-line parameters --------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What the core knows of one config field."""

    name: str
    type: Any  # the annotation, Optional[...] stripped
    optional: bool
    default: Any
    meta: dict

    @property
    def flag(self) -> str:
        f = self.meta.get("flag") or "--" + self.name.replace("_", "-")
        return f.split("/")[0]

    @property
    def choices(self) -> tuple | None:
        """The allowed values (of each item, for a list) when the type is a Literal."""
        tp = self.item_type if self.is_list else self.type
        if typing.get_origin(tp) is Literal:
            return typing.get_args(tp)
        return None

    @property
    def is_list(self) -> bool:
        return typing.get_origin(self.type) in (tuple, list)

    @property
    def item_type(self) -> Any:
        args = [a for a in typing.get_args(self.type) if a is not Ellipsis]
        return args[0] if args else str

    @property
    def positional(self) -> bool:
        return bool(self.meta.get("positional"))

    @property
    def required(self) -> bool:
        return self.default is MISSING


def specs(cls: type) -> list[Spec]:
    """The fields of a config dataclass as Specs (annotations resolved)."""
    cached = _SPECS.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp, optional = _strip_optional(hints[f.name])
        default = f.default
        if default is MISSING and f.default_factory is not MISSING:
            default = f.default_factory()
        out.append(Spec(f.name, tp, optional, default, dict(f.metadata)))
    _SPECS[cls] = out
    return out


_SPECS: dict[type, list[Spec]] = {}


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(rest) < len(args):
            return rest[0], True
    return tp, False


def range_text(meta: dict) -> str:
    """'at least 1', 'in [0, 1)', 'positive', ... from a field's bounds ('' when it has none)."""
    lo, hi = meta.get("min"), meta.get("max")
    above, below = meta.get("above"), meta.get("below")
    if lo is not None and hi is not None:
        return f"between {_num(lo)} and {_num(hi)}"
    if (lo is not None or above is not None) and (hi is not None or below is not None):
        left = f"[{_num(lo)}" if lo is not None else f"({_num(above)}"
        right = f"{_num(hi)}]" if hi is not None else f"{_num(below)})"
        return f"in {left}, {right}"
    if lo is not None:
        return f"at least {_num(lo)}"
    if above is not None:
        return "positive" if above == 0 else f"greater than {_num(above)}"
    if hi is not None:
        return f"at most {_num(hi)}"
    if below is not None:
        return f"less than {_num(below)}"
    return ""


def _num(x: float) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        x = int(x)
    if abs(x) >= 10**7:  # a bound that only keeps out typos: 1e9, not 1,000,000,000
        mantissa, exponent = f"{x:.3e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return f"{x:,}" if isinstance(x, int) and abs(x) >= 100_000 else str(x)


def show_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def _help(spec: Spec, default: Any) -> str:
    parts = []
    if spec.choices:
        parts.append(" | ".join(str(c) for c in spec.choices))
    bounds = range_text(spec.meta)
    if bounds:
        parts.append(bounds)
    if spec.meta.get("path") == "output" and spec.meta.get("suffixes"):
        parts.append(" or ".join(spec.meta["suffixes"]))
    if spec.meta.get("dash"):
        parts.append("- for " + ("stdout" if spec.meta.get("path") == "output" else "stdin"))
    if default is not MISSING and default is not None and spec.type is not bool:
        if not (isinstance(default, (str, tuple)) and not default):
            parts.append(f"default: {show_value(default)}")
    text = spec.meta.get("help", "")
    if not parts:
        return text
    stop = "." if text.endswith(".") else ""
    return f"{text.rstrip('.')} ({'; '.join(parts)}){stop}"


def _cli_type(spec: Spec) -> Any:
    if spec.type is bool:
        return Optional[bool]
    return Optional[str]  # numbers, paths, choices and lists: parsed and checked by the core


def _param(spec: Spec, default: Any, name: str) -> inspect.Parameter:
    import typer

    help_text = _help(spec, default)
    panel = spec.meta.get("panel")
    if spec.positional:
        metavar = spec.name.upper()
        if spec.is_list:
            info = typer.Argument(
                None, help=help_text, metavar=f"[{metavar}]...", show_default=False
            )
            tp = Optional[list[str]]
        else:
            shown = metavar if spec.required else f"[{metavar}]"
            info = typer.Argument(None, help=help_text, metavar=shown, show_default=False)
            tp = _cli_type(spec)
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=tp)
    flag = spec.meta.get("flag") or "--" + spec.name.replace("_", "-")
    decls = [flag]
    if spec.type is bool and "flag" not in spec.meta:
        decls = [f"{flag}/--no-{flag[2:]}"]
    if spec.meta.get("short"):
        decls.append(spec.meta["short"])
    choices = [str(c) for c in spec.choices or ()]
    info = typer.Option(
        None, *decls, help=help_text, show_default=False, rich_help_panel=panel,
        metavar=None if spec.type is bool else _metavar(spec),
        autocompletion=(lambda: choices) if choices and not spec.is_list else None,
    )  # fmt: skip
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=_cli_type(spec)
    )


def _metavar(spec: Spec) -> str:
    if spec.choices:
        shown = "|".join(str(c) for c in spec.choices)
        return shown if len(shown) <= 14 else "CHOICE"
    if spec.meta.get("path") or spec.type is Path:
        return "PATH"
    if spec.is_list:
        return "A,B,..."
    return {int: "INTEGER", float: "NUMBER"}.get(spec.type, "TEXT")


# the options that are not config keys: where the config comes from and where results go
CONTROLS = ("config", "print_config", "preset", "out", "resume", "json", "quiet")


def _controls(verb: Verb) -> list[inspect.Parameter]:
    import typer

    def opt(name, tp, *decls, help, metavar=None):
        info = typer.Option(None, *decls, help=help, show_default=False, rich_help_panel=COMMON,
                            metavar=metavar)  # fmt: skip
        return inspect.Parameter(f"c_{name}", inspect.Parameter.KEYWORD_ONLY, default=info,
                                 annotation=tp)  # fmt: skip

    params = []
    if verb.presets:
        names = " | ".join(verb.presets)
        params.append(opt("preset", Optional[str], "--preset", metavar="NAME",
                          help=f"Start from a named configuration ({names}; default: "
                          f"{verb.default_preset})."))  # fmt: skip
    params.append(opt("config", Optional[str], "--config", metavar="FILE",
                      help="TOML file (or a run's config.json) of values; the command line wins."))  # fmt: skip
    params.append(opt("print_config", Optional[bool], "--print-config",
                      help="Print the resolved configuration as TOML and exit."))  # fmt: skip
    if verb.run == "new" or verb.output:
        params.append(opt("out", Optional[str], "--out", metavar="DIR",
                          help=f"Output folder (default: runs/{verb.plugin}/<timestamp>"
                          f"{'' if verb.run == 'new' else '-' + verb.name})."))  # fmt: skip
    elif verb.run == "read?":
        params.append(
            opt(
                "out",
                Optional[str],
                "--out",
                metavar="DIR",
                help="Where the model trained without RUN goes (default: "
                f"runs/{verb.plugin}/<timestamp>).",
            )
        )
    if verb.resume is not None:
        params.append(opt("resume", Optional[str], "--resume", metavar="DIR",
                          help="Continue the interrupted run in this folder."))  # fmt: skip
    params.append(opt("json", Optional[bool], "--json",
                      help="Print exactly one JSON object on stdout."))  # fmt: skip
    params.append(opt("quiet", Optional[bool], "--quiet", "-q",
                      help="No logs or progress on stderr."))  # fmt: skip
    return params


def _run_param(verb: Verb) -> list[inspect.Parameter]:
    import typer

    if verb.run not in ("read", "read?", "read+", "read*"):
        return []
    many = verb.run in ("read+", "read*")
    help_text = "Run folder" + ("s" if many else "") + f" written by `mltk {verb.plugin} train`."
    if verb.run == "read?":
        help_text += " Without one, a model is trained first."
    metavar = {"read+": "RUN...", "read*": "[RUN]...", "read?": "[RUN]"}.get(verb.run, "RUN")
    info = typer.Argument(None, help=help_text, metavar=metavar, show_default=False)
    tp = Optional[list[str]] if many else Optional[str]
    return [inspect.Parameter("c_run", inspect.Parameter.KEYWORD_ONLY, default=info, annotation=tp)]


def _callback(verb: Verb) -> Callable:
    fields = specs(verb.config)
    own = {s.name for s in fields}
    base = verb.defaults()
    params = _run_param(verb)
    for s in sorted(fields, key=lambda s: not s.positional):
        params.append(_param(s, base[s.name], f"f_{s.name}"))
    shared_defaults = Shared()
    for s in specs(Shared):
        if s.name not in own:  # a verb may declare a shared key itself (its own choices)
            params.append(_param(s, getattr(shared_defaults, s.name), f"s_{s.name}"))
    params += _controls(verb)

    def callback(**kw: Any) -> None:
        from mltk.lifecycle import call_cli

        call_cli(verb, kw)

    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__name__ = verb.name.replace("-", "_")
    callback.__doc__ = verb.help
    return callback
