"""`mltk pixart`: PixArt-alpha text-to-image diffusion transformer (arXiv:2310.00426).

Imported on every `mltk` call: only the standard library and light core modules here; torch,
diffusers and transformers are imported inside the verbs (see commands.py).
"""

from __future__ import annotations

from mltk.hookspecs import hookimpl
from mltk.verbs import Plugin

from .config import PRESETS, EvalConfig, GenerateConfig, PixArtConfig, check, check_generate

plugin = Plugin(
    "pixart",
    help="PixArt-alpha: train (three-stage recipe), evaluate and sample a text-to-image "
    "diffusion transformer; reads and writes diffusers PixArt folders. RUN is a train run "
    "folder, a diffusers PixArt folder, or tiny (the model shipped with mltk).",
    summary="PixArt-alpha text-to-image diffusion transformer (2310.00426)",
)


def _open(name: str):
    from .commands import open_model

    return open_model(name)


@plugin.verb(
    config=PixArtConfig, presets=PRESETS, default_preset="tiny", run="new", resume=("steps",),
    distributed=True, check=check, examples=[
        "mltk pixart train --preset tiny",
        "mltk pixart train --stage aesthetic --init runs/pixart/align --data photos/",
    ],
)  # fmt: skip
def train(cfg: PixArtConfig, rt) -> dict:
    """Train one stage of the recipe; writes a run folder with a diffusers-layout pipeline/."""
    from .commands import run_train

    return run_train(cfg, rt)


@plugin.verb(config=EvalConfig, name="eval", run="read", open_run=_open,
             examples=["mltk pixart eval tiny --prompts 64"])  # fmt: skip
def eval_(cfg: EvalConfig, rt) -> dict:
    """Prompt alignment per attribute, Fréchet distance (classifier features), optional CLIP score."""
    from .commands import run_eval

    return run_eval(cfg, rt)


@plugin.verb(
    config=GenerateConfig, run="read", output=True, open_run=_open, check=check_generate,
    aliases=("predict",), examples=[
        'mltk pixart generate tiny "a red circle above a blue square" --num-images 4',
        "mltk pixart generate runs/pixart/align --prompts-file prompts.txt",
    ],
)  # fmt: skip
def generate(cfg: GenerateConfig, rt) -> dict:
    """Generate images for prompts; writes PNG files (and a grid) to a new folder (--out)."""
    from .commands import run_generate

    return run_generate(cfg, rt)


@hookimpl
def mltk_register_commands(register):
    register("pixart", plugin)


@hookimpl
def mltk_register_datasets(register):
    register(
        "pixart-world",
        loader="mltk.data.captioned:load_world",
        description="Procedural captioned shapes (colour, shape, size, position, count; short and dense captions)",
        embedded=True,
    )
