"""`mltk timediff`: non-autoregressive diffusion forecasting (TimeDiff, ICML 2023, arXiv:2306.05043).

Imported on every `mltk` call: only the standard library, typer and light core modules at the
top; torch, pandas and the method are imported inside the commands.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from mltk import options as o
from mltk.hookspecs import hookimpl

app = typer.Typer(
    help="Forecast time series with TimeDiff: a conditional diffusion model whose condition "
    "mixes a past-based forecast with the true future in training (future mixup) and adds a "
    "fixed linear forecaster (autoregressive initialisation).",
    no_args_is_help=True,
)

# CLI options that map one to one onto TimeDiffConfig fields
CONFIG_FIELDS = (
    "lookback",
    "horizon",
    "instance_norm",
    "channel_independent",
    "future_mixup",
    "ar_init",
    "train_mixup_map",
    "hidden",
    "encoder_layers",
    "decoder_layers",
    "residual",
    "steps",
    "schedule",
    "sampler",
    "sample_steps",
    "samples",
    "epochs",
    "batch_size",
    "lr",
    "patience",
    "early_stop_on",
    "max_train_windows",
)

_DATA_HELP = (
    "etth1 | etth2 (embedded, the default is etth1) or a CSV file (its date column is detected, "
    "or named with --date-col; without one, rows are taken as equally spaced steps)."
)


def _train_options(
    preset: str = typer.Option(
        "small", help="tiny (seconds) | small (minutes on a CPU) | paper (GPU)."
    ),
    data: Optional[str] = typer.Option(None, help=_DATA_HELP),
    date_col: Optional[str] = typer.Option(None, help="Date column (default: detected)."),
    target: Optional[str] = typer.Option(
        None, help="Channels to forecast, comma separated (default: every numeric column)."
    ),
    split: Optional[str] = typer.Option(
        None, help="auto (ETT files 12/4/4 months, else 7:1:2) | ratio | ett-hourly | ett-15min."
    ),
    lookback: Optional[int] = typer.Option(
        None, help="History length L; 0 chooses it on the validation split (AR-init model)."
    ),
    horizon: Optional[int] = typer.Option(None, help="Forecast length H."),
    instance_norm: Optional[str] = typer.Option(None, help="none | mean | meanstd per window."),
    channel_independent: Optional[bool] = typer.Option(
        None,
        "--channel-independent/--channel-mixing",
        help="One univariate model for every channel, or convolutions across channels.",
    ),
    future_mixup: Optional[bool] = typer.Option(
        None, "--future-mixup/--no-future-mixup", help="Ablation switch for future mixup."
    ),
    ar_init: Optional[bool] = typer.Option(
        None,
        "--ar-init/--no-ar-init",
        help="Ablation switch for the autoregressive initialisation.",
    ),
    train_mixup_map: Optional[bool] = typer.Option(
        None,
        "--train-mixup-map/--freeze-mixup-map",
        help="Train F with the diffusion loss, or keep it at the AR-init fit (default).",
    ),
    hidden: Optional[int] = typer.Option(None, help="Width of the denoiser's convolutions."),
    encoder_layers: Optional[int] = typer.Option(None, help="Convolutions in the encoder."),
    decoder_layers: Optional[int] = typer.Option(None, help="Convolutions in the decoder."),
    residual: Optional[str] = typer.Option(None, help="x0 residual on: mix | ar | none."),
    steps: Optional[int] = typer.Option(None, help="Diffusion steps K."),
    schedule: Optional[str] = typer.Option(None, help="linear | cosine beta schedule."),
    sampler: Optional[str] = typer.Option(None, help="ddim | ddpm (all K steps)."),
    sample_steps: Optional[int] = typer.Option(None, help="DDIM steps."),
    samples: Optional[int] = typer.Option(None, help="Forecasts drawn per window."),
    epochs: Optional[int] = typer.Option(None, help="Maximum training epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Training batch size."),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate."),
    patience: Optional[int] = typer.Option(None, help="Early-stopping patience (epochs)."),
    early_stop_on: Optional[str] = typer.Option(
        None, help="mse (forecast MSE on validation windows) | loss (diffusion loss)."
    ),
    max_train_windows: Optional[int] = typer.Option(
        None, help="Random training windows per epoch (0 = all)."
    ),
    device: o.Device = "auto",
    precision: o.Precision = "auto",
    seed: o.Seed = 0,
    threads: o.Threads = None,
    deterministic: o.Deterministic = False,
    out: o.Out = None,
    config: o.Config = None,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
):  # pragma: no cover - a signature template, never called
    ...


def _signature(template, extra=(), drop=()):
    params = [
        p
        for p in inspect.signature(template, eval_str=True).parameters.values()
        if p.name not in drop
    ]
    return inspect.Signature(list(extra) + params)


def _runtime(kw: dict, distributed: bool = False):
    from mltk.runtime import setup

    return setup(
        distributed=distributed,
        device=kw["device"],
        precision=kw["precision"],
        seed=kw["seed"],
        threads=kw["threads"],
        deterministic=kw["deterministic"],
        json=kw["json_out"],
        quiet=kw["quiet"],
    )


def train(**kw):
    """Train TimeDiff; writes config, metrics, checkpoint (with AR-init and scaler) to a run folder."""
    rt = _runtime(kw, distributed=True)
    from mltk_plugins.timediff.commands import run_train

    result = run_train(kw, rt, CONFIG_FIELDS)
    rt.out.result(result)


train.__signature__ = _signature(
    _train_options,
    extra=[
        inspect.Parameter(
            "resume",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=typer.Option(
                None, "--resume", help="Continue the interrupted run in this folder."
            ),
            annotation=Optional[Path],
        )
    ],
)
app.command("train")(train)

_RUN = typer.Option(..., "--run", help="A run folder written by `mltk timediff train`.")
_SAMPLES = typer.Option(None, "--samples", help="Forecasts drawn per window (default: the run's).")
_SAMPLER = typer.Option(None, "--sampler", help="ddim | ddpm (default: the run's).")
_SAMPLE_STEPS = typer.Option(None, "--sample-steps", help="DDIM steps (default: the run's).")


@app.command("eval")
def eval_(
    run: Path = _RUN,
    data: Optional[str] = typer.Option(
        None, help="Evaluate on another CSV with the same channels."
    ),
    date_col: Optional[str] = typer.Option(None, help="Date column of --data."),
    target: Optional[str] = typer.Option(None, help="Channels of --data (comma separated)."),
    split: Optional[str] = typer.Option(None, help="Split scheme (default: the run's)."),
    samples: Optional[int] = _SAMPLES,
    sampler: Optional[str] = _SAMPLER,
    sample_steps: Optional[int] = _SAMPLE_STEPS,
    dlinear_seeds: int = typer.Option(3, help="DLinear baselines trained (seeds 0..N-1)."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="TimeDiff only."),
    device: o.Device = "auto",
    precision: o.Precision = "auto",
    seed: o.Seed = 0,
    threads: o.Threads = None,
    deterministic: o.Deterministic = False,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
):
    """Test-split MSE, MAE and CRPS of TimeDiff and of the baselines on the same windows."""
    kw = dict(locals())
    rt = _runtime(kw)
    from mltk_plugins.timediff.commands import run_eval

    result, table = run_eval(kw, rt)
    rt.out.result(result, table=table)


def forecast(**kw):
    """The next H steps after the end of the series: CSV (mean and quantiles) and a PNG plot.

    With --run, uses that trained model; without, trains one first (--preset tiny takes seconds).
    """
    rt = _runtime(kw)
    from mltk_plugins.timediff.commands import run_forecast

    result = run_forecast(kw, rt, CONFIG_FIELDS)
    rt.out.result(result, text=_forecast_text(result) if not kw["json_out"] else None)


def _forecast_text(result: dict) -> str:
    cols = result["columns"]
    return (
        f"forecast of {result['horizon']} steps for {', '.join(cols)} "
        f"(point = mean of {result['samples']} samples)\n"
        f"csv:  {result['csv']}\nplot: {result['plot']}"
    )


forecast.__signature__ = _signature(
    _train_options,
    extra=[
        inspect.Parameter(
            "run",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Optional[Path],
            default=typer.Option(
                None, "--run", help="A trained run folder (default: train one now)."
            ),
        ),
        inspect.Parameter(
            "quantiles",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Optional[str],
            default=typer.Option(None, "--quantiles", help="Quantile columns, e.g. 0.05,0.5,0.95."),
        ),
    ],
)
app.command("forecast")(forecast)
app.command("predict", help="Alias of `forecast`.")(forecast)


@hookimpl
def mltk_register_commands(register):
    register("timediff", app, summary="Diffusion forecasting of time series (TimeDiff, ICML 2023).")


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
