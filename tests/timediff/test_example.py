"""The shipped example runs end to end on the embedded ETTh1, as a CI job would run it."""

from __future__ import annotations

from tests.examples import run_example


def test_etth1_forecast_example_runs_and_checks_its_exit_codes(tmp_path):
    proc = run_example("timediff/etth1_forecast.sh", "timediff", tmp_path, tmp_path / "work")
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


def test_intervals_example_checks_coverage_with_json(tmp_path):
    proc = run_example("timediff/intervals.sh", "timediff", tmp_path, tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "intervals as nominal; forecast from 2018-03-01 00:00:00" in proc.stdout
    assert "90% interval: calibrated holds" in proc.stderr
    assert (tmp_path / "work" / "forecast" / "forecast.png").stat().st_size > 1000
