"""The shipped example runs end to end as a CI job would (small image for speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_example_script_runs_and_checks_exit_codes(tmp_path):
    env = {**os.environ, "SIZE": "48", "OMP_NUM_THREADS": "1", "MLTK_LOAD_PLUGINS": "tensor"}
    # the script calls `mltk` and `python` as a user's shell would: this interpreter's first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MLTK_CACHE_DIR"] = str(tmp_path / "cache")
    p = subprocess.run(
        ["bash", str(ROOT / "examples/tensor/complete.sh"), str(tmp_path / "ex")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "ex/complete.json").read_text())
    ev = json.loads((tmp_path / "ex/eval.json").read_text())
    assert ev["rmse"] == res["test_rmse"] or abs(ev["rmse"] - res["test_rmse"]) < 1e-6
    assert (tmp_path / "ex/run/before_after.png").is_file()
    lines = (tmp_path / "ex/values.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].endswith("value")
    assert "matrix completion" in (tmp_path / "ex/error.txt").read_text()
