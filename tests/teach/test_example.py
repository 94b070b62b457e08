"""The shipped example runs end to end, as a CI job would run it."""

from __future__ import annotations

from tests.examples import run_example


def test_toy1d_and_chelsea_example_runs_and_checks_its_exit_codes(tmp_path):
    proc = run_example("teach/toy1d_and_chelsea.sh", "teach", tmp_path, tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "toy1d ITD: GFT-1 3056" in proc.stdout and "ok:" in proc.stderr
    for name in ("toy.json", "cat.json", "cat_eval.json", "cat.png"):
        assert (tmp_path / "work" / name).is_file()
