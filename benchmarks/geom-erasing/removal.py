"""Implicit concept removal on the shapes world: Geom-Erasing against every baseline, in the
data setting and the model setting, on the same code and step budget.

    OMP_NUM_THREADS=2 python benchmarks/geom-erasing/removal.py [--concepts qr,watermark,text]
        [--seeds 3] [--settings data,model] [--steps 400] [--prompts 200] [--table]

Data setting (per concept and seed s): the shipped tiny PixArt model is fine-tuned for --steps
steps on the world (seed s) with the concept drawn into a corner of 75% of the images, by each
method: plain, name (the concept's name in the captions, no location), geom (name and location
tokens), mask (loss weight 0 in the boxes), esd (the plain fine-tune, then ESD-x on the name
for --steps iterations at their lr 1e-5). Sampled rows: plain; plain with the name as negative
prompt; name and geom with their run's negative prompt (geom: every cell, and the frequent
ones); mask; esd. Model setting: the data setting's plain run is the base that paints the
concept; each method fine-tunes it on 2000 images it generated, boxes from the shipped detector.

Scores on --prompts held-out world prompts (seed = image index, 20 DPM-Solver++ steps, guidance
4.5): ICR, the share of images in which the shipped detector fires (and, as a cross-check, one
trained from seed 1); prompt alignment (all attributes right) and Fréchet distance to clean
world images in the attribute classifier's features; training seconds. Prints a markdown
table (mean ± std over seeds) and writes removal.json beside this file; --table reprints it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import mltk

HERE = Path(__file__).parent
RUNS = Path("runs/bench-geom-erasing")
# (row, method of the run, negative prompt at sampling: None = the run's own)
ROWS = [
    ("plain", "plain", None),
    ("plain + name negative", "plain", "NAME"),
    ("name", "name", None),
    ("mask", "mask", None),
    ("esd", "esd", None),
    ("geom", "geom", None),
    ("geom, frequent cells", "geom", "FREQUENT"),
]
WORDS = {"qr": "qr code", "watermark": "watermark", "text": "text"}


def erase(concept, method, seed, steps, setting, base=None) -> tuple[Path, float]:
    out = RUNS / f"{setting}-{concept}-{method}-{seed}"
    if (out / "pipeline" / "model_index.json").is_file():
        return out, json.loads((out / "bench.json").read_text())["seconds"]
    values = dict(
        concept=concept,
        method=method,
        steps=steps,
        seed=seed,
        world_seed=seed,
        out=str(out),
        quiet=True,
        threads=2,
        esd_steps=steps,
        lr=1e-3,
    )
    if setting == "model":
        values.update(base=str(base), setting="model")
    t0 = time.perf_counter()
    mltk.run("geom-erasing", "erase", **values)
    seconds = time.perf_counter() - t0
    (out / "bench.json").write_text(json.dumps({"seconds": seconds}))
    return out, seconds


def score(run: Path, concept: str, negative, prompts: int) -> dict:
    values = dict(runs=[str(run)], prompts=prompts, cross_check=1, quiet=True, threads=2)
    if negative == "NAME":
        values["negative_prompt"] = WORDS[concept]
    elif negative == "FREQUENT":
        values["negative_cells"] = "frequent"
    row = mltk.run("geom-erasing", "eval", **values)["runs"][0]
    return {
        "icr": row[f"icr_{concept}"],
        "icr_cross": row[f"icr_{concept}_cross"],
        "alignment": row["alignment"],
        "frechet": row["frechet"],
        "negative_prompt": row["negative_prompt"],
    }


def run_all(concepts, seeds, settings, steps, prompts, log) -> list[dict]:
    rows = []
    for concept in concepts:
        for seed in range(seeds):
            plain_run = None
            for setting in settings:
                runs = {}
                for method in ("plain", "name", "mask", "esd", "geom"):
                    if setting == "model" and method == "plain":
                        runs[method] = (plain_run, 0.0)  # the base itself
                        continue
                    base = plain_run if setting == "model" else None
                    if setting == "model" and base is None:
                        base, _ = erase(concept, "plain", seed, steps, "data")
                        plain_run = base
                    runs[method] = erase(concept, method, seed, steps, setting, base)
                    if setting == "data" and method == "plain":
                        plain_run = runs[method][0]
                for name, method, negative in ROWS:
                    run, seconds = runs[method]
                    r = {
                        "setting": setting,
                        "concept": concept,
                        "seed": seed,
                        "row": name,
                        "train_seconds": round(seconds, 1),
                        **score(run, concept, negative, prompts),
                    }
                    log(
                        f"{setting} {concept} seed {seed} {name}: ICR {r['icr']:.3f} "
                        f"(cross {r['icr_cross']:.3f}), alignment {r['alignment']:.3f}"
                    )
                    rows.append(r)
    return rows


def _ms(values, digits=3) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def print_table(rows: list[dict]) -> None:
    for setting in dict.fromkeys(r["setting"] for r in rows):
        for concept in dict.fromkeys(r["concept"] for r in rows):
            rs = [r for r in rows if r["setting"] == setting and r["concept"] == concept]
            if not rs:
                continue
            n = len({r["seed"] for r in rs})
            print(f"\n{setting} setting, {concept}, {n} seed{'s' if n > 1 else ''}\n")
            print("| method | ICR | ICR (cross-check) | alignment | Fréchet | train s |")
            print("| --- | --- | --- | --- | --- | --- |")
            for name, _, _ in ROWS:
                g = [r for r in rs if r["row"] == name]
                if not g:
                    continue
                print(
                    f"| {name} | {_ms([r['icr'] for r in g])} | {_ms([r['icr_cross'] for r in g])} "
                    f"| {_ms([r['alignment'] for r in g])} | {_ms([r['frechet'] for r in g], 0)} "
                    f"| {_ms([r['train_seconds'] for r in g], 0)} |"
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concepts", default="qr,watermark,text")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--settings", default="data,model")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--table", action="store_true", help="reprint the table of removal.json")
    args = ap.parse_args()
    out = HERE / "removal.json"
    if args.table:
        print_table(json.loads(out.read_text())["rows"])
        return
    import sys

    import torch

    torch.set_num_threads(2)
    rows = run_all(
        args.concepts.split(","),
        args.seeds,
        args.settings.split(","),
        args.steps,
        args.prompts,
        lambda m: print(m, file=sys.stderr, flush=True),
    )
    old = json.loads(out.read_text())["rows"] if out.is_file() else []
    keep = [
        r
        for r in old
        if (r["setting"], r["concept"], r["seed"])
        not in {(r["setting"], r["concept"], r["seed"]) for r in rows}
    ]
    res = {
        "rows": keep + rows,
        "steps": args.steps,
        "prompts": args.prompts,
        "torch": torch.__version__,
    }
    out.write_text(json.dumps(res, indent=1) + "\n")
    print_table(keep + rows)


if __name__ == "__main__":
    main()
