"""The shipped example runs end to end, as a CI job would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_digits_noise_example_runs_and_checks_its_exit_codes(tmp_path):
    env = {
        **os.environ,
        "MLTK": f"{sys.executable} -m mltk",
        "PYTHON": sys.executable,
        "MLTK_LOAD_PLUGINS": "aesam",
        "MLTK_CACHE_DIR": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("MLTK_DEBUG", None)
    proc = subprocess.run(
        ["bash", str(ROOT / "examples" / "aesam" / "digits_noise.sh"), str(tmp_path / "work")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "predicted:" in proc.stdout and "ok:" in proc.stderr
    for name in ("train_aesam.json", "train_sam.json", "eval.json", "predict.json"):
        assert (tmp_path / "work" / name).is_file()
