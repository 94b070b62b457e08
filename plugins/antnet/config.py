"""The configurations of `mltk antnet` verbs, and their presets. Defaults follow the authors'
code where it states them (BiLSTM 128 units each way, attention width 128, three hops, dropout
0.2, learning rate 5e-4, gradient norm clipped at 10, up to 32 epochs); AdamW and early stopping
on dev macro-F1 as the issue asks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from mltk.errors import UsageError
from mltk.verbs import option

DATA = "Data"
MODEL = "Model"
TRAINING = "Training"


@dataclass
class TrainConfig:
    data: str = option(
        "generated",
        "generated (the embedded set) or a JSONL/CSV file of question, options, answer, label.",
        panel=DATA,
    )
    dev_data: Optional[Path] = option(
        None,
        "JSONL/CSV for early stopping (default: generated dev, or 10% of --data).",
        path="file",
        panel=DATA,
    )
    language: str = option("en", "Template language of the generated set.", panel=DATA)
    train_size: int = option(
        4000, "Generated training examples.", min=50, max=1_000_000, panel=DATA
    )
    data_seed: int = option(
        0, "Seed of the generated set (the same test for every --seed).", min=0, panel=DATA
    )
    encoder: Optional[Path] = option(
        None,
        "A local BERT-style Hugging Face folder (default: a BiLSTM trained from scratch).",
        path="dir",
        panel=MODEL,
    )
    init: Optional[Path] = option(
        None,
        "Start from this antnet run or model folder: its encoder, architecture and weights "
        "(with --finetune, a frozen encoder's weights train from here on).",
        path="dir",
        panel=MODEL,
    )
    finetune: bool = option(
        False, "Fine-tune --encoder (default: frozen).", flag="--finetune/--frozen", panel=MODEL
    )
    tokens: Literal["word", "char"] = option(
        "word", "BiLSTM tokens: words, or characters (Chinese).", panel=MODEL
    )
    architecture: Literal["antnet", "concat", "interactive"] = option(
        "antnet",
        "antnet; or a baseline: concat (one sequence, pooled; with a fine-tuned "
        "--encoder a cross-encoder) or interactive (IAN-style attention both ways).",
        panel=MODEL,
    )
    hops: int = option(3, "Multi-hop fusion hops K.", min=1, max=16, panel=MODEL)
    skeleton: bool = option(
        True,
        "Skeleton extraction (off: uniform weights).",
        flag="--skeleton/--no-skeleton",
        panel=MODEL,
    )
    relevance: bool = option(
        True,
        "Relevance-aware answer and option-match features.",
        flag="--relevance/--no-relevance",
        panel=MODEL,
    )
    skeleton_weight: float = option(
        0.5,
        "Weight of the skeleton's auxiliary loss (spans of options and predicates).",
        min=0,
        max=100,
        panel=MODEL,
    )
    hidden: int = option(128, "Attention and fusion width.", min=4, max=4096, panel=MODEL)
    embed: int = option(128, "BiLSTM embedding width.", min=4, max=4096, panel=MODEL)
    lstm: int = option(128, "BiLSTM units each way.", min=4, max=4096, panel=MODEL)
    dropout: float = option(0.2, "Dropout.", min=0, below=1, panel=MODEL)
    max_length: int = option(
        64, "Encoder tokens per text (--encoder).", min=8, max=512, panel=MODEL
    )
    epochs: int = option(32, "Most epochs.", min=1, max=10_000, panel=TRAINING)
    patience: int = option(
        5,
        "Stop after this many epochs without a better dev macro-F1.",
        min=1,
        max=10_000,
        panel=TRAINING,
    )
    batch: int = option(32, "Examples per step.", min=1, max=65_536, panel=TRAINING)
    lr: float = option(5e-4, "AdamW learning rate.", above=0, max=1, panel=TRAINING)
    encoder_lr: float = option(
        3e-5, "Learning rate of a fine-tuned --encoder.", above=0, max=1, panel=TRAINING
    )
    weight_decay: float = option(0.01, "AdamW weight decay.", min=0, max=10, panel=TRAINING)
    clip: float = option(10.0, "Gradient norm clipping.", above=0, max=1e6, panel=TRAINING)
    self_paced: bool = option(
        False,
        "Self-paced weights (the KBS 2022 version; see training.self_paced_weights).",
        flag="--self-paced",
        panel=TRAINING,
    )


def check_train(cfg) -> None:
    if cfg.init is not None and cfg.encoder is not None:
        raise UsageError("--init brings its own encoder; leave out --encoder")
    if cfg.finetune and cfg.encoder is None and cfg.init is None:
        raise UsageError("--finetune needs --encoder DIR (the BiLSTM always trains)")
    if cfg.tokens == "char" and cfg.encoder is not None:
        raise UsageError("--tokens char is for the BiLSTM; --encoder brings its own tokenizer")
    if cfg.architecture != "antnet" and (not cfg.skeleton or not cfg.relevance or cfg.hops != 3):
        raise UsageError(
            "--no-skeleton, --no-relevance and --hops are AntNet's modules; "
            f"--architecture {cfg.architecture} has none of them"
        )


PRESETS = {
    "small": TrainConfig(),
    "tiny": TrainConfig(train_size=1200, epochs=6, patience=3, hidden=64, embed=64, lstm=64),
}


@dataclass
class AnswerInputs:
    """What `answer` labels (its first options in --help)."""

    input: Optional[Path] = option(
        None,
        "A JSONL/CSV of question, options, answer (label optional: then accuracy too).",
        path="file",
        dash=True,
        suffixes=(".jsonl", ".csv"),
        panel="Input",
    )
    question: Optional[str] = option(None, "One question ...", panel="Input")
    options: tuple[str, ...] = option(
        (), "... its options, comma-separated (none: yes/no) ...", allow_empty=True, panel="Input"
    )
    answer: Optional[str] = option(None, "... and the answer to label.", panel="Input")
    output: Optional[Path] = option(
        None,
        "Also write the answers as JSONL here.",
        path="output",
        suffixes=(".jsonl",),
        panel="Input",
    )
    explain: int = option(
        3, "Skeleton and relevance tokens shown per answer.", min=0, max=64, panel="Input"
    )


@dataclass
class AnswerConfig(TrainConfig, AnswerInputs):
    """`answer`: its inputs, then how to train a model when no RUN is given."""


ANSWER_PRESETS = {
    "tiny": AnswerConfig(
        **{f.name: getattr(PRESETS["tiny"], f.name) for f in dataclasses.fields(TrainConfig)}
    ),
    "small": AnswerConfig(),
}


def check_answer(cfg) -> None:
    check_train(cfg)
    one = (cfg.question, cfg.answer)
    if cfg.input is not None and any(v is not None for v in one):
        raise UsageError("give --input FILE or --question/--answer, not both")
    if (cfg.question is None) != (cfg.answer is None):
        raise UsageError("--question and --answer go together")
    if cfg.answer is not None and not cfg.answer.strip():
        raise UsageError("--answer is empty")


@dataclass
class PredictConfig:
    input: Path = option(
        ...,
        "JSONL/CSV of question, options, answer (label optional).",
        positional=True,
        path="file",
        dash=True,
        suffixes=(".jsonl", ".csv"),
    )
    output: Optional[Path] = option(
        None, "Also write the answers as JSONL here.", path="output", suffixes=(".jsonl",)
    )
    explain: int = option(3, "Skeleton and relevance tokens shown per answer.", min=0, max=64)
    batch: int = option(64, "Examples per forward pass.", min=1, max=65_536)


@dataclass
class EvalConfig:
    data: Optional[Path] = option(
        None, "A labelled JSONL/CSV (default: the generated test and OOD sets).", path="file"
    )
    plot: bool = option(
        True, "Write a confusion-matrix PNG into each run.", flag="--plot/--no-plot"
    )
    batch: int = option(64, "Examples per forward pass.", min=1, max=65_536)
