"""The configuration of `mltk aesam` and its presets (named instances, written down here).

Every field is a command-line option and a TOML key. The choices repeat the names of the
registries in data.py, models.py and adaptive_switch.py (which import torch); a test keeps them
equal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional

from mltk.verbs import option

OPTIMIZER = Literal["erm", "sam", "aesam", "aelooksam", "looksam", "sssam"]
DATA, MODEL, OPTIM, SWITCH = "Data", "Model", "Optimisation", "The switch (paper's defaults)"


@dataclass
class AESAMConfig:
    """Everything a run depends on; CLI options map one to one onto these fields."""

    data: Literal["digits", "npz", "folder", "idx", "cifar10", "cifar100"] = option(
        "digits", "digits (embedded) or the kind of --data-path.", panel=DATA
    )
    data_path: Optional[Path] = option(
        None, "File or folder for every --data but digits.", path="exists", panel=DATA
    )
    noise: float = option(
        0.0, "Symmetric label noise on the training labels, e.g. 0.2.", min=0, below=1, panel=DATA
    )
    test_fraction: float = option(
        0.25, "Held-out share when the data has no test split.", above=0, below=1, panel=DATA
    )
    image_size: Optional[int] = option(
        None, "Resize folder images to this square size.", min=1, max=4096, panel=DATA
    )
    limit_train: Optional[int] = option(
        None, "Keep this many training examples.", min=1, max=10**9, panel=DATA
    )
    augment: bool = option(
        False, "Random 4-pixel-padded crops and flips (the CIFAR recipe).", panel=DATA
    )
    model: Literal["mlp", "cnn", "resnet18"] = option("mlp", "The classifier.", panel=MODEL)
    width: Optional[int] = option(
        None, "Hidden width / channels (default: the model's).", min=1, max=65536, panel=MODEL
    )
    optimizer: OPTIMIZER = option("aesam", "The SAM-family optimizer.", panel=OPTIM)
    base: Literal["sgd", "adamw"] = option("sgd", "Base optimizer (sgd with momentum).",
                                           panel=OPTIM)  # fmt: skip
    lr: float = option(0.05, "Learning rate of the base optimizer.", above=0, panel=OPTIM)
    momentum: float = option(0.9, "SGD momentum.", min=0, below=1, panel=OPTIM)
    weight_decay: float = option(5e-4, "Weight decay.", min=0, max=1e3, panel=OPTIM)
    schedule: Literal["cosine", "constant"] = option(
        "cosine", "Learning-rate schedule (cosine decay per step).", panel=OPTIM
    )
    epochs: int = option(30, "Training epochs.", min=1, max=100_000, panel=OPTIM)
    batch_size: int = option(32, "Global minibatch size.", min=1, max=1_000_000, panel=OPTIM)
    rho: float = option(0.05, "SAM radius (paper: 0.05).", min=0, max=1e6, panel=SWITCH)
    delta: float = option(
        0.9, "EMA forgetting rate of ||g||^2 (paper: 0.9).", min=0, below=1, panel=SWITCH
    )
    lambda1: float = option(-1.0, "Threshold c_t at the end (paper: -1).", unbounded=True,
                            panel=SWITCH)  # fmt: skip
    lambda2: float = option(1.0, "Threshold c_t at the start (paper: 1).", unbounded=True,
                            panel=SWITCH)  # fmt: skip
    alpha: float = option(0.7, "LookSAM reuse strength.", min=0, max=1e6, panel=SWITCH)
    k: int = option(5, "LookSAM: a SAM step every k steps.", min=1, max=1_000_000, panel=SWITCH)
    p: float = option(0.5, "SS-SAM: probability of a SAM step.", min=0, max=1, panel=SWITCH)

    def validate(self) -> AESAMConfig:
        """Every field in range and the data source consistent, or UsageError naming the option
        (files are checked when a verb reads them)."""
        from mltk.config import validate

        validate(self)
        check(self)
        return self


def check(cfg: AESAMConfig) -> None:
    from mltk.errors import UsageError

    if cfg.data != "digits" and not cfg.data_path:
        raise UsageError(f"--data {cfg.data} needs --data-path")
    if cfg.data == "digits" and cfg.data_path:
        raise UsageError(
            f"--data-path {cfg.data_path} is not read by --data digits; "
            "name its kind with --data npz, folder, idx, cifar10 or cifar100"
        )


def check_tune(cfg: TuneConfig) -> None:
    from mltk.errors import UsageError

    check(cfg)
    if cfg.rho_min > cfg.rho_max:
        raise UsageError(f"--rho-min {cfg.rho_min:g} is above --rho-max {cfg.rho_max:g}")


# Named instances of the config, written down in one place.
PRESETS: dict[str, AESAMConfig] = {
    "tiny": AESAMConfig(epochs=3, limit_train=400),  # seconds: smoke tests and the example
    "small": AESAMConfig(),  # digits, MLP, 30 epochs: about a minute on one CPU core
    # AE-SAM as benchmarks/aesam/tune_digits.py chose it on a validation split of noisy digits:
    # a larger radius and the paper's schedule shifted up by one, c_t from 2 to 0 (about 18%
    # SAM steps instead of ~46%).
    "digits-noisy": AESAMConfig(rho=1.0, lambda1=0.0, lambda2=2.0),
    "digits-cnn": AESAMConfig(model="cnn", width=16, epochs=20),
    # The paper's CIFAR setting: ResNet-18, SGD momentum 0.9, lr 0.1, wd 5e-4, batch 128, 200 epochs.
    "cifar10": AESAMConfig(
        data="cifar10",
        model="resnet18",
        lr=0.1,
        weight_decay=5e-4,
        batch_size=128,
        epochs=200,
        rho=0.05,
    ),  # fmt: skip
    "cifar100": AESAMConfig(
        data="cifar100",
        model="resnet18",
        lr=0.1,
        weight_decay=5e-4,
        batch_size=128,
        epochs=200,
        rho=0.1,
    ),  # fmt: skip
}


# Presets whose switch settings were chosen for some optimizers only: compare gives the others
# the defaults of the settings the command line does not set.
PRESET_TUNED_FOR: dict[str, tuple[str, ...]] = {"digits-noisy": ("aesam",)}
SWITCH_SETTINGS = ("rho", "lambda1", "lambda2")


def get_preset(name: str) -> AESAMConfig:
    from mltk.errors import UsageError

    if name not in PRESETS:
        raise UsageError(f"--preset {name!r} is not a preset; use one of {', '.join(PRESETS)}")
    return replace(PRESETS[name])


@dataclass
class CompareConfig(AESAMConfig):
    optimizers: tuple[OPTIMIZER, ...] = option(
        ("erm", "sam", "aesam", "sssam"), "The optimizers to compare, comma separated."
    )
    seeds: int = option(2, "Seeds per optimizer (0..seeds-1).", min=1, max=1000)
    tuned: Optional[Path] = option(
        None,
        "A tune run folder (or its tuned.json): each optimizer takes its own chosen settings.",
        path="exists",
    )


@dataclass
class TuneConfig(AESAMConfig):
    optimizers: tuple[OPTIMIZER, ...] = option(
        ("erm", "sam", "sssam", "looksam", "aesam", "aelooksam"),
        "The optimizers to tune, comma separated.",
    )
    trials: int = option(
        6, "Radii tried per optimizer (the same for every one; ERM: one run).", min=1, max=1000
    )
    rho_min: float = option(0.05, "The smallest radius tried.", above=0, max=1e6)
    rho_max: float = option(1.6, "The largest radius tried (log-spaced between).", above=0, max=1e6)
    max_sam_fraction: float = option(
        0.2,
        "Cost cap: the adaptive optimizers' share of SAM steps (0.2 is 0.6x SAM's gradient "
        "evaluations); SS-SAM's probability.",
        above=0,
        max=1,
    )
    val_fraction: float = option(
        0.2, "Share of the training split held out for validation.", above=0, below=1
    )
    tune_seeds: int = option(1, "Seeds per trial (averaged).", min=1, max=100)
    tune_seed: int = option(
        100, "The first tuning seed (apart from compare's 0, 1, ...).", min=0, max=2**31 - 1
    )


@dataclass
class EvalConfig:
    pass


@dataclass
class PredictConfig:
    input: Path = option(
        help="An .npz/.npy array (x), an image, or a folder of images.", path="exists"
    )
    top: int = option(
        3, "How many classes (with probabilities) to report per input.", min=1, max=100_000
    )
    rescale: bool = option(
        False,
        "Inputs outside the training inputs' value range: map their range onto it (with a "
        "warning) instead of refusing (exit 5).",
    )
