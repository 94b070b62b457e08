"""`mltk timediff train | eval | forecast` end to end on a small CSV, and the error paths."""

from __future__ import annotations

import csv
import json

import pytest

from .conftest import write_series

TD = {"MLTK_LOAD_PLUGINS": "timediff"}
TINY = ["--preset", "tiny", "--lookback", "24", "--horizon", "12", "--threads", "1"]


@pytest.fixture
def trained(cli, tmp_path):
    data = write_series(tmp_path / "sines.csv")
    run = tmp_path / "run"
    r = cli("timediff", "train", "--data", str(data), *TINY, "--out", str(run), "--json", env=TD)
    assert r.code == 0, r.stderr
    return data, run, r.json()


def test_train_writes_a_complete_run_folder(trained):
    _, run, result = trained
    assert result["schema_version"] == 1 and result["lookback"] == 24
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["plugin"] == "timediff" and cfg["data"]["target"] == ["ch0", "ch1"]
    assert len(cfg["scaler"]["mean"]) == 2
    from mltk.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(run / "checkpoint")
    assert meta["step"] == 1 and "config" in meta
    # the AR-init fit (its layout chosen on validation) and the best weights travel in the
    # checkpoint, the calibration beside it
    layout = cfg["config"]["ar_channels"]
    shape = {"shared": (24, 12), "individual": (2, 24, 12)}[layout]
    assert tuple(tensors["model.ar.weight"].shape) == shape
    assert bool(tensors["extra.best.ar.fitted"])
    assert tuple(tensors["model.prior_var"].shape) == (12, 2)
    assert (run / "calibration.safetensors").is_file()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert lines and "val_loss" in json.loads(lines[-1])


def test_eval_reports_timediff_and_every_baseline_on_the_same_windows(cli, trained):
    _, run, _ = trained
    r = cli("timediff", "eval", str(run), "--dlinear-seeds", "1", "--json", env=TD)
    assert r.code == 0, r.stderr
    out = r.json()
    names = [row["model"] for row in out["results"]]
    assert names == [
        "TimeDiff (calibrated)",
        "TimeDiff (samples)",
        "AR-init + Gaussian",
        "AR-init + conformal",
        "seasonal naive + residuals",
        "linear (closed form)",
        "linear individual",
        "DLinear",
        "DLinear individual",
    ]
    assert out["windows"] == 96 - 12 + 1  # 20% of 480 rows, stride 1, none dropped
    rows = {row["model"]: row for row in out["results"]}
    assert all(row["mse"] > 0 and row["crps"] > 0 for row in rows.values())
    # the sines are daily: seasonal naive with a 24-step season is close to the noise floor
    seasonal = rows["seasonal naive + residuals"]
    assert seasonal["note"].startswith("period 24") and seasonal["mse"] < 0.2
    # a point forecast's CRPS is its MAE; the probabilistic rows have intervals
    assert rows["DLinear"]["crps"] == pytest.approx(rows["DLinear"]["mae"])
    assert rows["TimeDiff (calibrated)"]["width90"] > rows["TimeDiff (calibrated)"]["width50"] > 0
    assert set(out["crps_by_channel"]["AR-init + Gaussian"]) == {"ch0", "ch1"}
    steps = json.loads(open(out["by_step"]).read())
    assert len(steps["TimeDiff (calibrated)"]["coverage90"]) == 12
    assert (run / "eval.png").stat().st_size > 1000


def test_forecast_writes_csv_and_plot_in_original_units(cli, trained, tmp_path):
    data, run, _ = trained
    out = tmp_path / "fc"
    r = cli("timediff", "forecast", str(run), "--out", str(out), "--json", env=TD)
    assert r.code == 0, r.stderr
    res = r.json()
    assert res["first_date"].startswith("2020-01-21 00:00")  # the hour after the last row
    rows = list(csv.DictReader(open(out / "forecast.csv")))
    assert len(rows) == 12 and {"ch0", "ch0_q05", "ch0_q95", "ch1_q50"} <= set(rows[0])
    assert all(float(r["ch0_q05"]) <= float(r["ch0_q95"]) for r in rows)
    # channel 1 sits around 1 in original units (normalised data would sit around 0)
    mean_ch1 = sum(float(r["ch1"]) for r in rows) / len(rows)
    assert 0.3 < mean_ch1 < 1.7
    assert (out / "forecast.png").stat().st_size > 1000
    # a training option given with --run is ignored, and said to be
    r = cli("timediff", "forecast", str(run), "--out", str(out), "--horizon", "48", env=TD)
    assert r.code == 0 and "ignored: --horizon" in r.stderr
    assert len(list(csv.DictReader(open(out / "forecast.csv")))) == 12


