"""The shipped example runs end to end, as a CI job would run it."""

from __future__ import annotations

from tests.examples import run_example


def test_check_captions_example_runs_and_checks_its_exit_codes(tmp_path):
    proc = run_example("epic/check_captions.sh", "epic", tmp_path, tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "check: least consistent word 'red'" in proc.stdout
    assert "ok:" in proc.stderr
    for name in ("albef.json", "epic.json", "eval.json", "check.json", "predict.json", "bad.err"):
        assert (tmp_path / "work" / name).is_file()
    assert (tmp_path / "work" / "epic" / "model" / "vision" / "config.json").is_file()
