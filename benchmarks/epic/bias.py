"""EPIC against ALBEF and the ablations on the colour-biased shapes world, equal steps.

    OMP_NUM_THREADS=1 python benchmarks/epic/bias.py [--seeds 3] [--start-steps 2000]
        [--steps 1000] [--objectives albef,epic,rtd-random,salient-mask] [--weights 1,50]
        [--table]

Per seed, one ALBEF run (`mltk epic train --objective albef --steps START`) is the common
start; each objective then continues from it (`--init`) for `--steps` more: ALBEF's own
objective, EPIC, random-mask replaced-token detection (rtd-random) and salient masking with
[MASK] (salient-mask). Every row has the same steps and the same first START of them. EPIC
continues rather than starts because its saliency reads the momentum model's ITM score, which
says nothing before ITM has learnt (the plugin's docs show it). 6,000 pairs of the world whose
shapes take their own colour with probability 0.8; runs cached under runs/bench-epic.

Scored on 400 counterfactual test images (no shape in its own colour): retrieval R@1 both ways
(ITC then ITM re-ranking), hard-negative ITM accuracy (one attribute word changed; overall and
per attribute), visual reliance (masked attribute-word accuracy with the image minus with a
blank image; overall and for colour words), per-token inconsistency AUC (the consistency head
for epic and rtd-random, the MLM's pseudo-likelihood for the others) and wall seconds of the
continuation.

`--weights` adds a sweep of EPIC's loss weight (seed 0 only; the paper's value is unverified);
`--bias` another world (its runs and rows are kept apart; the tables of the docs read 0.8).
Prints markdown tables (mean ± std over seeds) and writes bias.json beside this file after each
run; a second call runs only what is missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import mltk

HERE = Path(__file__).parent
RUNS = Path("runs/bench-epic")
OBJECTIVES = ("albef", "epic", "rtd-random", "salient-mask")
BIAS = 0.8
KEYS = (
    "i2t_r@1",
    "t2i_r@1",
    "itm_hard",
    "itm_hard_colour",
    "itm_hard_shape",
    "itm_hard_position",
    "itm_hard_count",
    "reliance",
    "reliance_colour",
    "mlm_acc",
    "mlm_acc_colour",
    "mlm_acc_blank_colour",
    "token_auc",
)


def _tag(bias: float) -> str:
    return "" if bias == BIAS else f"bias{bias:g}-"


def start(seed: int, steps: int, threads: int, bias: float = 0.8) -> Path:
    out = RUNS / f"{_tag(bias)}albef-start{steps}-{seed}"
    if not (out / "model" / "epic.json").is_file():
        mltk.run(
            "epic",
            "train",
            objective="albef",
            seed=seed,
            steps=steps,
            bias=bias,
            out=str(out),
            quiet=True,
            threads=threads,
        )
    return out


def run_one(
    objective: str,
    seed: int,
    first: int,
    steps: int,
    weight: float | None,
    threads: int,
    bias: float = 0.8,
) -> dict:
    init = start(seed, first, threads, bias)
    tag = "" if weight is None else f"-w{weight:g}"
    out = RUNS / f"{_tag(bias)}{objective}{tag}-{first}+{steps}-{seed}"
    extra = {} if weight is None else {"epic_weight": weight}
    res = mltk.run(
        "epic",
        "train",
        init=str(init),
        objective=objective,
        seed=seed,
        steps=steps,
        bias=bias,
        out=str(out),
        quiet=True,
        threads=threads,
        **extra,
    )
    scores = json.loads((out / "eval.json").read_text())
    return {
        "objective": objective,
        "seed": seed,
        "start_steps": first,
        "steps": steps,
        "epic_weight": weight,
        "bias": bias,
        **{k: scores.get(k) for k in KEYS},
        "token_scorer": scores.get("token_scorer"),
        "seconds": res["seconds"],
    }


def _ms(values, digits=3) -> str:
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    if len(v) < 2:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.mean(v):.{digits}f} ± {statistics.stdev(v):.{digits}f}"


def print_table(rows: list[dict]) -> None:
    print(
        "| objective | seeds | i2t R@1 | t2i R@1 | ITM hard | colour | shape | position "
        "| count | reliance | colour reliance | token AUC | seconds |"
    )
    print("| --- " * 13 + "|")
    for obj in OBJECTIVES:
        g = [
            r
            for r in rows
            if r["objective"] == obj and r["epic_weight"] is None and r.get("bias", BIAS) == BIAS
        ]
        if not g:
            continue
        cells = [_ms([r[k] for r in g]) for k in KEYS if not k.startswith("mlm_acc")]
        print(
            f"| {obj} | {len(g)} | "
            + " | ".join(cells)
            + f" | {_ms([r['seconds'] for r in g], 0)} |"
        )
    sweep = [r for r in rows if r["epic_weight"] is not None]
    if sweep:
        print("\n| EPIC weight | ITM hard | colour reliance | token AUC | i2t R@1 |")
        print("| --- | --- | --- | --- | --- |")
        for r in sorted(sweep, key=lambda r: r["epic_weight"]):
            print(
                f"| {r['epic_weight']:g} | {r['itm_hard']:.3f} | {r['reliance_colour']:.3f} "
                f"| {r['token_auc']:.3f} | {r['i2t_r@1']:.3f} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds FIRST .. FIRST+SEEDS-1")
    ap.add_argument("--start-steps", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--weights", default="", help="EPIC loss weights to sweep (seed 0)")
    ap.add_argument("--bias", type=float, default=BIAS, help="the world's colour bias")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    out = HERE / "bias.json"

    def read() -> list[dict]:
        return json.loads(out.read_text())["rows"] if out.is_file() else []

    if args.table:
        print_table(read())
        return
    import os

    import torch

    from mltk import atomic

    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    objectives = args.objectives.split(",")
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        ap.error(f"unknown objective {unknown[0]!r}; known: {', '.join(OBJECTIVES)}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    todo = [(o, s, None) for s in seeds for o in objectives]
    todo += [("epic", 0, float(w)) for w in args.weights.split(",") if w]
    for obj, seed, weight in todo:
        key = (obj, seed, weight, args.start_steps, args.steps, args.bias)
        if any(_key(r) == key for r in read()):
            continue
        r = run_one(obj, seed, args.start_steps, args.steps, weight, threads, args.bias)
        print(
            f"{obj} seed {seed}{'' if weight is None else f' weight {weight:g}'}: ITM hard "
            f"{r['itm_hard']:.3f}, colour reliance {r['reliance_colour']:.3f}, token AUC "
            f"{r['token_auc']:.3f}, i2t R@1 {r['i2t_r@1']:.3f}",
            file=sys.stderr,
            flush=True,
        )
        rows = read() + [r]  # re-read: calls with other --first-seed values share the file
        text = json.dumps({"rows": rows, "torch": torch.__version__}, indent=1) + "\n"
        atomic.write_text(out, text)
    print_table(read())


def _key(r: dict) -> tuple:
    return (
        r["objective"],
        r["seed"],
        r["epic_weight"],
        r["start_steps"],
        r["steps"],
        r.get("bias", BIAS),
    )


if __name__ == "__main__":
    main()
