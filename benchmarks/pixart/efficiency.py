"""Benchmark (b): the paper's training-efficiency claims at toy scale, on the procedural world.

For each seed:

- ``three-stage, dense``: stage 1 (``pixel``, class-conditional) for ``--pixel-steps``, then
  stage 2 (``align``) from its re-parameterised weights on dense captions;
- ``scratch, dense``: stage 2 from a random initialisation, dense captions;
- ``three-stage, short``: as the first, but with short captions.

Every ``--eval-every`` steps the EMA weights generate the held-out prompts (dense captions of
unseen scenes, DPM-Solver++ ``--sample-steps``, CFG 4.5) and the attribute classifier scores
them. Reported: stage-2 steps until ``acc_colour`` (every object's colour right) reaches
``--threshold``, and the final per-attribute accuracies, as mean +- std over seeds.

    OMP_NUM_THREADS=1 nice python benchmarks/pixart/efficiency.py            # the README table
    python benchmarks/pixart/efficiency.py --seeds 0 --align-steps 40 ...     # a quick look

Prints a markdown table and writes efficiency.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from mltk_plugins.pixart.config import preset
from mltk_plugins.pixart.training import run_training, steps_to_score

from mltk.data.captioned import world_dataset
from mltk.runs import RunDir
from mltk.runtime import setup
from mltk.t2i.evaluation import alignment_probe
from mltk.t2i.features import FeatureStore

ARMS = {
    "three-stage, dense": ("pixel", "dense"),
    "scratch, dense": (None, "dense"),
    "three-stage, short": ("pixel", "short"),
}


def print_table(results: dict, args: dict) -> None:
    """Per-seed steps to the threshold, mean accuracy curves, and final scores (mean over seeds)."""
    seeds = len(next(iter(results.values())))
    steps = [c["step"] for c in next(iter(results.values()))[0]["curve"]]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    depth = f"{args['layers']}-block" if args.get("layers") else "4-block"
    print(f"\nToy-scale training efficiency, tiny-pixel preset with {depth} transformer "
          f"({seeds} seeds; stage 1 = {args['pixel_steps']} steps, stage 2 = "
          f"{args['align_steps']} steps; {args['eval_prompts']} held-out prompts, DPM-Solver++ "
          f"{args['sample_steps']} steps, CFG 4.5)\n")  # fmt: skip
    head = " | ".join(f"colour @{s}" for s in steps)
    print(
        f"| recipe | stage-2 steps to colour >= {args['threshold']} (per seed) | {head} | position | count | all |"
    )
    print("| --- | --- | " + " | ".join("---" for _ in steps) + " | --- | --- | --- |")
    for arm, rows in results.items():
        reach = ", ".join(
            str(r["steps_to_threshold"]) if r["steps_to_threshold"] else "-" for r in rows
        )
        curve = " | ".join(
            f"{mean([r['curve'][k]['acc_colour'] for r in rows]):.3f}" for k in range(len(steps))
        )
        final = " | ".join(
            f"{mean([r['final'][f'acc_{a}'] for r in rows]):.3f}"
            for a in ("position", "count", "all")
        )
        print(f"| {arm} | {reach} | {curve} | {final} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pixel-steps", type=int, default=200)
    ap.add_argument("--align-steps", type=int, default=400)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-prompts", type=int, default=48)
    ap.add_argument("--sample-steps", type=int, default=10)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument(
        "--layers", type=int, default=None, help="override the tiny-pixel preset's depth"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--table", action="store_true", help="print the table of the saved efficiency.json"
    )
    args = ap.parse_args()
    if args.table:
        saved = json.loads((Path(__file__).parent / "efficiency.json").read_text())
        print_table(saved["results"], saved["args"])
        return
    torch.set_num_threads(args.threads)
    changes = {"log_every": args.eval_every, "save_every": 10**9}
    if args.layers:
        changes["num_layers"] = args.layers
    probe = alignment_probe(args.eval_prompts, steps=args.sample_steps)
    root = Path(tempfile.mkdtemp(prefix="pixart-eff-"))
    store = FeatureStore()
    results: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    t_all = time.time()
    for seed in args.seeds:
        rt = setup(device="cpu", seed=seed, quiet=True)
        data = world_dataset(preset("tiny-pixel").dataset_size, 0)
        cfg1 = preset("tiny-pixel", stage="pixel", steps=args.pixel_steps, **changes)
        run1 = RunDir.create("pixart", out=root / f"s{seed}-pixel")
        s1 = run_training(cfg1, data, run=run1, rt=rt, store=store)
        for arm, (init, mode) in ARMS.items():
            rt = setup(device="cpu", seed=seed, quiet=True)
            cfg = preset(
                "tiny-pixel", stage="align", steps=args.align_steps, caption_mode=mode, **changes
            )
            run = RunDir.create("pixart", out=root / f"s{seed}-{arm.replace(', ', '-')}")
            t0 = time.time()
            s = run_training(cfg, data, run=run, rt=rt, init=run1.path if init else None, store=store,
                             probe=probe, probe_every=args.eval_every)  # fmt: skip
            hist = s["history"]
            results[arm].append({
                "seed": seed,
                "steps_to_threshold": steps_to_score(hist, "acc_colour", args.threshold),
                "final": {k: v for k, v in hist[-1].items() if k.startswith("acc_") or k in ("frechet", "text_gap")},
                "curve": [{k: r[k] for k in r if k == "step" or k.startswith("acc_") or k == "frechet"} for r in hist],
                "seconds": round(time.time() - t0, 1),
                "pixel_seconds": s1["seconds"] if init else 0.0,
            })  # fmt: skip
            print(f"seed {seed} {arm}: {results[arm][-1]['final']} "
                  f"steps->{args.threshold}: {results[arm][-1]['steps_to_threshold']}", flush=True)  # fmt: skip

    print_table(results, vars(args))
    out = {"args": vars(args), "results": results, "seconds": round(time.time() - t_all, 1)}
    (Path(__file__).parent / "efficiency.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
