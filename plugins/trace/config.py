"""The configuration of `mltk trace` (stdlib only: imported by the CLI).

Values left at None take the task's default, which the run's config.json records once resolved:
knowledge-graph rules walk 3 steps and train 10 epochs at lr 0.05 from logits of scale 0.1;
meta-paths on a heterogeneous graph walk 4 steps; the cell search samples architectures (the
stochastic objective). Where the task's module has its own default (hin.Settings,
nas.Settings), None leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from mltk.verbs import option

DATA, DIST, TRAINING, RULES = "Data", "Distribution", "Training", "Rules"
DECOMPS = Literal["tt", "cp", "independent"]
TASK_DATA = {"kg": "kinship", "hin": "synthetic", "nas": "digits"}
TASK_LENGTH = {"kg": 3, "hin": 4}
TASK_OBJECTIVE = {"kg": "deterministic", "hin": "deterministic", "nas": "stochastic"}
TASK_EPOCHS = {"kg": 10}
TASK_LR = {"kg": 0.05}
TASK_INIT = {"kg": 0.1}


@dataclass
class RulesConfig:
    # --- the data ---
    data: Optional[str] = option(
        None,
        "family | kinship | umls, a folder with train/valid/test.txt (and facts.txt, "
        "entities.txt, relations.txt), or one triples file with --split (default: kinship).",
        panel=DATA,
    )
    split: Optional[str] = option(
        None,
        "One triples file: train,valid,test fractions such as 0.8,0.1,0.1.",
        panel=DATA,
    )
    # --- the distribution over chains ---
    length: Optional[int] = option(
        None,
        "Steps of a chain (rules up to this long; the identity step makes shorter ones; "
        "default: 3 for rules, 4 for meta-paths).",
        min=1,
        max=10,
        panel=DIST,
    )
    decomp: DECOMPS = option(
        "tt",
        "tt: tensor train following the chain (TRACE); cp: rank-R mixture (DRUM); "
        "independent: one softmax per step (Neural-LP, GTN, DARTS).",
        panel=DIST,
    )
    rank: int = option(4, "Bond dimension (tt) or components (cp).", min=1, max=256, panel=DIST)
    init_scale: Optional[float] = option(
        None,
        "Standard deviation of the initial logits (default: 0.1 for rules, else 0.01).",
        min=0,
        max=100,
        panel=DIST,
    )
    objective: Optional[Literal["deterministic", "stochastic"]] = option(
        None,
        "deterministic: the expectation over chains, one contraction; stochastic: sampled "
        "chains and the score function (default: deterministic; stochastic for cells).",
        panel=DIST,
    )
    samples: int = option(
        8, "Stochastic objective: chains sampled per step.", min=1, max=4096, panel=DIST
    )
    # --- training ---
    epochs: Optional[int] = option(
        None,
        "Passes over the training split (default: the task's).",
        min=1,
        max=100_000,
        panel=TRAINING,
    )
    batch_size: int = option(
        64,
        "Triples per step (each gives two queries); cells: images per step.",
        min=1,
        max=1_000_000,
        panel=TRAINING,
    )
    lr: Optional[float] = option(
        None,
        "The distribution's step size (Adam; default: 0.05, cells 0.1).",
        above=0,
        max=100,
        panel=TRAINING,
    )
    # --- what is written ---
    top: int = option(10, "Rules written per query relation.", min=1, max=10_000, panel=RULES)
    min_probability: float = option(
        0.0, "Leave out rules less probable than this.", min=0, max=1, panel=RULES
    )


@dataclass
class SearchConfig(RulesConfig):
    task: Literal["kg", "hin", "nas"] = option(
        "kg",
        "kg: rule chains on a knowledge graph; hin: meta-paths on a heterogeneous graph; "
        "nas: a DARTS-like cell.",
        panel=DATA,
    )
    data: Optional[str] = option(
        None,
        "kg: family | kinship | umls, a folder or a triples file; hin: synthetic or a folder "
        "with edges.csv and labels.csv; nas: digits, or the CIFAR-10 binary archive or folder "
        "(default: kinship, synthetic, digits).",
        panel=DATA,
    )
    retrain_epochs: Optional[int] = option(
        None,
        "Cells: epochs of training the derived cell from scratch (default: 20).",
        min=0,
        max=100_000,
        panel=TRAINING,
    )


@dataclass
class EvalConfig:
    split: Literal["test", "valid"] = option("test", "Knowledge graphs: the split scored.")
    per_relation: Optional[bool] = option(
        None,
        "Knowledge graphs: a row per query relation and direction (default: with one run).",
        flag="--per-relation/--no-per-relation",
    )
    predictions: Optional[Path] = option(
        None,
        "Score a Neural-LP / DRUM test_predictions.txt against the data of the RUN (or "
        "--data) instead of a model.",
        path="file",
    )
    data: Optional[str] = option(
        None, "The knowledge graph of --predictions when no RUN is given.", panel=DATA
    )


@dataclass
class PredictConfig:
    queries: Optional[Path] = option(
        None,
        "CSV of queries: entity,relation (an inv_ relation asks for heads: (?, r, entity)); "
        "- reads stdin.",
        path="file",
        suffixes=(".csv",),
        dash=True,
    )
    top: int = option(10, "Answers per query.", min=1, max=100_000)
    rules: int = option(
        3, "Rules per answer in --output (the most probable that fired).", min=0, max=1000
    )
    output: Optional[Path] = option(
        None, "Also write the answers to this CSV.", path="output", suffixes=(".csv",)
    )


def check(cfg: RulesConfig) -> None:
    """What the field declarations cannot say alone."""
    from mltk.errors import UsageError

    task = getattr(cfg, "task", "kg")
    if cfg.split is not None and task != "kg":
        raise UsageError("--split splits a triples file: it applies to --task kg only")
    if task == "hin" and cfg.objective == "stochastic":
        raise UsageError(
            "meta-path search trains the expectation over paths: drop "
            "--objective stochastic (it is for rules and cells)"
        )
    if task == "nas" and cfg.length is not None:
        raise UsageError("--length sets a chain's steps; a cell has its 14 edges (drop --length)")


def settings_from(cfg, settings, names: dict[str, str]):
    """A task module's settings dataclass with the options the user set: ``names`` maps its
    fields to the config's; a None keeps the module's default."""
    from dataclasses import replace

    given = {field: getattr(cfg, opt) for field, opt in names.items()}
    return replace(settings, **{k: v for k, v in given.items() if v is not None})


def resolved(cfg: RulesConfig):
    """``cfg`` with the task's defaults in place of None."""
    from dataclasses import replace

    task = getattr(cfg, "task", "kg")
    return replace(
        cfg,
        data=cfg.data or TASK_DATA[task],
        length=cfg.length if cfg.length is not None else TASK_LENGTH.get(task),
        objective=cfg.objective or TASK_OBJECTIVE[task],
        epochs=cfg.epochs or TASK_EPOCHS.get(task),
        lr=cfg.lr or TASK_LR.get(task),
        init_scale=cfg.init_scale if cfg.init_scale is not None else TASK_INIT.get(task),
    )
