"""benchmarks/timediff/run_benchmark.py takes the data a user has and writes where it is told."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import write_series

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "timediff" / "run_benchmark.py"


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=cwd)


def test_a_missing_file_or_no_out_folder_is_one_sentence(tmp_path):
    proc = bench("--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2 and "nope.csv does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = bench("--data", "etth1", cwd=tmp_path)
    assert proc.returncode == 2 and "--out DIR is required" in proc.stderr


@pytest.mark.slow
def test_a_csv_runs_end_to_end_into_the_out_folder(tmp_path):
    data = write_series(tmp_path / "load.csv", rows=2400, channels=2)
    out = tmp_path / "results"
    proc = bench(
        "--data", str(data), "--out", str(out), "--seeds", "1", "--dlinear-seeds", "1", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((out / "results_load.json").read_text())
    names = [r["model"] for r in res["rows"]]
    assert names[:3] == ["TimeDiff as shipped", "TimeDiff calibrated", "TimeDiff, raw samples"]
    assert "| TimeDiff calibrated | 1 |" in proc.stdout
