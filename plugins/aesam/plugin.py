"""`mltk aesam`: train, evaluate and compare SAM-family optimizers (AE-SAM, ICLR 2023).

This module is imported on every `mltk` call: it imports only the standard library, typer and
light core modules at the top; torch and the method are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mltk import options as o
from mltk.hookspecs import hookimpl

app = typer.Typer(
    help="Adaptive sharpness-aware minimisation (AE-SAM / AE-LookSAM) and its baselines "
    "(ERM, SAM, LookSAM, SS-SAM) on image classification.",
    no_args_is_help=True,
)

_OPT = "erm | sam | aesam | aelooksam | looksam | sssam"


def _overrides(**values) -> dict:
    # paths are stored absolute, so a run folder's eval and resume work from any directory
    return {k: (str(v.resolve()) if isinstance(v, Path) else v) for k, v in values.items()}


@app.command()
def train(
    preset: str = typer.Option(
        "small", help="tiny | small | digits-noisy | digits-cnn | cifar10 | cifar100."
    ),
    optimizer: Optional[str] = typer.Option(None, help=f"{_OPT} (default aesam)."),
    data: Optional[str] = typer.Option(
        None, help="digits (embedded) | npz | folder | cifar10 | cifar100."
    ),
    data_path: Optional[Path] = typer.Option(
        None, help="File or folder for every --data but digits."
    ),
    noise: Optional[float] = typer.Option(
        None, help="Symmetric label noise on the training labels, e.g. 0.2."
    ),
    model: Optional[str] = typer.Option(None, help="mlp | cnn | resnet18."),
    width: Optional[int] = typer.Option(None, help="Hidden width / channels of the model."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Global minibatch size."),
    lr: Optional[float] = typer.Option(None, help="Learning rate of the base optimizer."),
    base: Optional[str] = typer.Option(None, help="Base optimizer: sgd (momentum) | adamw."),
    momentum: Optional[float] = typer.Option(None, help="SGD momentum."),
    weight_decay: Optional[float] = typer.Option(None, help="Weight decay."),
    schedule: Optional[str] = typer.Option(None, help="cosine | constant learning rate."),
    rho: Optional[float] = typer.Option(None, help="SAM radius (paper: 0.05)."),
    delta: Optional[float] = typer.Option(
        None, help="EMA forgetting rate of ||g||^2 (paper: 0.9)."
    ),
    lambda1: Optional[float] = typer.Option(None, help="Threshold c_t at the end (paper: -1)."),
    lambda2: Optional[float] = typer.Option(None, help="Threshold c_t at the start (paper: 1)."),
    alpha: Optional[float] = typer.Option(None, help="LookSAM reuse strength (0.7)."),
    k: Optional[int] = typer.Option(None, help="LookSAM: a SAM step every k steps (5)."),
    p: Optional[float] = typer.Option(None, help="SS-SAM: probability of a SAM step (0.5)."),
    test_fraction: Optional[float] = typer.Option(
        None, help="Held-out share when the data has no test split."
    ),
    image_size: Optional[int] = typer.Option(
        None, help="Resize folder images to this square size."
    ),
    limit_train: Optional[int] = typer.Option(None, help="Keep this many training examples."),
    augment: Optional[bool] = typer.Option(
        None, "--augment/--no-augment", help="Random crops and flips (on in the cifar presets)."
    ),
    device: o.Device = "auto",
    precision: o.Precision = "auto",
    seed: o.Seed = 0,
    threads: o.Threads = None,
    deterministic: o.Deterministic = False,
    out: o.Out = None,
    config: o.Config = None,
    resume: o.Resume = None,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Train a classifier with the chosen optimizer; writes a run folder."""
    from mltk.runtime import setup

    rt = setup(
        device=device,
        precision=precision,
        seed=seed,
        threads=threads,
        deterministic=deterministic,
        json=json_out,
        quiet=quiet,
        distributed=True,
    )
    from mltk_plugins.aesam.commands import run_train

    overrides = _overrides(
        optimizer=optimizer,
        data=data,
        data_path=data_path,
        noise=noise,
        model=model,
        width=width,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        base=base,
        momentum=momentum,
        weight_decay=weight_decay,
        schedule=schedule,
        rho=rho,
        delta=delta,
        lambda1=lambda1,
        lambda2=lambda2,
        alpha=alpha,
        k=k,
        p=p,
        test_fraction=test_fraction,
        image_size=image_size,
        limit_train=limit_train,
        augment=augment,
    )
    run_train(rt, preset=preset, config_file=config, overrides=overrides, out=out, resume=resume)


