"""The shipped example runs end to end on the embedded ETTh1, as a CI job would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_etth1_forecast_example_runs_and_checks_its_exit_codes(tmp_path):
    env = {
        **os.environ,
        "MLTK": f"{sys.executable} -m mltk",
        "PYTHON": sys.executable,
        "MLTK_LOAD_PLUGINS": "timediff",
        "MLTK_CACHE_DIR": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("MLTK_DEBUG", None)
    proc = subprocess.run(
        ["bash", str(ROOT / "examples" / "timediff" / "etth1_forecast.sh"), str(tmp_path / "work")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "forecast from 2018-06-26 20:00:00" in proc.stdout and "ok:" in proc.stderr
    for name in (
        "train.json",
        "eval.json",
        "forecast.json",
        "forecast/forecast.csv",
        "forecast/forecast.png",
    ):
        assert (tmp_path / "work" / name).is_file()
