"""The shipped example runs end to end as a CI job would (small image for speed)."""

from __future__ import annotations

import json

from tests.examples import run_example


def test_example_script_runs_and_checks_exit_codes(tmp_path):
    p = run_example("tensor/complete.sh", "tensor", tmp_path, tmp_path / "ex", SIZE="48")
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "ex/complete.json").read_text())
    ev = json.loads((tmp_path / "ex/eval.json").read_text())
    assert ev["rmse"] == res["test_rmse"] or abs(ev["rmse"] - res["test_rmse"]) < 1e-6
    assert (tmp_path / "ex/run/before_after.png").is_file()
    lines = (tmp_path / "ex/values.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].endswith("value")
    assert "matrix completion" in (tmp_path / "ex/error.txt").read_text()
