"""The README's third-party plugin example works as printed, and its Quick start names real targets."""

from __future__ import annotations

import re
from pathlib import Path

from mltk.plugins import BUILTIN
from tests.conftest import make_dist

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
DOCUMENTED = BUILTIN


def _section(title: str) -> str:
    return README.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_plugin_example_in_the_readme_works(cli, site):
    section = _section("Writing a plugin")
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 25
    toml = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    name, module = re.search(r'^(\w+) = "(\w+)"$', toml, re.M).groups()
    (site / f"{module}.py").write_text(code)
    make_dist(site, "hello-plugin", {name: module})
    env = {"MLTK_LOAD_PLUGINS": name}
    r = cli("hello", "greet", "ada", "--json", env=env)
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == '{"schema_version": 1, "greeting": "hello ada"}'
    assert r.stdout.strip() in section  # the README shows the real output
    assert cli("hello", "greet", "ada", "--times", "0", env=env).code == 2


def test_quick_start_is_two_make_targets_that_exist():
    quick = _section("Quick start")
    commands = re.search(r"```sh\n(.*?)```", quick, re.S).group(1).strip().splitlines()
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_holds_each_plugin_section_verbatim():
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    for plugin in DOCUMENTED:
        section = (root / "docs" / f"{plugin}.md").read_text().strip()
        assert section in readme, (
            f"README.md is out of date with docs/{plugin}.md: run docs/assemble_readme.py"
        )


def test_the_python_examples_in_the_readme_run_as_printed(tmp_path):
    """Each plugin's example under "From Python" runs as printed (one process, a fresh folder)."""
    import os
    import subprocess
    import sys

    section = README.split("### From Python", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 5
    for plugin in DOCUMENTED:
        assert any(re.search(rf'mltk\.run\(\s*"{plugin}"', b) for b in blocks), plugin
    script = "import torch; torch.set_num_threads(1)\n" + "\n".join(blocks)
    env = {**os.environ, "MLTK_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("MLTK_LOAD_PLUGINS", None)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("test RMSE ") and "forecast.csv" in lines[1]
    assert [ln.split()[0] for ln in lines[2:4]] == ["sam", "aesam"]
    assert lines[4].endswith("grid.png") and lines[5].startswith("[('GFT-1', 3056), ('RFT-1', ")
    assert lines[6].startswith("umls MRR ") and " <- " in lines[6]
    words = lines[7].split()
    assert words[:2] == ["ICR", "with"] and words[3] == "without"
    assert 0 <= float(words[2]) <= float(words[4]) <= 1
    assert lines[8] == "growclip text 2x64, vision 2x64 | zero-shot " + lines[8].split()[-1]
    assert 0 <= float(lines[8].split()[-1]) <= 1
    words = lines[9].split()
    assert words[:2] == ["epic", "match"] and 0 <= float(words[2]) <= 1
    assert words[3:6] == ["|", "least", "consistent:"] and words[6] in "red circle top".split()
    words = lines[10].split()
    assert words[:2] == ["antnet", "['coffee']"] and words[2:5] == ["|", "test", "accuracy"]
    assert 0.4 < float(words[5]) <= 1
    assert lines[11].split()[0] == "lsp"
