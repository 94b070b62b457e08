"""`mltk antnet`: understanding free-form answers to a system's own questions (natural reverse
QA; AntNet, arXiv:1912.00398): yes / no / uncertain, or which of the offered options.

Imported on every `mltk` call: only the standard library and light core modules here; torch and
transformers are imported inside the verbs (see commands.py).
"""

from __future__ import annotations

from mltk.hookspecs import hookimpl
from mltk.verbs import Plugin

from .config import (
    ANSWER_PRESETS,
    PRESETS,
    AnswerConfig,
    EvalConfig,
    PredictConfig,
    TrainConfig,
    check_answer,
    check_train,
)

plugin = Plugin(
    "antnet",
    help="AntNet: label a person's free-form answer to a question the system asked (\"Tea or "
    'coffee?" - "the second one, please"): yes, no or uncertain, or the chosen options, none '
    "or uncertain. Skeleton extraction over the question, a relevance-aware answer "
    "representation and multi-hop fusion, over a BiLSTM or a local BERT-style folder.",
    summary="Answer understanding for natural reverse QA (AntNet, 1912.00398)",
)


def _open(name):
    from .commands import open_source

    return open_source(name)


@plugin.verb(
    config=AnswerConfig,
    presets=ANSWER_PRESETS,
    run="read?",
    open_run=_open,
    check=check_answer,
    examples=[
        "mltk antnet answer",
        'mltk antnet answer RUN --question "Tea or coffee?" --options tea,coffee '
        '--answer "the second one"',
        "mltk antnet answer RUN --input replies.jsonl --output labelled.jsonl --json",
    ],
)
def answer(cfg: AnswerConfig, rt) -> dict:
    """Label answers (a file, one --question/--options/--answer, or a few demo ones) with
    the class probabilities, the chosen options and the answer words that decided it. Without
    RUN, first trains a BiLSTM on the generated set (under a minute with --preset tiny)."""
    from .commands import run_answer

    return run_answer(cfg, rt)


@plugin.verb(
    config=TrainConfig,
    presets=PRESETS,
    run="new",
    resume=("epochs", "patience"),
    distributed=True,
    check=check_train,
    examples=[
        "mltk antnet train --preset tiny",
        "mltk antnet train --encoder ./all-MiniLM-L6-v2 --out runs/minilm",
        "mltk antnet train --encoder ./all-MiniLM-L6-v2 --finetune --device cuda",
        "mltk antnet train --data replies.jsonl --dev-data dev.jsonl --self-paced",
        "mltk antnet train --architecture concat --out runs/concat",
    ],
)
def train(cfg: TrainConfig, rt) -> dict:
    """Train on the generated set (or --data), early-stopped on dev macro-F1; scores the
    generated test and out-of-distribution sets."""
    from .commands import run_train

    return run_train(cfg, rt)


@plugin.verb(
    config=EvalConfig,
    name="eval",
    run="read+",
    open_run=_open,
    examples=[
        "mltk antnet eval runs/antnet/* --no-plot",
        "mltk antnet eval RUN --data labelled.jsonl",
    ],
)
def eval_(cfg: EvalConfig, rt) -> dict:
    """Accuracy, macro-F1 and accuracy per answer phenomenon, one row per run and split;
    a confusion-matrix PNG in each run."""
    from .commands import run_eval

    return run_eval(cfg, rt)


@plugin.verb(
    config=PredictConfig,
    run="read",
    open_run=_open,
    examples=["mltk antnet predict RUN replies.jsonl --output labelled.jsonl"],
)
def predict(cfg: PredictConfig, rt) -> dict:
    """`answer` on a file, with a trained RUN."""
    from .commands import run_predict

    return run_predict(cfg, rt)


@hookimpl
def mltk_register_commands(register):
    register("antnet", plugin)


@hookimpl
def mltk_register_datasets(register):
    register(
        "antnet-generated",
        loader="mltk_plugins.antnet.generator:generate",
        description="Generated reverse-QA answers (English): yes/no and 2-4-option questions "
        "over 14 domains, 4,000 train / 500 dev / 1,000 test / 1,000 OOD (other phrasings, "
        "held-out domains).",
        embedded=True,
    )