def test_forecast_from_a_cutoff_inside_the_data_draws_the_truth(cli, trained, tmp_path):
    _, run, _ = trained
    out = tmp_path / "cut"
    args = ("--cutoff", "2020-01-15 00:00", "--plot-channels", "ch1", "--quantiles", "0.1,0.9")
    r = cli("timediff", "forecast", str(run), "--out", str(out), *args, "--json", env=TD)
    assert r.code == 0, r.stderr
    res = r.json()
    assert res["cutoff"] == 14 * 24 and res["truth_steps"] == 12
    assert res["first_date"] == "2020-01-15 00:00:00" and res["intervals"] == "calibrated"
    rows = list(csv.DictReader(open(out / "forecast.csv")))
    assert {"ch0_q10", "ch0_q90"} <= set(rows[0]) and rows[0]["date"] == "2020-01-15 00:00:00"
    # a row number works too; a cutoff outside the data, or an unknown channel, is exit 2
    r = cli("timediff", "forecast", str(run), "--out", str(out), "--cutoff", "336", env=TD)
    assert r.code == 0, r.stderr
    for bad in (("--cutoff", "2031-01-01"), ("--plot-channels", "nope"), ("--cutoff", "x")):
        r = cli("timediff", "forecast", str(run), "--out", str(out), *bad, env=TD)
        assert r.code == 2 and "Traceback" not in r.stderr, (bad, r.stderr)


def test_predict_is_an_alias_of_forecast(cli, trained, tmp_path):
    _, run, _ = trained
    r = cli("timediff", "predict", str(run), "--out", str(tmp_path / "p"), "--json", env=TD)
    assert r.code == 0 and r.json()["horizon"] == 12


def test_resume_continues_after_the_last_epoch(cli, trained):
    data, run, _ = trained
    r = cli("timediff", "train", "--resume", str(run), "--epochs", "2", "--json", env=TD)
    assert r.code == 0, r.stderr
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_resume_trains_on_the_saved_data_and_keeps_the_saved_model_shape(cli, trained, tmp_path):
    data, run, _ = trained
    # other numbers under the same channel names: refused, not silently trained on
    other = write_series(tmp_path / "other.csv", seed=5)
    r = cli(
        "timediff", "train", "--resume", str(run), "--epochs", "2", "--data", str(other), env=TD
    )
    assert r.code == 5 and "not the series this run was trained on" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # options that shape the model are ignored with a warning; --epochs still applies
    r = cli(
        "timediff", "train", "--resume", str(run), "--epochs", "2", "--horizon", "6", "--json",
        env=TD,
    )  # fmt: skip
    assert r.code == 0, r.stderr
    assert "ignoring --horizon" in r.stderr
    assert r.json()["horizon"] == 12 and r.json()["epochs_run"] == 2


def test_a_checkpoint_trained_on_other_channels_is_a_data_error(cli, trained, tmp_path):
    _, run, _ = trained
    other = write_series(tmp_path / "three.csv", channels=3)
    r = cli("timediff", "eval", str(run), "--data", str(other), env=TD)
    assert r.code == 5
    assert "trained on channels ch0, ch1" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_csv_without_numeric_columns_exits_5(cli, tmp_path):
    bad = tmp_path / "words.csv"
    bad.write_text("date,name\n2020-01-01,x\n2020-01-02,y\n")
    r = cli("timediff", "train", "--data", str(bad), *TINY, env=TD)
    assert r.code == 5 and "no numeric column" in r.stderr


def test_a_horizon_longer_than_the_data_allows_exits_5(cli, series_csv):
    r = cli(
        "timediff",
        "train",
        "--data",
        str(series_csv),
        "--preset",
        "tiny",
        "--lookback",
        "24",
        "--horizon",
        "300",
        env=TD,
    )
    assert r.code == 5 and "--horizon 300" in r.stderr


def test_a_missing_target_column_exits_2(cli, series_csv):
    r = cli("timediff", "train", "--data", str(series_csv), *TINY, "--target", "nope", env=TD)
    assert r.code == 2 and "--target 'nope'" in r.stderr


