"""Train the tiny EPIC model that ships with mltk (plugins/epic/weights/tiny) and copy it there.

    OMP_NUM_THREADS=1 python benchmarks/epic/ship_tiny.py [--albef-steps 2000] [--steps 1000]

Two `mltk epic train` runs with the defaults (the small preset: width 64, 2 + 2 + 2 layers,
6,000 pairs of the colour-biased world, seed 0): ALBEF's objective, then EPIC's from that model
(`--init`): EPIC's saliency reads the momentum model's ITM score, which says little until ITM
has learnt something. The copy leaves out momentum.safetensors (the momentum encoders and
queues matter to continued training only), so `mltk epic check` needs no run folder. About ten
minutes on one core.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import mltk

TARGET = Path(__file__).resolve().parents[2] / "plugins" / "epic" / "weights" / "tiny"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--albef-steps", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--out", default="runs/epic-ship")
    args = ap.parse_args()
    first = args.out + "-albef"
    mltk.run("epic", "train", objective="albef", steps=args.albef_steps, out=first, quiet=True)
    res = mltk.run("epic", "train", init=first, steps=args.steps, out=args.out, quiet=True)
    src = Path(args.out) / "model"
    tmp = TARGET.with_name("tiny.new")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("momentum.safetensors"))
    shutil.copy(Path(args.out) / "eval.json", tmp / "eval.json")
    shutil.rmtree(TARGET, ignore_errors=True)
    tmp.rename(TARGET)
    keys = ("itm_hard", "reliance_colour", "token_auc", "i2t_r@1", "t2i_r@1")
    print(json.dumps({k: res.get(k) for k in keys}, indent=1))


if __name__ == "__main__":
    main()
