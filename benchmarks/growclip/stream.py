"""GrowCLIP against fixed-size training on the shapes world stream: three arrivals (1,500 ->
4,500 -> 13,500 pairs, the curriculum adding pairs then counts), equal steps per arrival.

    OMP_NUM_THREADS=1 python benchmarks/growclip/stream.py [--seeds 3] [--steps 600]
        [--methods small,large,large-continued,manual,plain,growclip,small-equal] [--table]

Methods (each a `mltk growclip` call; runs cached under runs/bench-growclip):

- fixed small: width 32, 2 layers, continued on each arrival (train);
- fixed large: width 64, 4 layers, a new model at each arrival trained from scratch on every
  pair seen (train --each-arrival restart): what a team that retrains a bigger model does;
- fixed large, continued: the same model trained on each arrival in turn (with replay);
- manual growth: grow --schedule depth+1,width2;
- GrowCLIP, plain inheritance: grow --inherit plain (the search, no PIM);
- GrowCLIP: grow (the search and PIM);
- fixed small, equal FLOPs: the small model with its steps scaled so that its cumulative
  training FLOPs equal GrowCLIP's of the same seed.

Scores after the last arrival on 600 held-out images: zero-shot top-1 per task (colour-shape,
position, count) and their mean, retrieval R@1 both ways; cumulative training FLOPs (the
search's proxy training included); wall seconds. Prints a markdown table (mean ± std over seeds)
and writes stream.json beside this file after each run; a second call runs only what is missing.

`--steps N` other than 600 is the probe of whether capacity binds with more training: its runs
go to runs/bench-growclip/steps-N and its rows to stream-stepsN.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import mltk

HERE = Path(__file__).parent
RUNS = Path("runs/bench-growclip")
STEPS = 600
SMALL = {"width": 32, "layers": 2, "heads": 2}
LARGE = {"width": 64, "layers": 4, "heads": 4}
METHODS = {
    "fixed small": ("train", {**SMALL}),
    "fixed large": ("train", {**LARGE, "each_arrival": "restart"}),
    "fixed large, continued": ("train", {**LARGE}),
    "manual growth": ("grow", {**SMALL, "schedule": "depth+1,width2"}),
    "GrowCLIP, plain inheritance": ("grow", {**SMALL, "inherit": "plain"}),
    "GrowCLIP": ("grow", {**SMALL}),
    "fixed small, equal FLOPs": ("train", {**SMALL}),
}
KEYS = {
    "small": "fixed small",
    "large": "fixed large",
    "large-continued": "fixed large, continued",
    "manual": "manual growth",
    "plain": "GrowCLIP, plain inheritance",
    "growclip": "GrowCLIP",
    "small-equal": "fixed small, equal FLOPs",
}
TASKS = ("colour-shape", "position", "count")


def run_one(method: str, seed: int, steps: int, threads: int, rows: list[dict], runs: Path) -> dict:
    verb, values = METHODS[method]
    values = dict(values)
    if method == "fixed small, equal FLOPs":
        grown = [r for r in rows if r["method"] == "GrowCLIP" and r["seed"] == seed]
        small = [r for r in rows if r["method"] == "fixed small" and r["seed"] == seed]
        if not grown or not small:
            raise SystemExit(f"run GrowCLIP and fixed small of seed {seed} first")
        scale = grown[0]["cumulative_flops"] / small[0]["cumulative_flops"]
        values["steps"] = max(1, round(steps * scale))
    else:
        values["steps"] = steps
    out = runs / f"{method.replace(' ', '-').replace(',', '')}-{seed}"
    res = mltk.run(
        "growclip", verb, arrivals=3, seed=seed, out=str(out), quiet=True, threads=threads, **values
    )
    history = json.loads((out / "growth.json").read_text())["arrivals"]
    last = history[-1]
    return {
        "method": method,
        "seed": seed,
        "steps": values["steps"],
        "growth": [h["growth"] for h in history],
        "architecture": res["architecture"],
        "params": res["params"],
        "cumulative_flops": res["cumulative_flops"],
        "zero_shot_mean": last["zero_shot_mean"],
        **{f"zero_shot_{t}": last[f"zero_shot_{t}"] for t in TASKS},
        "i2t_r@1": last["i2t_r@1"],
        "t2i_r@1": last["t2i_r@1"],
        "seconds": res["seconds"],
    }


def _ms(values, scale=1.0, digits=3) -> str:
    v = [x * scale for x in values]
    if len(v) < 2:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.mean(v):.{digits}f} ± {statistics.stdev(v):.{digits}f}"


def print_table(rows: list[dict]) -> None:
    print(
        "| method | seeds | zero-shot mean | colour-shape | position | count | i2t R@1 | "
        "t2i R@1 | params | TFLOPs | seconds |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for method in METHODS:
        g = [r for r in rows if r["method"] == method]
        if not g:
            continue
        print(
            f"| {method} | {len(g)} | {_ms([r['zero_shot_mean'] for r in g])} | "
            + " | ".join(_ms([r[f"zero_shot_{t}"] for r in g]) for t in TASKS)
            + f" | {_ms([r['i2t_r@1'] for r in g])} | {_ms([r['t2i_r@1'] for r in g])} | "
            f"{_ms([r['params'] for r in g], digits=0)} | "
            f"{_ms([r['cumulative_flops'] for r in g], 1e-12, 2)} | "
            f"{_ms([r['seconds'] for r in g], digits=0)} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=STEPS, help="training steps per arrival")
    ap.add_argument(
        "--methods", default=",".join(KEYS), help=f"comma-separated, of {', '.join(KEYS)}"
    )
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    out = HERE / ("stream.json" if args.steps == STEPS else f"stream-steps{args.steps}.json")
    runs = RUNS if args.steps == STEPS else RUNS / f"steps-{args.steps}"
    rows = json.loads(out.read_text())["rows"] if out.is_file() else []
    if args.table:
        print_table(rows)
        return
    import os

    import torch

    from mltk import atomic

    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    unknown = [k for k in args.methods.split(",") if k not in KEYS]
    if unknown:
        ap.error(f"unknown method {unknown[0]!r}; known: {', '.join(KEYS)}")
    for method in (KEYS[k] for k in args.methods.split(",")):
        for seed in range(args.seeds):
            if any(r["method"] == method and r["seed"] == seed for r in rows):
                continue
            r = run_one(method, seed, args.steps, threads, rows, runs)
            print(
                f"{method} seed {seed}: zero-shot {r['zero_shot_mean']:.3f}, "
                f"{r['cumulative_flops'] / 1e12:.2f} TFLOPs, {r['architecture']}",
                file=sys.stderr,
                flush=True,
            )
            rows.append(r)
            res = {"rows": rows, "steps": args.steps, "torch": torch.__version__}
            atomic.write_text(out, json.dumps(res, indent=1) + "\n")
    print_table(rows)


if __name__ == "__main__":
    main()