@pytest.mark.parametrize(
    "option",
    [
        ["--batch-size", "0"],
        ["--lr", "-1"],
        ["--schedule", "foo"],
        ["--sampler", "foo"],
        ["--residual", "foo"],
        ["--early-stop-on", "foo"],
        ["--patience", "-1"],
        ["--samples", "0"],
        ["--lookback", "-1"],
        ["--lr", "inf"],
        ["--sample-steps", "50"],  # more than tiny's 20 diffusion steps
        ["--target", "ch0,ch0"],
        ["--quantiles", ""],
    ],
)
def test_a_bad_option_value_exits_2_with_one_sentence(cli, series_csv, option):
    r = cli("timediff", "train", "--data", str(series_csv), *TINY, *option, env=TD)
    assert r.code == 2, r.stderr
    assert option[0] in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_sampling_options_at_forecast_exit_2(cli, trained, tmp_path):
    _, run, _ = trained
    for option in (["--sampler", "foo"], ["--samples", "0"]):
        r = cli("timediff", "forecast", str(run), "--out", str(tmp_path / "f"), *option, env=TD)
        assert r.code == 2 and option[0] in r.stderr, r.stderr


def test_a_missing_run_folder_exits_5(cli, tmp_path):
    r = cli("timediff", "eval", str(tmp_path / "nothing"), env=TD)
    assert r.code == 5


def test_help_imports_no_torch_or_pandas(cli):
    r = cli.sub("timediff", "--help", env={**TD, "PYTHONWARNINGS": "ignore"})
    assert r.code == 0 and "forecast" in r.stdout
    code = (
        "import sys; from mltk.cli import run; "
        "rc = run(['timediff', 'train', '--help']); "
        "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))"
    )
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", code], env={**cli.env, **TD}, capture_output=True, text=True
    )
    assert proc.stdout.strip().endswith("[]"), proc.stdout + proc.stderr


def test_forecast_without_a_run_trains_one_first(cli, series_csv, tmp_path):
    out = tmp_path / "quick"
    r = cli(
        "timediff",
        "forecast",
        "--data",
        str(series_csv),
        *TINY,
        "--out",
        str(out),
        "--json",
        env=TD,
    )
    assert r.code == 0, r.stderr
    res = r.json()
    assert (out / "config.json").is_file() and (out / "forecast.csv").is_file()
    assert len(res["forecast"]["ch0"]) == 12


def test_quantile_columns_are_named_without_collisions():
    from mltk_plugins.timediff.forecast import parse_quantiles, quantile_name

    qs = parse_quantiles("0.975,0.025,0.5,0.5,0.05")
    assert qs == [0.025, 0.05, 0.5, 0.975]
    assert [quantile_name(q) for q in qs] == ["q2.5", "q05", "q50", "q97.5"]


def test_a_diverging_run_exits_6_with_one_sentence(cli, series_csv, tmp_path):
    r = cli(
        "timediff", "train", "--data", str(series_csv), *TINY, "--lr", "1e30",
        "--out", str(tmp_path / "r"), env=TD,
    )  # fmt: skip
    assert r.code == 6 and r.stdout == ""
    errors = [x for x in r.stderr.splitlines() if x.startswith("mltk: error:")]
    assert len(errors) == 1 and "loss is not finite" in errors[0] and "Traceback" not in r.stderr


def test_a_run_folder_from_before_the_skip_option_loads_as_it_was_trained(cli, tmp_path):
    data = write_series(tmp_path / "sines.csv")
    run = tmp_path / "old"
    first = ("--skip", "none", "--point", "mean", "--ar-channels", "shared", "--no-calibrate")
    r = cli("timediff", "train", "--data", str(data), *TINY, *first, "--out", str(run), env=TD)
    assert r.code == 0, r.stderr
    before = cli("timediff", "eval", str(run), "--no-baselines", "--no-calibrate", "--json", env=TD)
    cfg = json.loads((run / "config.json").read_text())
    for key in ("skip", "point", "ar_channels", "calibrate", "calibration_windows"):
        del cfg["config"][key]  # the first release's config.json had none of these
    (run / "config.json").write_text(json.dumps(cfg))
    after = cli("timediff", "eval", str(run), "--no-baselines", "--no-calibrate", "--json", env=TD)
    assert after.code == 0, after.stderr
    assert after.json()["results"] == before.json()["results"]
    r = cli("timediff", "train", "--resume", str(run), "--epochs", "2", "--json", env=TD)
    assert r.code == 0, r.stderr
