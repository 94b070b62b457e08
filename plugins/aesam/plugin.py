"""`mltk aesam`: train, evaluate and compare SAM-family optimizers (AE-SAM, ICLR 2023).

Imported on every `mltk` call: only the standard library and light core modules at the top;
torch and the method are imported inside the verbs.
"""

from __future__ import annotations

from mltk.hookspecs import hookimpl
from mltk.verbs import Plugin

from .config import (
    PRESETS,
    AESAMConfig,
    CompareConfig,
    EvalConfig,
    PredictConfig,
    TuneConfig,
    check,
    check_tune,
)

plugin = Plugin(
    "aesam",
    help="Adaptive sharpness-aware minimisation (AE-SAM / AE-LookSAM) and its baselines "
    "(ERM, SAM, LookSAM, SS-SAM) on image classification.",
    summary="Adaptive sharpness-aware minimisation (AE-SAM, ICLR 2023) and its baselines.",
)


@plugin.verb(
    config=AESAMConfig, presets=PRESETS, default_preset="small", run="new", resume=(),
    distributed=True, check=check, examples=[
        "mltk aesam train --preset tiny --noise 0.2",
        "mltk aesam train --data folder --data-path photos/ --model cnn --image-size 32",
    ],
)  # fmt: skip
def train(cfg: AESAMConfig, rt) -> dict:
    """Train a classifier with the chosen optimizer; writes a run folder."""
    from .commands import run_train

    return run_train(cfg, rt)


@plugin.verb(config=EvalConfig, name="eval", run="read+",
             examples=["mltk aesam eval runs/aesam/sam runs/aesam/aesam"])  # fmt: skip
def eval_(cfg: EvalConfig, rt) -> dict:
    """Test accuracy, loss, SAM fraction, gradient evaluations and wall time of each run."""
    from .commands import run_eval

    return run_eval(rt)


@plugin.verb(config=PredictConfig, run="read",
             examples=["mltk aesam predict RUN --input digits.npz --top 3"])  # fmt: skip
def predict(cfg: PredictConfig, rt) -> dict:
    """Labels and class probabilities for new inputs."""
    from .commands import run_predict

    return run_predict(cfg, rt)


@plugin.verb(
    config=CompareConfig, presets=PRESETS, default_preset="small", check=check,
    examples=["mltk aesam compare --optimizers erm,sam,aesam --seeds 3 --noise 0.2"],
)  # fmt: skip
def compare(cfg: CompareConfig, rt) -> dict:
    """Train several optimizers on the same data and seeds: accuracy against gradient evaluations."""
    from .commands import run_compare

    return run_compare(cfg, rt)


@plugin.verb(
    config=TuneConfig, presets=PRESETS, default_preset="small", run="new", check=check_tune,
    examples=[
        "mltk aesam tune --noise 0.2 --out runs/tune20",
        "mltk aesam compare --noise 0.2 --tuned runs/tune20 --seeds 5",
    ],
)  # fmt: skip
def tune(cfg: TuneConfig, rt) -> dict:
    """Choose each optimizer's radius on a validation split, the same trials for every one."""
    from .commands import run_tune

    return run_tune(cfg, rt)


@hookimpl
def mltk_register_commands(register):
    register("aesam", plugin)


@hookimpl
def mltk_register_datasets(register):
    register(
        "digits",
        loader="mltk_plugins.aesam.data:load_digits_dataset",
        description="scikit-learn's 1,797 handwritten 8x8 digits, optional symmetric label noise",
        embedded=True,
    )
