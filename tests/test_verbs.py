"""Verbs declared once (mltk.verbs): generated options, config round trips, one resume warning,
stdin, and the same result from Python as from `--json`."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest
import tomllib

from mltk.verbs import MISSING, Plugin, specs

ALL = {"MLTK_LOAD_PLUGINS": "toy,tensor,timediff,aesam,pixart"}


def _all_verbs():
    import os

    from mltk.plugins import discover

    saved = os.environ.get("MLTK_LOAD_PLUGINS")
    os.environ["MLTK_LOAD_PLUGINS"] = "tensor,timediff,aesam,pixart"
    try:
        registry = discover(warn=False)
    finally:
        if saved is None:
            os.environ.pop("MLTK_LOAD_PLUGINS")
        else:
            os.environ["MLTK_LOAD_PLUGINS"] = saved
    for cmd in registry.commands.values():
        if isinstance(cmd.app, Plugin):
            yield from cmd.app.verbs.values()


def test_a_plugin_declares_a_config_and_gets_options_choices_ranges_help_and_examples(cli):
    r = cli("toy", "train", "--help")
    assert r.code == 0, r.stderr
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", r.stdout).split())  # the help's words, boxes removed
    assert "--steps INTEGER Training steps (between 1 and 100,000; default: 30)." in text
    assert "--lr NUMBER Learning rate (in (0, 10]; default: 0.05)." in text
    assert (
        "--schedule step|constant Learning-rate schedule (step | constant; default: step)." in text
    )
    assert "--widths A,B,..." in text and "(between 1 and 64; default: 4,2)" in text
    assert "Examples: mltk toy train --steps 10" in text
    for shared in ("--seed", "--device", "--precision", "--threads", "--config",
                   "--print-config", "--out", "--resume", "--json", "--quiet"):  # fmt: skip
        assert shared in text, shared
    assert cli("toy", "train", "-h").code == 0
    bad = {
        ("--schedule", "cosine"): "--schedule must be one of step, constant; got 'cosine'",
        ("--steps", "0"): "--steps 0 must be between 1 and 100,000",
        ("--lr", "0"): "--lr 0.0 must be in (0, 10]",
        ("--widths", "4,x"): "--widths '4,x' must be integers separated by commas, e.g. 1,2,3",
        ("--widths", "4,65"): "--widths 65 must be between 1 and 64",
        ("--steps", "ten"): "--steps 'ten' is not an integer",
    }
    for (flag, value), message in bad.items():
        r = cli("toy", "train", flag, value)
        assert r.code == 2 and r.stderr.strip() == f"mltk: error: {message}", r.stderr


def test_toml_values_pass_the_same_checks_as_the_command_line(cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('schedule = "cosine"\n')
    r = cli("toy", "train", "--config", str(cfg))
    assert r.code == 2 and f"--config {cfg}: schedule = must be one of step, constant" in r.stderr
    cfg.write_text('steps = 0\nseed = 3\ndevice = "cpu"\n')
    r = cli("toy", "train", "--config", str(cfg))
    assert r.code == 2 and "steps = 0 must be between 1 and 100,000" in r.stderr
    cfg.write_text('steps = 3\nseed = 3\ndevice = "cpu"\nthreads = 1\n')  # shared keys too
    r = cli("toy", "train", "--config", str(cfg), "--out", "r", "--json")
    assert r.code == 0, r.stderr
    saved = json.loads((cli.cwd / "r" / "config.json").read_text())
    assert saved["seed"] == 3 and saved["device"] == "cpu" and saved["config"]["steps"] == 3


def _alternative(spec, default):
    """A valid value other than the default (None where there is no simple one)."""
    meta = spec.meta
    if spec.positional or spec.meta.get("path") or spec.is_list or default is MISSING:
        return None
    if spec.type is bool:
        return not default
    if spec.choices:
        return next((c for c in spec.choices if c != default), None)
    if spec.type in (int, float) and default is not None:
        lo = meta.get("min", meta.get("above"))
        hi = meta.get("max", meta.get("below"))
        for candidate in (default + 1, default - 1, default / 2 if spec.type is float else None):
            if candidate is None or candidate == default:
                continue
            if (lo is None or candidate >= lo) and (hi is None or candidate <= hi):
                if meta.get("above") is not None and not candidate > meta["above"]:
                    continue
                if meta.get("below") is not None and not candidate < meta["below"]:
                    continue
                return spec.type(candidate)
    return None


def _required(verb, tiny_runs) -> list[str]:
    args = []
    if verb.run in ("read", "read+", "read*"):
        args.append("some/run")  # --print-config does not open RUN
    args += tiny_runs["positional"].get((verb.plugin, verb.name), [])
    for spec in specs(verb.config):
        if spec.required and spec.positional:
            args.append(str(spec.choices[0]) if spec.choices else "x")
        elif spec.required:
            args += [spec.flag, str(tiny_runs["root"] / "digits.npz")]
    return args


def test_print_config_then_config_gives_the_same_resolved_config_for_every_verb(
    cli, tmp_path, tiny_runs
):
    checked, refused = 0, []
    for verb in [*_all_verbs()]:
        head = [verb.plugin, verb.name, *_required(verb, tiny_runs)]
        defaults = verb.defaults()
        for spec in [None, *specs(verb.config)]:
            extra = []
            if spec is not None:
                value = _alternative(spec, defaults[spec.name])
                if value is None:
                    continue
                if spec.type is bool:
                    flag = spec.meta.get("flag", "--" + spec.name.replace("_", "-"))
                    on, _, off = flag.partition("/")
                    extra = [on] if value else [off or "--no-" + on[2:]]
                else:
                    extra = [spec.flag, str(value)]
            first = cli(*head, *extra, "--seed", "7", "--print-config", env=ALL)
            if first.code != 0:  # a single change that breaks a cross-field rule
                refused.append(f"{verb.command} {' '.join(extra)}: {first.stderr.strip()}")
                continue
            toml = tmp_path / "resolved.toml"
            toml.write_text(first.stdout)
            again = cli(verb.plugin, verb.name, "--config", str(toml), "--print-config", env=ALL)
            assert again.code == 0, again.stderr
            assert again.stdout == first.stdout, f"{verb.command} {extra}"
            parsed = tomllib.loads(first.stdout)
            assert parsed["seed"] == 7
            if spec is not None:
                assert parsed[spec.name] == pytest.approx(value), f"{verb.command} {extra}"
            checked += 1
    assert checked > 150, checked  # every verb once, and once per field with a simple alternative
    assert len(refused) < 0.05 * checked, refused


def test_a_runs_config_json_is_a_config_file(cli):
    r = cli("toy", "train", "--steps", "4", "--lr", "0.01", "--schedule", "constant", "--out",
            "r", "--seed", "5")  # fmt: skip
    assert r.code == 0, r.stderr
    from_run = cli("toy", "train", "--config", "r/config.json", "--print-config")
    direct = cli("toy", "train", "--steps", "4", "--lr", "0.01", "--schedule", "constant",
                 "--seed", "5", "--print-config")  # fmt: skip
    assert from_run.code == 0, from_run.stderr
    assert from_run.stdout == direct.stdout


def test_the_resume_warning_reads_the_same_in_every_plugin(cli, tmp_path, monkeypatch):
    """Options a resumed run cannot change are named in one sentence of one shape."""
    shapes = {}
    for verb in [*_all_verbs()]:
        if verb.resume is None:
            continue
        fixed = next(
            s for s in specs(verb.config)
            if s.type is int and s.name not in verb.resume and s.meta.get("max")
            and verb.defaults()[s.name] is not None
        )  # fmt: skip
        run = tmp_path / f"{verb.plugin}-run"
        (run / "checkpoint").mkdir(parents=True)
        (run / "config.json").write_text(
            json.dumps({"plugin": verb.plugin, "verb": verb.name, "config": {}, "seed": 0})
        )
        monkeypatch.setattr(verb, "body", lambda cfg, rt: {"resumed": rt.resumed})
        value = str(min(verb.defaults()[fixed.name] + 1, fixed.meta["max"]))
        r = cli(verb.plugin, verb.name, "--resume", str(run), fixed.flag, value, "--out", "x",
                "--json", env=ALL)  # fmt: skip
        assert r.code == 0 and r.json()["resumed"] is True, r.stderr
        warning = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
        assert len(warning) == 1, r.stderr
        assert f"ignoring {fixed.flag}, --out (only" in warning[0]
        shape = warning[0].replace(str(run), "RUN").replace(fixed.flag, "FLAG")
        shapes[verb.plugin] = re.sub(r"\(only .* can change\)", "(only ... can change)", shape)
    assert set(shapes) == {"timediff", "aesam", "pixart"}
    assert len(set(shapes.values())) == 1, shapes


def _same_result(a: dict, b: dict, volatile=("seconds", "wall_s", "note")) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if key in volatile:
            continue
        if isinstance(a[key], list) and a[key] and isinstance(a[key][0], dict):
            for x, y in zip(a[key], b[key]):
                _same_result(x, y, volatile)
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize(
    "plugin,verb,values",
    [
        ("tensor", "eval", {}),
        ("timediff", "eval", {"baselines": False}),
        ("aesam", "eval", {}),
        ("pixart", "eval", {"prompts": 2, "steps": 2}),
    ],
)
def test_python_returns_what_json_prints(cli, tiny_runs, plugin, verb, values, monkeypatch):
    import mltk

    run = tiny_runs["runs"][plugin]
    monkeypatch.setenv("MLTK_LOAD_PLUGINS", plugin)
    flags = []
    for k, v in values.items():
        flags += ["--no-baselines"] if v is False else [f"--{k}", str(v)]
    r = cli(plugin, verb, run, *flags, "--json", env={"MLTK_LOAD_PLUGINS": plugin})
    assert r.code == 0, r.stderr
    from_python = mltk.run(plugin, verb, run=run, quiet=True, **values)
    _same_result(r.json(), from_python)
    assert from_python["schema_version"] == 1


def test_a_verb_is_callable_with_its_config_and_raises_errors_as_exceptions(tiny_runs, tmp_path):
    from mltk_plugins.tensor.config import TensorConfig
    from mltk_plugins.tensor.plugin import complete

    import mltk
    from mltk.errors import DataError, UsageError

    cfg = TensorConfig(size=12, path_steps=2, stage_iters=2, max_iter=3)
    result = complete(cfg, out=str(tmp_path / "r"), quiet=True)
    assert result["shape"] == [12, 12, 3] and 0 < result["test_rmse"] < 1
    assert (tmp_path / "r" / "completed.npy").is_file()
    with pytest.raises(UsageError, match="observed = 1.5 must be in"):
        mltk.run("tensor", "complete", observed=1.5)
    with pytest.raises(UsageError, match="unknown key 'epochz'"):
        mltk.run("timediff", "train", epochz=3)
    with pytest.raises(DataError, match="does not exist"):
        mltk.run("tensor", "eval", run=str(tmp_path / "nothing"))


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_dash_reads_stdin_for_csv_data_coordinates_and_prompts(
    cli, tiny_runs, monkeypatch, tmp_path
):
    root = tiny_runs["root"]
    # CSV data: the run keeps a copy, so eval reads the same series later
    _stdin(monkeypatch, (root / "series.csv").read_bytes())
    args = tiny_runs["fast"][("timediff", "train")]
    args = [a if a != str(root / "series.csv") else "-" for a in args]
    r = cli(
        "timediff", "train", *args, "--out", "td", "--json", env={"MLTK_LOAD_PLUGINS": "timediff"}
    )
    assert r.code == 0, r.stderr
    saved = json.loads((cli.cwd / "td" / "config.json").read_text())
    assert saved["config"]["data"].endswith("stdin-data.csv") and saved["data"]["rows"] == 240
    r = cli(
        "timediff", "eval", "td", "--no-baselines", "--json", env={"MLTK_LOAD_PLUGINS": "timediff"}
    )
    assert r.code == 0 and r.json()["windows"] > 0, r.stderr
    # coordinates in, values out: `--output -` writes the CSV to stdout
    _stdin(monkeypatch, b"i,j,k\n0,0,0\n2,3,1\n")
    run = tiny_runs["runs"]["tensor"]
    env = {"MLTK_LOAD_PLUGINS": "tensor"}
    r = cli("tensor", "predict", run, "--coords", "-", "--output", "-", env=env)
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "i0,i1,i2,value" and [ln.split(",")[:3] for ln in lines[1:]] == [
        ["0", "0", "0"], ["2", "3", "1"],
    ]  # fmt: skip
    _stdin(monkeypatch, b"i,j,k\n0,0,0\n2,3,1\n")
    values = cli("tensor", "predict", run, "--coords", "-", "--json", env=env).json()["values"]
    assert [float(ln.split(",")[3]) for ln in lines[1:]] == pytest.approx(values)
    # prompts
    _stdin(monkeypatch, b"a red circle\ntwo blue squares\n")
    r = cli("pixart", "generate", "tiny", "--prompts-file", "-", "--steps", "2", "--out", "g",
            "--json", env={"MLTK_LOAD_PLUGINS": "pixart"})  # fmt: skip
    assert r.code == 0, r.stderr
    assert [i["prompt"] for i in r.json()["images"]] == ["a red circle", "two blue squares"]
    _stdin(monkeypatch, b"")
    r = cli(
        "pixart", "generate", "tiny", "--prompts-file", "-", env={"MLTK_LOAD_PLUGINS": "pixart"}
    )
    assert r.code == 5 and "stdin is empty" in r.stderr


def test_outputs_of_predict_like_verbs_go_to_a_new_folder(cli, tiny_runs):
    env = {"MLTK_LOAD_PLUGINS": "timediff"}
    run = tiny_runs["runs"]["timediff"]
    first = cli("timediff", "forecast", run, "--json", env=env)
    second = cli("timediff", "forecast", run, "--json", env=env)
    assert first.code == 0 and second.code == 0, first.stderr + second.stderr
    a, b = first.json()["csv"], second.json()["csv"]
    assert a != b and "forecast" in a  # never the same file twice
    from pathlib import Path

    folder = cli.cwd / Path(a).parent
    saved = json.loads((folder / "config.json").read_text())
    assert saved["verb"] == "forecast" and saved["sources"] == [str(Path(run).resolve())]


def test_version_and_short_help(cli):
    from mltk import __version__

    r = cli("--version")
    assert r.code == 0 and r.stdout.strip() == f"mltk {__version__}"
    assert cli("-h").code == 0 and "Usage" in cli("-h").stdout


def test_quiet_silences_third_party_progress_bars_only_while_a_verb_runs():
    import tqdm

    from mltk.runtime import third_party_quiet

    def bar_text() -> str:
        buf = io.StringIO()
        for _ in tqdm.tqdm(range(3), file=buf):
            pass
        return buf.getvalue()

    with third_party_quiet(True):
        assert bar_text() == ""
        import os

        assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert "3/3" in bar_text()  # restored afterwards (a notebook keeps its bars)
