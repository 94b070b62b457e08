"""`mltk pixart`: PixArt-alpha text-to-image diffusion transformer (arXiv:2310.00426).

Imported on every `mltk` call: only the standard library, typer and light core modules here;
torch, diffusers and transformers are imported inside the commands (see commands.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mltk import options as o
from mltk.hookspecs import hookimpl

app = typer.Typer(
    help="PixArt-alpha: train (three-stage recipe), evaluate and sample a text-to-image "
    "diffusion transformer; reads and writes diffusers PixArt folders.",
    no_args_is_help=True,
)

_CKPT_HELP = "A train run folder or a diffusers PixArt folder (default: the shipped tiny model)."


def _setup(device, precision, seed, threads, deterministic, json_out, quiet, distributed=False):
    from mltk.runtime import setup

    return setup(
        device=device,
        precision=precision,
        seed=seed,
        threads=threads,
        deterministic=deterministic,
        json=json_out,
        quiet=quiet,
        distributed=distributed,
    )


@app.command()
def train(
    preset: str = typer.Option("tiny", help="tiny | tiny-vae | paper."),
    stage: Optional[str] = typer.Option(
        None, help="pixel (class-conditional) | align (text, from --init or scratch) | aesthetic."
    ),
    init: Optional[Path] = typer.Option(
        None, help="Run folder to start from: a pixel run for align, an align run for aesthetic."
    ),
    data: Optional[Path] = typer.Option(
        None, help="Image folder with .txt captions (default: the embedded procedural world)."
    ),
    caption_mode: Optional[str] = typer.Option(None, help="short | dense | mixed captions."),
    aspect_buckets: Optional[bool] = typer.Option(
        None,
        "--aspect-buckets/--no-aspect-buckets",
        help="Image folders: batches of one aspect-ratio bucket instead of square crops.",
    ),
    prediction: Optional[str] = typer.Option(None, help="eps (paper) | v (tiny preset)."),
    steps: Optional[int] = typer.Option(None, help="Optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, help="Global batch size."),
    lr: Optional[float] = typer.Option(None, help="AdamW learning rate."),
    weight_decay: Optional[float] = typer.Option(None, help="AdamW weight decay."),
    warmup: Optional[int] = typer.Option(None, help="Linear warm-up steps."),
    ema_decay: Optional[float] = typer.Option(None, help="EMA decay of the exported weights."),
    grad_clip: Optional[float] = typer.Option(None, help="Gradient-norm clipping."),
    caption_dropout: Optional[float] = typer.Option(
        None, help="Probability of the empty caption (for guidance)."
    ),
    gradient_checkpointing: Optional[bool] = typer.Option(
        None,
        "--gradient-checkpointing/--no-gradient-checkpointing",
        help="Trade compute for memory.",
    ),
    dataset_size: Optional[int] = typer.Option(None, help="Images in the procedural world."),
    image_size: Optional[int] = typer.Option(None, help="Training resolution in pixels."),
    log_every: Optional[int] = typer.Option(None, help="Log metrics every N steps."),
    save_every: Optional[int] = typer.Option(None, help="Checkpoint every N steps."),
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
    """Train one stage of the recipe; writes a run folder with a diffusers-layout pipeline/."""
    rt = _setup(device, precision, seed, threads, deterministic, json_out, quiet, distributed=True)
    from mltk_plugins.pixart.commands import run_train

    overrides = dict(
        stage=stage,
        caption_mode=caption_mode,
        aspect_buckets=aspect_buckets,
        prediction=prediction,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        warmup=warmup,
        ema_decay=ema_decay,
        grad_clip=grad_clip,
        caption_dropout=caption_dropout,
        gradient_checkpointing=gradient_checkpointing,
        dataset_size=dataset_size,
        image_size=image_size,
        log_every=log_every,
        save_every=save_every,
    )
    run_train(rt, preset=preset, config_file=config, overrides=overrides, init=init, data=data,
              out=out, resume=resume)  # fmt: skip


@app.command("eval")
def eval_(
    checkpoint: Optional[Path] = typer.Argument(None, help=_CKPT_HELP),
    prompts: int = typer.Option(
        64, "--prompts", help="Held-out world prompts to generate and score."
    ),
    steps: int = typer.Option(20, help="Sampler steps."),
    guidance: float = typer.Option(4.5, help="Classifier-free guidance scale."),
    sampler: str = typer.Option("dpm", help="dpm (DPM-Solver++) | ddim."),
    clip: Optional[Path] = typer.Option(None, help="Local CLIP model folder for a CLIP score."),
    batch_size: int = typer.Option(32, help="Images per denoising batch."),
    device: o.Device = "auto",
    precision: o.Precision = "auto",
    seed: o.Seed = 0,
    threads: o.Threads = None,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Prompt alignment per attribute, Fréchet distance (classifier features), optional CLIP score."""
    rt = _setup(device, precision, seed, threads, False, json_out, quiet)
    from mltk_plugins.pixart.commands import run_eval

    run_eval(rt, checkpoint, n=prompts, steps=steps, guidance=guidance, sampler=sampler, clip=clip,
             batch_size=batch_size)  # fmt: skip


def _generate(
    prompt: list[str] = typer.Argument(None, help="Prompt(s); or use --prompts-file."),
    prompts_file: Optional[Path] = typer.Option(None, help="Text file, one prompt per line."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help=_CKPT_HELP),
    negative_prompt: str = typer.Option("", help="Negative prompt (the unconditional branch)."),
    num_images: int = typer.Option(1, help="Images per prompt (seeds seed, seed+1, ...)."),
    steps: int = typer.Option(20, help="Sampler steps."),
    guidance: float = typer.Option(4.5, help="Classifier-free guidance scale (1 = none)."),
    sampler: str = typer.Option("dpm", help="dpm (DPM-Solver++) | ddim."),
    height: Optional[int] = typer.Option(None, help="Pixels (default: the model's size)."),
    width: Optional[int] = typer.Option(None, help="Pixels (default: the model's size)."),
    resolution_binning: bool = typer.Option(
        False,
        "--resolution-binning/--no-resolution-binning",
        help="Any size: denoise at the nearest aspect-ratio bucket, then resize and crop.",
    ),
    batch_size: int = typer.Option(16, help="Images per denoising batch."),
    device: o.Device = "auto",
    precision: o.Precision = "auto",
    seed: o.Seed = 0,
    threads: o.Threads = None,
    out: o.Out = None,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Generate images for prompts; writes PNG files (and a grid) to --out."""
    rt = _setup(device, precision, seed, threads, False, json_out, quiet)
    from mltk_plugins.pixart.commands import run_generate

    run_generate(rt, prompt or [], prompts_file=prompts_file, checkpoint=checkpoint,
                 negative_prompt=negative_prompt, num_images=num_images, steps=steps,
                 guidance=guidance, sampler=sampler, height=height, width=width,
                 batch_size=batch_size, out=out, resolution_binning=resolution_binning)  # fmt: skip


app.command("predict")(_generate)
app.command("generate")(_generate)


@hookimpl
def mltk_register_commands(register):
    register("pixart", app, summary="PixArt-alpha text-to-image diffusion transformer (2310.00426)")


@hookimpl
def mltk_register_datasets(register):
    register(
        "pixart-world",
        loader="mltk_plugins.pixart.data:load_world",
        description="Procedural captioned shapes (colour, shape, size, position, count; short and dense captions)",
        embedded=True,
    )
