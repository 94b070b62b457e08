"""Plugin discovery through the entry-point group "mltk"."""

from __future__ import annotations

from mltk.plugins import BUILTIN
from tests.conftest import make_dist


def test_third_party_plugin_appears_as_a_command(cli):
    r = cli("toy", "--help")
    assert r.code == 0, r.stderr
    assert "Toy regression" in r.stdout
    listed = cli("plugins", "--json").json()
    names = {p["name"]: p for p in listed["plugins"]}
    assert names["toy"]["commands"] == ["toy"]
    assert names["toy"]["distribution"] == "mltk_testplug"
    assert names["toy"]["version"] == "0.1.0"
    assert names["toy"]["loaded"] is True


def test_broken_plugin_is_a_one_line_warning(cli, site):
    make_dist(site, "brokenplug", {"broken": "no_such_module_anywhere.plugin"})
    r = cli("toy", "--help", env={"MLTK_LOAD_PLUGINS": "toy,broken"})
    assert r.code == 0
    warnings = [line for line in r.stderr.splitlines() if "broken" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: plugin 'broken' skipped")
    assert "Traceback" not in r.stderr


def test_strict_mode_makes_a_broken_plugin_fatal(cli, site):
    make_dist(site, "brokenplug", {"broken": "no_such_module_anywhere.plugin"})
    r = cli("toy", "--help", env={"MLTK_LOAD_PLUGINS": "toy,broken", "MLTK_STRICT_PLUGINS": "1"})
    assert r.code == 1
    assert "plugin 'broken' failed to load" in r.stderr
    assert "Traceback" not in r.stderr


def test_load_plugins_restricts_what_is_loaded(cli):
    r = cli("plugins", "--json", env={"MLTK_LOAD_PLUGINS": "nothing"})
    assert r.json()["plugins"] == []
    r = cli("toy", "--help", env={"MLTK_LOAD_PLUGINS": "nothing"})
    assert r.code == 2
    assert "No such command 'toy'" in r.stderr


def test_duplicate_command_names_are_refused(cli, site, tmp_path):
    pkg = tmp_path / "site" / "dupplug"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import typer\nfrom mltk.hookspecs import hookimpl\napp = typer.Typer()\n"
        "@app.command()\ndef hello():\n    print('dup')\n"
        "@hookimpl\ndef mltk_register_commands(register):\n    register('toy', app)\n"
    )
    make_dist(site, "dupplug", {"zzdup": "dupplug"})
    r = cli("plugins", "--json", env={"MLTK_LOAD_PLUGINS": "toy,zzdup"})
    assert "already registered by plugin 'toy'" in r.stderr
    plugins = {p["name"]: p for p in r.json()["plugins"]}
    assert plugins["zzdup"]["loaded"] is False and plugins["toy"]["commands"] == ["toy"]
    r = cli("toy", "--help", env={"MLTK_LOAD_PLUGINS": "toy,zzdup"})
    assert "Toy regression" in r.stdout


def test_plugin_registered_at_run_time_goes_through_the_same_hooks(capsys, monkeypatch):
    import typer

    from mltk.cli import run
    from mltk.hookspecs import hookimpl

    app = typer.Typer()

    @app.command()
    def greet(name: str) -> None:
        print(f"hello {name}")

    @app.command()
    def other() -> None:
        pass

    class Runtime:
        @hookimpl
        def mltk_register_commands(self, register):
            register("greeter", app, summary="Greets.")

    monkeypatch.setenv("MLTK_LOAD_PLUGINS", "greeter")
    assert run(["greeter", "greet", "ada"], extra_plugins={"greeter": Runtime()}) == 0
    assert capsys.readouterr().out == "hello ada\n"


def test_builtin_plugins_are_declared_as_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="mltk")}
    for plugin in BUILTIN:
        assert names[plugin] == f"mltk_plugins.{plugin.replace('-', '_')}.plugin"


def test_datasets_registered_by_plugins_are_listed_and_loadable(cli):
    r = cli("datasets", "--json")
    rows = {d["name"]: d for d in r.json()["datasets"]}
    assert rows["toy"]["plugin"] == "toy"
    assert rows["toy"]["embedded"] is True
    r = cli("toy", "train", "--steps", "1", "--out", "run1")
    assert r.code == 0, r.stderr
    import subprocess
    import sys

    code = "from mltk.data import load_dataset; d = load_dataset('toy', n=10); print(d['x'].shape)"
    proc = subprocess.run([sys.executable, "-c", code], env=cli.env, capture_output=True, text=True)
    assert proc.stdout.strip() == "(10, 8)", proc.stderr
