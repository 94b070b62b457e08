"""`mltk timediff`: non-autoregressive diffusion forecasting (TimeDiff, ICML 2023, arXiv:2306.05043).

Imported on every `mltk` call: only the standard library and light core modules at the top;
torch, pandas and the method are imported inside the verbs.
"""

from __future__ import annotations

from mltk.hookspecs import hookimpl
from mltk.verbs import Plugin

from .config import PRESETS, EvalConfig, ForecastConfig, TimeDiffConfig, check

plugin = Plugin(
    "timediff",
    help="Forecast time series with TimeDiff: a conditional diffusion model whose condition "
    "mixes a past-based forecast with the true future in training (future mixup) and adds a "
    "fixed linear forecaster (autoregressive initialisation).",
    summary="Diffusion forecasting of time series (TimeDiff, ICML 2023).",
)


@plugin.verb(
    config=TimeDiffConfig, presets=PRESETS, default_preset="small", run="new", check=check,
    resume=("epochs", "patience", "data", "date_col", "target"), distributed=True,
    examples=["mltk timediff train --preset tiny", "mltk timediff train --data load.csv --horizon 24"],
)  # fmt: skip
def train(cfg: TimeDiffConfig, rt) -> dict:
    """Train TimeDiff; writes config, metrics, checkpoint (with AR-init and scaler) to a run folder.

    --resume may change --epochs and --patience, and point at the data's new location.
    """
    from .commands import run_train

    return run_train(cfg, rt)


@plugin.verb(config=EvalConfig, name="eval", run="read", examples=[
    "mltk timediff eval runs/timediff/20260101-120000",
    "mltk timediff eval RUN --data newer.csv --no-baselines",
])  # fmt: skip
def eval_(cfg: EvalConfig, rt) -> dict:
    """Test-split CRPS, quantile loss, interval coverage and MSE of TimeDiff and the baselines.

    Every model is scored on the same test windows; eval.png in RUN shows CRPS and coverage per
    horizon step.
    """
    from .commands import run_eval

    return run_eval(cfg, rt)


@plugin.verb(
    config=ForecastConfig, presets=PRESETS, default_preset="small", run="read?", output=True,
    check=check, aliases=("predict",), examples=[
        "mltk timediff forecast RUN --quantiles 0.1,0.5,0.9",
        "mltk timediff forecast --preset tiny --data load.csv",
    ],
)  # fmt: skip
def forecast(cfg: ForecastConfig, rt) -> dict:
    """The next H steps after the end of the series: CSV (mean and quantiles) and a PNG plot.

    With RUN, uses that trained model (writing to a new folder); without, trains one first.
    """
    from .commands import run_forecast

    return run_forecast(cfg, rt)


@hookimpl
def mltk_register_commands(register):
    register("timediff", plugin)


@hookimpl
def mltk_register_datasets(register):
    register(
        "etth1",
        loader="mltk_plugins.timediff.data:load_etth1",
        description="ETTh1: hourly electricity-transformer load and oil temperature, 7 channels, 17,420 rows (CC BY-ND 4.0).",
        embedded=True,
    )
    register(
        "etth2",
        loader="mltk_plugins.timediff.data:load_etth2",
        description="ETTh2: a second transformer station, same columns as ETTh1 (CC BY-ND 4.0).",
        embedded=True,
    )
