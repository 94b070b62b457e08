"""Every option of every verb of every built-in plugin refuses bad values the same way.

For each option, values of each kind that does not fit its declaration (not a number, too
large, negative where it must not be, NaN and infinities, empty, missing, a file where a folder
is wanted and the reverse, binary and empty files, names too long for the file system) must end
in exit 2 or 5 with one sentence on stderr: never exit 1, a traceback, or a silent acceptance
(a case still running after a few seconds is taken as accepted). The cases are generated from
the verbs' declarations, so a new plugin is covered without a line here.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from mltk.plugins import BUILTIN
from mltk.verbs import Shared, specs

LONG = "x" * 5000
TIMEOUT_S = 20


class Accepted(Exception):
    pass


def _alarm(signum, frame):
    raise Accepted(f"still running after {TIMEOUT_S} s: the value was accepted")


@pytest.fixture(scope="module")
def world(tiny_runs):
    return tiny_runs


def _verbs():
    from mltk.plugins import discover
    from mltk.verbs import Plugin

    registry = discover(warn=False)
    for name in BUILTIN:
        plugin = registry.commands[name].app
        assert isinstance(plugin, Plugin)
        yield from plugin.verbs.values()


def _number_cases(spec) -> list[str]:
    meta, kind = spec.meta, spec.item_type if spec.is_list else spec.type
    cases = ["abc", ""]
    cases += ["1.5"] if kind is int else ["nan", "inf", "-inf", "1e400"]
    low = [meta[k] for k in ("min", "above") if meta.get(k) is not None]
    high = [meta[k] for k in ("max", "below") if meta.get(k) is not None]
    if kind is int or high:  # every integer is bounded (by 2**63 at least); so are some floats
        cases.append("99999999999999999999")
    if low and min(low) >= 0:
        cases.append("-1")
    if low:
        cases.append(str(min(low) - (1 if kind is int else 0.5)) if kind is int else "-1e300")
    if high:
        top = max(high)
        cases.append(str(int(top) + 1) if kind is int else repr(float(top) * 2 + 1))
    return cases


def _path_cases(spec, root: Path) -> list[str]:
    kind = spec.meta.get("path")
    suffix = (spec.meta.get("suffixes") or (".npy",))[0]
    if kind == "output":
        return [str(root / "folder"), str(root / "nowhere" / f"x{suffix}"), LONG]
    cases = [str(root / f"missing{suffix}"), LONG]
    if kind == "dir":
        return cases + [str(root / f"binary{suffix}"), str(root / "empty-folder")]
    return cases + [str(root / f"binary{suffix}"), str(root / f"empty{suffix}"),
                    str(root / "folder")]  # fmt: skip


def cases_for(verb, world) -> list[tuple[str, list[str]]]:
    """(label, extra arguments) for every bad value of every option of `verb`."""
    root = world["root"]
    own = {s.name for s in specs(verb.config)}
    out = []
    fields = [s for s in specs(verb.config) if not s.positional]
    fields += [s for s in specs(Shared) if s.name not in own]
    for spec in fields:
        flag = spec.flag
        if spec.type is bool:
            continue
        kind = spec.item_type if spec.is_list else spec.type
        values: list[str] = []
        if kind in (int, float):
            values = _number_cases(spec)
            if spec.is_list:
                values = ["", "1,x"]
        elif spec.choices:
            values = ["not-a-choice", ""]
        elif spec.meta.get("path"):
            values = _path_cases(spec, root)
        elif spec.meta.get("dash"):  # a name or a file (--data)
            suffix = spec.meta.get("suffixes", (".csv",))[0]
            values = ["", str(root / f"missing{suffix}"), str(root / f"binary{suffix}"),
                      str(root / f"empty{suffix}"), str(root / "folder"), LONG]  # fmt: skip
        elif not spec.meta.get("allow_empty"):
            values = [""]
        if spec.name == "device":
            values = ["tpu", "", "cuda:x"]
        out += [(f"{flag} {v[:40]!r}", [flag, v]) for v in values]
        out.append((f"{flag} without a value", [flag]))
    out += [("--config binary", ["--config", str(root / "binary.toml")])]
    out += [("--config folder", ["--config", str(root / "folder")])]
    out += [("--config missing", ["--config", str(root / "missing.toml")])]
    out += [("--config too long", ["--config", LONG])]
    if verb.presets:
        out += [("--preset unknown", ["--preset", "nope"]), ("--preset empty", ["--preset", ""])]
    if verb.run == "new" or verb.output:
        out += [
            ("--out a file", ["--out", str(root / "binary.csv")]),
            ("--out long", ["--out", LONG]),
        ]
    if verb.resume is not None:
        for label, value in (("missing", root / "missing"), ("file", root / "binary.csv"),
                             ("empty folder", root / "empty-folder"), ("long", LONG)):  # fmt: skip
            out.append((f"--resume {label}", ["--resume", str(value)]))
    return out


def run_cases(verb, world) -> list[str]:
    """Every case of one verb; returns the failures (case, exit code, stderr)."""
    from mltk.cli import command_for, run

    command = command_for([verb.plugin])
    runs = world["runs"]
    head = [verb.plugin, verb.name]
    if verb.run in ("read", "read+", "read*"):
        head.append(runs[verb.plugin])
    head += world["positional"].get((verb.plugin, verb.name), [])
    base = head + world["fast"].get((verb.plugin, verb.name), [])
    cases = cases_for(verb, world)
    if verb.run in ("read", "read+", "read*"):
        root = world["root"]
        for label, value in (("missing", root / "missing"), ("file", root / "binary.csv"),
                             ("empty folder", root / "empty-folder"), ("long", LONG), ("empty", "")):  # fmt: skip
            bad_head = [verb.plugin, verb.name, str(value)]
            bad_head += world["positional"].get((verb.plugin, verb.name), [])
            cases.append(
                (f"RUN {label}", bad_head + world["fast"].get((verb.plugin, verb.name), []))
            )
    failures = []
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for label, extra in cases:
            own_head = extra[:2] == [verb.plugin, verb.name]
            args, extra = (extra, []) if own_head else (list(base), extra)
            out_dir = world["root"] / "outs" / f"{verb.plugin}-{verb.name}-{len(failures)}"
            if (verb.run == "new" or verb.output) and "--out" not in extra:
                args += ["--out", str(out_dir)]  # before the case: its option may lack a value
            args += extra
            signal.alarm(TIMEOUT_S)
            try:
                code, stdout, stderr = _call(run, command, args)
            except Accepted as exc:
                failures.append(f"{verb.command} {label}: {exc}")
                continue
            finally:
                signal.alarm(0)
            errors = [ln for ln in stderr.splitlines() if ln.startswith("mltk: error:")]
            ok = (code in (2, 5) and stdout == "" and len(errors) == 1
                  and stderr.rstrip().endswith(errors[0]) and "Traceback" not in stderr)  # fmt: skip
            if not ok:
                failures.append(f"{verb.command} {label}: exit {code}, stderr {stderr[-300:]!r}")
    finally:
        signal.signal(signal.SIGALRM, old)
    return failures


def _call(run, command, args):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(args, command=command)
    return int(code), out.getvalue(), err.getvalue()


@pytest.mark.parametrize("plugin", BUILTIN)
def test_every_bad_value_of_every_option_is_exit_2_or_5_with_one_sentence(plugin, world):
    import torch

    torch.set_num_threads(1)
    failures = []
    count = 0
    for verb in _verbs():
        if verb.plugin == plugin:
            failures += run_cases(verb, world)
            count += len(cases_for(verb, world))
    assert count > 50, count
    assert not failures, f"{len(failures)} of {count} cases:\n" + "\n".join(failures)


def test_every_number_option_declares_its_range():
    """Ranges are part of a declaration: a number without bounds must say so (unbounded=True)."""
    missing = []
    for verb in _verbs():
        for spec in specs(verb.config):
            kind = spec.item_type if spec.is_list else spec.type
            if kind in (int, float) and not spec.meta.get("unbounded"):
                if all(spec.meta.get(k) is None for k in ("min", "max", "above", "below")):
                    missing.append(f"{verb.command} {spec.flag}")
    assert not missing, missing
