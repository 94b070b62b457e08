"""`mltk geom-erasing`: implicit concept removal with location tokens (Geom-Erasing,
arXiv:2310.05873).

Imported on every `mltk` call: only the standard library and light core modules here; torch,
diffusers and transformers are imported inside the verbs (see commands.py).
"""

from __future__ import annotations

from mltk.hookspecs import hookimpl
from mltk.verbs import Plugin

from .config import (
    DetectConfig,
    EraseConfig,
    EvalConfig,
    GenerateConfig,
    MakeDatasetConfig,
    check_erase,
    check_generate,
    check_make,
)

plugin = Plugin(
    "geom-erasing",
    help="Geom-Erasing: remove implicit concepts (QR codes, watermarks, text) that a fine-tuned "
    "text-to-image model paints unasked, by binding them to location tokens that a negative "
    "prompt then names; with the plain, name-only, masked-loss and ESD baselines. Reads and "
    "writes diffusers PixArt-alpha and Stable Diffusion folders.",
    summary="Implicit concept removal with location tokens (Geom-Erasing, 2310.05873)",
)


def _open(name: str):
    from pathlib import Path

    from .commands import open_model

    return open_model(None if name == "tiny" and not Path(name).exists() else Path(name))


@plugin.verb(
    config=MakeDatasetConfig,
    name="make-dataset",
    output=True,
    check=check_make,
    examples=[
        "mltk geom-erasing make-dataset --concept qr --out qr-world",
        "mltk geom-erasing make-dataset --concept watermark,text --ratio 0.3",
    ],
)
def make_dataset(cfg: MakeDatasetConfig, rt) -> dict:
    """The shapes world with a concept drawn into --ratio of its images: images/, captions.jsonl,
    boxes.jsonl (the boxes drawn) and preview.png."""
    from .commands import run_make_dataset

    return run_make_dataset(cfg, rt)


@plugin.verb(
    config=DetectConfig,
    output=True,
    examples=[
        "mltk geom-erasing detect qr-world",
        "mltk geom-erasing detect photos/ --detector opencv-qr",
    ],
)
def detect(cfg: DetectConfig, rt) -> dict:
    """Boxes and location cells of the concepts in images; writes boxes.jsonl and overlay.png."""
    from .commands import run_detect

    return run_detect(cfg, rt)


@plugin.verb(
    config=EraseConfig,
    run="new",
    resume=("steps",),
    distributed=True,
    check=check_erase,
    aliases=("train",),
    examples=[
        "mltk geom-erasing erase --concept qr",
        "mltk geom-erasing erase --concept qr --method plain --out runs/plain",
        "mltk geom-erasing erase --base runs/plain --setting model --concept qr",
        "mltk geom-erasing erase --base ./sd-v1-5 --data ./scraped --concept 'qr code' "
        "--detector opencv-qr --device cuda --precision bf16",
    ],
)
def erase(cfg: EraseConfig, rt) -> dict:
    """Fine-tune a model so the concept binds to location tokens (or run a baseline); writes a
    run folder whose pipeline/ loads in diffusers."""
    from .commands import run_erase

    return run_erase(cfg, rt)


@plugin.verb(
    config=GenerateConfig,
    output=True,
    check=check_generate,
    aliases=("predict",),
    examples=[
        'mltk geom-erasing generate "a red circle above a blue square"',
        'mltk geom-erasing generate "two green squares" --model runs/erase --no-compare',
    ],
)
def generate(cfg: GenerateConfig, rt) -> dict:
    """Images with the run's negative prompt and, beside them, without; boxes drawn where the
    detector fires, and the implicit concept rate (ICR) of each."""
    from .commands import run_generate

    return run_generate(cfg, rt)


@plugin.verb(
    config=EvalConfig,
    name="eval",
    run="read*",
    open_run=_open,
    examples=[
        "mltk geom-erasing eval runs/geom runs/plain --prompts 200",
        "mltk geom-erasing eval runs/plain --negative-prompt 'qr code'",
    ],
)
def eval_(cfg: EvalConfig, rt) -> dict:
    """ICR per concept (the detector's firing rate on held-out prompts), prompt alignment and
    Fréchet distance on the world, optional CLIP score; one row per run (none: the shipped one)."""
    from .commands import run_eval

    return run_eval(cfg, rt)


@hookimpl
def mltk_register_commands(register):
    register("geom-erasing", plugin)


@hookimpl
def mltk_register_datasets(register):
    register(
        "geom-erasing-world",
        loader="mltk_plugins.geom_erasing.commands:world_contaminated",
        description="The shapes world with QR codes, watermarks or text drawn in at recorded boxes",
        embedded=True,
    )
