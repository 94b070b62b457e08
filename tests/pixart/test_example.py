"""The shell example runs end to end as a CI job would (JSON results, exit codes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "pixart" / "tiny_end_to_end.sh"


# five `mltk` processes (torch + diffusers imports each): about 40 s on one core
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_tiny_end_to_end_example_runs(tmp_path):
    env = dict(os.environ)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        MLTK_CACHE_DIR=str(tmp_path / "cache"),
        MLTK_LOAD_PLUGINS="pixart",
        OMP_NUM_THREADS="1",
        PIXART_STEPS="4",
    )
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "work")], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "empty prompt file -> exit 5" in proc.stdout
    assert (tmp_path / "work" / "images" / "grid.png").is_file()
    assert (tmp_path / "work" / "shipped" / "000-seed0.png").is_file()
