"""Implicit concept removal on the shapes world: Geom-Erasing against every baseline, in the
data setting and the model setting, on the same code and step budget.

    OMP_NUM_THREADS=2 python benchmarks/geom-erasing/removal.py [--concepts qr,watermark,text]
        [--seeds 3] [--first-seed 0] [--settings data,model] [--steps 400] [--prompts 200]
        [--table] [--train-only] [--rescore]

Data setting (per concept and seed s): the shipped tiny PixArt model is fine-tuned for --steps
steps on the world (seed s) with the concept drawn into a corner of 75% of the images, by each
method: plain, name (the concept's name in the captions, no location), geom (name and location
tokens), mask (loss weight 0 in the boxes), esd (the plain fine-tune, then ESD-x on the name
for --steps iterations at their lr 1e-5). Sampled rows: plain; plain with the name as negative
prompt; name and geom with their run's negative prompt (geom: every cell, and the frequent
ones, and without a negative prompt); mask; esd; and the tiny model before fine-tuning (the
detector's false alarms). Model setting: the data setting's plain run is the base that paints the
concept; each method fine-tunes it on 2000 images it generated, boxes from the shipped detector.

Scores on --prompts held-out world prompts (seed = image index, 20 DPM-Solver++ steps, guidance
4.5): ICR, the share of images in which the shipped detector fires (and, as a cross-check, one
trained from seed 1); prompt alignment (all attributes right) and Fréchet distance to clean
world images in the attribute classifier's features; training seconds. Prints a markdown
table (mean ± std over seeds) and writes removal.json beside this file after each setting,
concept and seed; a second call scores only the rows it lacks (--rescore: all again), and
--table reprints it. --train-only trains the data setting's runs without scoring them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import mltk

HERE = Path(__file__).parent
THREADS = int(os.environ.get("OMP_NUM_THREADS", "2"))
RUNS = Path("runs/bench-geom-erasing")
# (row, method of the run, negative prompt at sampling: None = the run's own)
ROWS = [
    ("tiny model before fine-tuning", "base", None),
    ("plain", "plain", None),
    ("plain + name negative", "plain", "NAME"),
    ("name", "name", None),
    ("mask", "mask", None),
    ("esd", "esd", None),
    ("geom", "geom", None),
    ("geom, frequent cells", "geom", "FREQUENT"),
    ("geom, no negative prompt", "geom", ""),
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
        threads=THREADS,
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
    values = dict(
        runs=[str(run)],
        prompts=prompts,
        cross_check=1,
        quiet=True,
        threads=THREADS,
        concept=concept,
    )
    if negative == "NAME":
        values["negative_prompt"] = WORDS[concept]
    elif negative == "":
        values["erase"] = False
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


def run_all(
    concepts, seeds, settings, steps, prompts, log, save, train_only=False, first=0, done=()
):
    """Every (setting, concept, seed): its erase runs, then its rows that ``done`` (a set of
    (setting, concept, seed, row)) lacks, handed to ``save``."""
    from mltk_plugins.geom_erasing.detector import DETECTOR_VERSION

    from mltk.t2i import TINY_MODEL

    for seed in range(first, seeds):
        for concept in concepts:
            plain_run = None
            for setting in settings:
                wanted = [
                    (name, method, negative)
                    for name, method, negative in ROWS
                    if (setting, concept, seed, name) not in done
                    and not (method == "base" and (setting != "data" or seed != 0))
                ]  # the tiny model is the same for every seed; the model setting's is plain
                if (setting == "model" and train_only) or not wanted:
                    continue  # the model setting's data comes from the detector
                runs = {"base": (TINY_MODEL, 0.0)}
                if setting == "model" and plain_run is None:
                    plain_run, _ = erase(concept, "plain", seed, steps, "data")
                for method in ("plain", "name", "mask", "esd", "geom"):
                    if setting == "model" and method == "plain":
                        runs[method] = (plain_run, 0.0)  # the base itself
                        continue
                    base = plain_run if setting == "model" else None
                    runs[method] = erase(concept, method, seed, steps, setting, base)
                    if setting == "data" and method == "plain":
                        plain_run = runs[method][0]
                if train_only:
                    continue
                rows = []
                for name, method, negative in wanted:
                    run, seconds = runs[method]
                    r = {
                        "setting": setting,
                        "concept": concept,
                        "seed": seed,
                        "row": name,
                        "detector": DETECTOR_VERSION,
                        "train_seconds": round(seconds, 1),
                        **score(run, concept, negative, prompts),
                    }
                    log(
                        f"{setting} {concept} seed {seed} {name}: ICR {r['icr']:.3f} "
                        f"(cross {r['icr_cross']:.3f}), alignment {r['alignment']:.3f}"
                    )
                    rows.append(r)
                save(rows)


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
    ap.add_argument("--first-seed", type=int, default=0, help="skip the seeds before it")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--table", action="store_true", help="reprint the table of removal.json")
    ap.add_argument("--rescore", action="store_true", help="score again what removal.json holds")
    ap.add_argument(
        "--train-only", action="store_true", help="only the data setting's erase runs, no scores"
    )
    args = ap.parse_args()
    out = HERE / "removal.json"
    if args.table:
        print_table(json.loads(out.read_text())["rows"])
        return
    import sys

    import torch

    from mltk import atomic

    torch.set_num_threads(THREADS)

    from mltk_plugins.geom_erasing.detector import DETECTOR_VERSION

    old = json.loads(out.read_text())["rows"] if out.is_file() else []
    done = {
        (r["setting"], r["concept"], r["seed"], r["row"])
        for r in old
        if r.get("detector") == DETECTOR_VERSION and not args.rescore
    }

    def save(rows):
        new = {(r["setting"], r["concept"], r["seed"], r["row"]) for r in rows}
        old = json.loads(out.read_text())["rows"] if out.is_file() else []
        keep = [
            r
            for r in old
            if (r["setting"], r["concept"], r["seed"], r["row"]) not in new
            and r.get("detector") == DETECTOR_VERSION  # rows of an older detector go
        ]
        res = {
            "rows": keep + rows,
            "steps": args.steps,
            "prompts": args.prompts,
            "torch": torch.__version__,
        }
        atomic.write_text(out, json.dumps(res, indent=1) + "\n")

    run_all(
        args.concepts.split(","),
        args.seeds,
        args.settings.split(","),
        args.steps,
        args.prompts,
        lambda m: print(m, file=sys.stderr, flush=True),
        save,
        train_only=args.train_only,
        first=args.first_seed,
        done=done,
    )
    if not args.train_only:
        print_table(json.loads(out.read_text())["rows"])


if __name__ == "__main__":
    main()
