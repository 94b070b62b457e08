"""The shipped example runs end to end, as a CI job would run it."""

from __future__ import annotations

from tests.examples import run_example


def test_digits_noise_example_runs_and_checks_its_exit_codes(tmp_path):
    proc = run_example("aesam/digits_noise.sh", "aesam", tmp_path, tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "predicted:" in proc.stdout and "ok:" in proc.stderr
    for name in ("train_aesam.json", "train_sam.json", "eval.json", "predict.json"):
        assert (tmp_path / "work" / name).is_file()
