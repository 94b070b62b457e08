"""`mltk --help` and `mltk <plugin> --help` stay light: no torch, pandas, diffusers, transformers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

HEAVY = ("torch", "pandas", "diffusers", "transformers", "sklearn", "skimage", "matplotlib")

PROBE = textwrap.dedent(
    """
    import json, sys
    from mltk.cli import run
    code = run(sys.argv[1:])
    heavy = [m for m in HEAVY if m in sys.modules]
    print(json.dumps({"code": int(code), "heavy": heavy}), file=sys.stderr)
    """
).replace("HEAVY", repr(HEAVY), 1)


def _probe(args, env):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60
    )
    return json.loads(proc.stderr.strip().splitlines()[-1])


def _builtin_names():
    return sorted(
        ep.name for ep in entry_points(group="mltk") if ep.value.startswith("mltk_plugins.")
    )


def test_root_help_imports_nothing_heavy(cli):
    env = {**cli.env}
    env.pop("MLTK_LOAD_PLUGINS")  # every installed plugin, built-ins included
    result = _probe(["--help"], env)
    assert result == {"code": 0, "heavy": []}


@pytest.mark.parametrize("plugin", ["toy", *_builtin_names()])
def test_plugin_help_imports_nothing_heavy(cli, plugin):
    env = {**cli.env}
    env.pop("MLTK_LOAD_PLUGINS")
    result = _probe([plugin, "--help"], env)
    assert result["heavy"] == [], f"`mltk {plugin} --help` imported {result['heavy']}"
    assert result["code"] == 0


def test_python_dash_m_matches_the_console_script(cli):
    import shutil
    from pathlib import Path

    script = shutil.which("mltk", path=str(Path(sys.executable).parent))
    assert script is not None
    a = subprocess.run([script, "version", "--json"], env=cli.env, capture_output=True, text=True)
    b = cli.sub("version", "--json")
    assert a.returncode == b.code == 0 and json.loads(a.stdout) == b.json()


def test_doctor_reports_versions_devices_cache_and_plugin_health(cli, site):
    from tests.conftest import make_dist

    make_dist(site, "brokenplug", {"broken": "no_such_module_anywhere.plugin"})
    r = cli("doctor", "--json", env={"MLTK_LOAD_PLUGINS": "toy,broken"})
    assert r.code == 0, r.stderr
    d = r.json()
    import torch

    assert (
        d["versions"]["torch"] == torch.__version__.split("+")[0]
        or d["versions"]["torch"] == torch.__version__
    )
    assert "cpu" in d["devices"]
    assert d["cache"]["path"] == cli.env["MLTK_CACHE_DIR"]
    plugins = {p["name"]: p for p in d["plugins"]}
    assert plugins["toy"]["loaded"] and not plugins["broken"]["loaded"]
    assert "ModuleNotFoundError" in plugins["broken"]["error"]
    text = cli("doctor", env={"MLTK_LOAD_PLUGINS": "toy,broken"}).stdout
    assert "broken" in text and "FAILED" in text and "devices: cpu" in text


def _top_level_imports(path) -> set[str]:
    """Modules a file imports at module level (not inside functions)."""
    import ast

    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_t2i_and_vl_import_torch_at_module_top_and_no_plugin_py_imports_them():
    """The core's rule (DESIGN.md, docs/core-api.md): mltk.t2i and mltk.vl may import torch,
    diffusers and transformers at module top; nothing else in mltk/ may, and no plugin.py
    imports mltk.t2i or mltk.vl (they are imported inside command bodies)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    heavy = ("torch", "diffusers", "transformers", "numpy")
    for path in (root / "mltk").rglob("*.py"):
        rel = path.relative_to(root / "mltk").parts
        if rel[0] in ("t2i", "vl"):
            continue
        bad = {m for m in _top_level_imports(path) if m.split(".")[0] in heavy}
        if rel[0] == "data" and rel[-1] != "__init__.py":
            bad -= {"numpy"}  # the data modules are numpy-only, imported inside bodies
        assert not bad, f"mltk/{'/'.join(rel)} imports {bad} at module top"
    for path in (root / "plugins").glob("*/plugin.py"):
        bad = {
            m
            for m in _top_level_imports(path)
            if m.startswith(("mltk.t2i", "mltk.vl", "mltk.data."))
        }
        assert not bad, f"{path} imports {bad}"


def test_help_never_imports_the_heavy_core_libraries(cli):
    code = (
        "import sys; from mltk.cli import run; rc = run(['pixart', '--help']); "
        "rc2 = run(['--help']); "
        "print(sorted(m for m in sys.modules if m.startswith(('mltk.t2i', 'mltk.vl'))))"
    )
    env = {**cli.env}
    env.pop("MLTK_LOAD_PLUGINS")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