@app.command("eval")
def eval_(
    runs: list[Path] = typer.Argument(..., help="One or more run folders written by train."),
    device: o.Device = "auto",
    threads: o.Threads = None,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Test accuracy, loss, SAM fraction, gradient evaluations and wall time; a table for several runs."""
    from mltk.runtime import setup

    rt = setup(device=device, precision="fp32", threads=threads, json=json_out, quiet=quiet)
    from mltk_plugins.aesam.commands import run_eval

    run_eval(rt, runs)


@app.command()
def predict(
    run: Path = typer.Argument(..., help="A run folder written by train."),
    input: Path = typer.Option(
        ..., "--input", help="An .npz/.npy array (x), an image, or a folder of images."
    ),
    top: int = typer.Option(3, help="How many classes (with probabilities) to report per input."),
    device: o.Device = "auto",
    threads: o.Threads = None,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Labels and class probabilities for new inputs."""
    from mltk.runtime import setup

    rt = setup(device=device, precision="fp32", threads=threads, json=json_out, quiet=quiet)
    from mltk_plugins.aesam.commands import run_predict

    run_predict(rt, run, input, top)


@app.command()
def compare(
    optimizers: str = typer.Option(
        "erm,sam,aesam,sssam", help=f"Comma-separated list from {_OPT}."
    ),
    seeds: int = typer.Option(2, help="Seeds per optimizer (0..seeds-1)."),
    preset: str = typer.Option("small", help="Preset the runs start from."),
    data: Optional[str] = typer.Option(None, help="digits | npz | folder | cifar10 | cifar100."),
    data_path: Optional[Path] = typer.Option(
        None, help="File or folder for every --data but digits."
    ),
    noise: Optional[float] = typer.Option(
        None, help="Symmetric label noise on the training labels."
    ),
    model: Optional[str] = typer.Option(None, help="mlp | cnn | resnet18."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs."),
    rho: Optional[float] = typer.Option(None, help="SAM radius."),
    limit_train: Optional[int] = typer.Option(None, help="Keep this many training examples."),
    device: o.Device = "auto",
    threads: o.Threads = None,
    config: o.Config = None,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Train several optimizers on the same data and seeds; print accuracy vs gradient evaluations."""
    from mltk.runtime import setup

    rt = setup(device=device, precision="fp32", threads=threads, json=json_out, quiet=quiet)
    from mltk_plugins.aesam.commands import run_compare

    overrides = _overrides(
        data=data,
        data_path=data_path,
        noise=noise,
        model=model,
        epochs=epochs,
        rho=rho,
        limit_train=limit_train,
    )
    run_compare(
        rt,
        optimizers=optimizers,
        seeds=seeds,
        preset=preset,
        config_file=config,
        overrides=overrides,
    )


@hookimpl
def mltk_register_commands(register):
    register(
        "aesam",
        app,
        summary="Adaptive sharpness-aware minimisation (AE-SAM, ICLR 2023) and its baselines.",
    )


@hookimpl
def mltk_register_datasets(register):
    register(
        "digits",
        loader="mltk_plugins.aesam.data:load_digits_dataset",
        description="scikit-learn's 1,797 handwritten 8x8 digits, optional symmetric label noise",
        embedded=True,
    )
