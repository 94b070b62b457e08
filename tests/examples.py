"""Runs a shipped example script the way a user's shell or a CI job would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(script: str, plugin: str, tmp_path: Path, workdir: Path, **env: str):
    """``bash examples/<script> <workdir>`` with this interpreter's `mltk` and `python` first on
    PATH (also as $MLTK / $PYTHON), only ``plugin`` loaded, a private cache and one thread."""
    full = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "MLTK": f"{sys.executable} -m mltk",
        "PYTHON": sys.executable,
        "MLTK_LOAD_PLUGINS": plugin,
        "MLTK_CACHE_DIR": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
        **env,
    }
    full.pop("MLTK_DEBUG", None)
    return subprocess.run(["bash", str(ROOT / "examples" / script), str(workdir)], env=full,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
