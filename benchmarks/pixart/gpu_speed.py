"""Generation speed on a GPU: `mltk pixart generate` vs diffusers' PixArtAlphaPipeline.

Same weights, same prompts and seeds, same sampler (DPM-Solver++, 20 steps, guidance 4.5),
256 x 256 images from a PixArt-XL-2 width transformer (28 blocks, 1152 wide, 16 heads, patch 2,
the 256-px model's sample size 32) with random weights, the SD VAE config and a T5 encoder of
XXL width (4096) but only ``--t5-layers`` blocks (text encoding is once per batch; T5-XXL's 24
blocks would only add minutes of weight I/O). Everything runs in bf16.

Measures images/second of the in-process generation call of each (timed after a warm-up, runs
alternated, median of ``--repeats``), whether the images are identical, and the end-to-end
`mltk pixart generate` CLI (its own JSON images_per_second). Prints a markdown table and writes
gpu_speed.json next to this file (and into $OUT when set). Run it with gpu_speed.sh.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch

PROMPTS = [
    "a red circle above a blue square",
    "a large green triangle in the top left",
    "three yellow circles in a row",
    "a small blue square left of a large red triangle",
    "a yellow square below a green circle",
    "two red triangles",
    "a large blue circle in the center",
    "a green square right of a yellow triangle",
]


def _installed() -> bool:
    """Whether mltk's entry points are installed (else the plugin is handed to the CLI directly)."""
    from importlib.metadata import entry_points

    return any(ep.name == "pixart" for ep in entry_points(group="mltk"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--t5-layers", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument(
        "--cpu", action="store_true", help="CPU, the tiny-vae preset at 32 px (random weights)"
    )
    args = ap.parse_args()
    if not args.cpu and not torch.cuda.is_available():
        print("gpu_speed: no CUDA device visible to torch", file=sys.stderr)
        return 4
    import diffusers
    import transformers
    from diffusers import PixArtAlphaPipeline
    from mltk_plugins.pixart import model as M
    from mltk_plugins.pixart import plugin as pixart_plugin
    from mltk_plugins.pixart.config import preset
    from mltk_plugins.pixart.model import scheduler_config
    from transformers import T5EncoderModel

    from mltk.cli import run as mltk_run
    from mltk.data import world as W
    from mltk.t2i import text as T
    from mltk.t2i.pipeline_io import Bundle, load_pipeline, quiet_libraries, save_pipeline
    from mltk.t2i.sampling import generate
    from mltk.vl.tokenizers import train_tokenizer

    quiet_libraries()
    dev, dtype = torch.device("cuda"), torch.bfloat16
    t_start = time.time()
    cfg = preset("paper", image_size=args.size, micro_conditions=False, text_layers=args.t5_layers)
    if args.cpu:
        dev, dtype, args.size = torch.device("cpu"), torch.float32, 32
        cfg = preset("tiny-vae", prediction="eps")
    folder = Path(tempfile.mkdtemp(prefix="pixart-xl-")) / "pipeline"
    with torch.device(dev):
        transformer = M.build_pixart(cfg).to(dtype)
        with torch.no_grad():  # random weights everywhere (the init zeroes some projections)
            for p in transformer.parameters():
                if p.abs().max() == 0:
                    p.normal_(0, 0.02)
        tok = train_tokenizer(W.corpus())
        t5 = T5EncoderModel(
            T.t5_config(len(tok), cfg.text_dim, cfg.text_layers, cfg.text_heads, cfg.text_ff)
        ).to(dtype)
        vae = M.build_autoencoder(cfg).to(dtype)
    save_pipeline(folder, Bundle("pixart", transformer, t5, tok, vae, scheduler_config("eps"), cfg.max_length))  # fmt: skip
    del transformer, t5, vae
    torch.cuda.empty_cache()
    t_built = time.time() - t_start
    params = None

    pipe = PixArtAlphaPipeline.from_pretrained(str(folder), torch_dtype=dtype).to(dev)
    pipe.set_progress_bar_config(disable=True)
    ours = load_pipeline(folder, device=dev, dtype=dtype)
    params = sum(p.numel() for p in ours.transformer.parameters())
    prompts = (PROMPTS * ((args.batch + len(PROMPTS) - 1) // len(PROMPTS)))[: args.batch]
    seeds = [
        0
    ] * args.batch  # what `mltk pixart generate p1 p2 ... --seed 0` uses: one seed per prompt

    def run_diffusers(steps):
        gens = [torch.Generator(dev).manual_seed(s) for s in seeds]
        out = pipe(prompts, num_inference_steps=steps, guidance_scale=4.5, generator=gens, height=args.size,
                   width=args.size, output_type="np", clean_caption=False, max_sequence_length=cfg.max_length,
                   use_resolution_binning=False).images  # fmt: skip
        return (out * 255).round().astype(np.uint8)

    def run_mltk(steps):
        return generate(ours, prompts, seeds=seeds, steps=steps, guidance=4.5, sampler="dpm",
                        batch_size=args.batch, device=dev)  # fmt: skip

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for fn in (run_diffusers, run_mltk):  # warm-up (kernels, allocator)
        fn(2)
    times = {"diffusers": [], "mltk": []}
    images = {}
    for _ in range(args.repeats):
        for name, fn in (("diffusers", run_diffusers), ("mltk", run_mltk)):
            sync()
            t0 = time.perf_counter()
            images[name] = fn(args.steps)
            sync()
            times[name].append(time.perf_counter() - t0)
    diff = np.abs(images["mltk"].astype(int) - images["diffusers"].astype(int))

    # The CLI end to end (its JSON reports images/s measured after loading the folder).
    buf = io.StringIO()
    out_dir = Path(tempfile.mkdtemp(prefix="pixart-cli-"))
    with redirect_stdout(buf):
        code = mltk_run(["pixart", "generate", str(folder), *prompts, "--device", dev.type, "--precision",
                         "bf16" if dtype == torch.bfloat16 else "fp32", "--batch-size", str(args.batch), "--steps", str(args.steps), "--out",
                         str(out_dir), "--json", "--quiet"],
                        extra_plugins=None if _installed() else {"pixart": pixart_plugin})  # fmt: skip
    cli = json.loads(buf.getvalue()) if code == 0 else {"error": f"exit code {code}"}
    cli_images = np.stack([np.asarray(__import__("PIL.Image").Image.open(f["file"])) for f in cli.get("images", [])]) \
        if code == 0 else None  # fmt: skip

    med = {k: statistics.median(v) for k, v in times.items()}
    ips = {k: args.batch / v for k, v in med.items()}
    result = {
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu (tiny-vae preset)",
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "transformer_params": params,
        "size": args.size,
        "batch": args.batch,
        "steps": args.steps,
        "guidance": 4.5,
        "t5_layers": args.t5_layers,
        "seconds_per_batch": med,
        "runs": times,
        "images_per_second": ips,
        "ratio_mltk_over_diffusers": ips["mltk"] / ips["diffusers"],
        "identical_images": bool((diff == 0).all()),
        "max_abs_pixel_diff": int(diff.max()),
        "cli_images_per_second": cli.get("images_per_second"),
        "cli_identical_to_diffusers": bool(
            cli_images is not None and np.array_equal(cli_images, images["diffusers"])
        ),
        "build_and_save_seconds": round(t_built, 1),
        "total_seconds": round(time.time() - t_start, 1),
    }
    model = "tiny-vae preset, fp32" if args.cpu else "bf16, PixArt-XL-2 width"
    print(f"\nGeneration speed: {result['device']}, {args.size}px, batch {args.batch}, DPM-Solver++ "
          f"{args.steps} steps, CFG 4.5, {model} ({params / 1e6:.1f}M params, random weights)\n")  # fmt: skip
    print("| runner | s / batch (median) | images / s | identical to diffusers |")
    print("| --- | --- | --- | --- |")
    print(
        f"| diffusers PixArtAlphaPipeline | {med['diffusers']:.3f} | {ips['diffusers']:.2f} | - |"
    )
    print(f"| mltk pixart generate (in-process) | {med['mltk']:.3f} | {ips['mltk']:.2f} | "
          f"{'yes' if result['identical_images'] else 'no, max diff ' + str(result['max_abs_pixel_diff'])} |")  # fmt: skip
    print(f"| mltk pixart generate (CLI, JSON) | - | {result['cli_images_per_second']} | "
          f"{'yes' if result['cli_identical_to_diffusers'] else 'no'} |")  # fmt: skip
    print(f"\nratio mltk / diffusers: {result['ratio_mltk_over_diffusers']:.3f}")
    text = json.dumps(result, indent=2)
    name = "cpu_speed.json" if args.cpu else "gpu_speed.json"
    (Path(__file__).parent / name).write_text(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"]).mkdir(parents=True, exist_ok=True)
        (Path(os.environ["OUT"]) / name).write_text(text)
    shutil.rmtree(folder.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
