"""Cell search on digits at a fixed budget: the tensor train against independent edges and CP.

    OMP_NUM_THREADS=1 python benchmarks/trace/nas.py [--seeds 3] [--device cpu|cuda]
    python benchmarks/trace/nas.py --table          # reprint the table of nas.json

Every distribution gets the same budget: the stochastic objective (score function, moving-average
baseline), the same epochs and steps, the same supernet and optimisers; only ``decomp`` changes.
The derived architecture (Viterbi) is retrained from scratch on train + val and scored on the
test set. The digits split is fixed (seed 0); the seeds vary the search and the retraining. For
reference, ``random`` retrains architectures drawn uniformly at random under the same budget.
``--data`` takes the CIFAR-10 binary archive instead (meant for a GPU, with a larger budget).
Prints a markdown table and writes nas.json next to this file (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch
from mltk_plugins.trace import nas

from mltk.device import resolve_device

HERE = Path(__file__).parent
DECOMPS = ("tt", "cp", "independent")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default="digits", help="digits or the CIFAR-10 binary archive")
    ap.add_argument("--epochs", type=int, default=10, help="search epochs")
    ap.add_argument("--retrain-epochs", type=int, default=15)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--cells", type=int, default=2)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--arch-lr", type=float, default=nas.Settings.arch_lr)
    ap.add_argument("--decomps", default=",".join(DECOMPS))
    ap.add_argument("--no-random", action="store_true", help="skip the random-architecture rows")
    ap.add_argument("--out", type=Path, default=HERE / "nas.json")
    ap.add_argument("--table", action="store_true", help="reprint the table of --out")
    args = ap.parse_args()
    if args.table:
        print_table(json.loads(args.out.read_text()))
        return
    torch.set_num_threads(1)
    device = resolve_device(args.device)
    data = nas.load_data(args.data, seed=0)
    base = nas.Settings(
        epochs=args.epochs,
        retrain_epochs=args.retrain_epochs,
        channels=args.channels,
        cells=args.cells,
        samples=args.samples,
        rank=args.rank,
        arch_lr=args.arch_lr,
    )
    runs = []
    for decomp in args.decomps.split(","):
        s = nas.Settings(**{**asdict(base), "decomp": decomp})
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            _, dist, history = nas.search(data, s, seed=seed, device=device)
            search_s = time.perf_counter() - t0
            arch = nas.derive(dist)
            out = nas.retrain(data, arch, s, seed=seed, device=device)
            runs.append(
                {
                    "decomp": decomp,
                    "seed": seed,
                    "arch": arch,
                    "text": out["text"],
                    "p_arch": history[-1]["p_arch"],
                    "val_acc": history[-1]["val_acc"],
                    "search_seconds": search_s,
                    "steps_per_s": statistics.mean(r["steps_per_s"] for r in history),
                    "test_acc": out["test_acc"],
                    "retrain_seconds": out["seconds"],
                }
            )
            r = runs[-1]
            print(
                f"{decomp} seed {seed}: test {r['test_acc']:.4f}, search {search_s:.1f} s, "
                f"P(arch) {r['p_arch']:.3g}: {r['text']}",
                flush=True,
            )
    if not args.no_random:
        g = torch.Generator().manual_seed(12345)
        for seed in range(args.seeds):
            arch = torch.randint(0, len(nas.OPS), (len(nas.EDGES),), generator=g).tolist()
            out = nas.retrain(data, arch, base, seed=seed, device=device)
            runs.append(
                {
                    "decomp": "random",
                    "seed": seed,
                    "arch": arch,
                    "text": out["text"],
                    "test_acc": out["test_acc"],
                    "retrain_seconds": out["seconds"],
                }
            )
            print(f"random seed {seed}: test {out['test_acc']:.4f}: {out['text']}", flush=True)
    result = {
        "data": data["name"],
        "settings": asdict(base),
        "objective": base.objective,
        "device": _device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "runs": runs,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, 1 thread)"


def _mean_sd(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.mean(values), fmt)} ± {format(sd, fmt)}"


def print_table(result: dict) -> None:
    s = result["settings"]
    print(
        f"\n{result['data']}, {result['objective']} objective, {s['epochs']} search epochs "
        f"({s['samples']} architectures per step), {s['retrain_epochs']} retrain epochs, "
        f"C={s['channels']}, {s['cells']} cells, rank {s['rank']}, arch lr {s['arch_lr']}; "
        f"device: {result['device']}\n"
    )
    print(
        "| distribution | seeds | test acc (retrained) | val acc (supernet) | P(derived) "
        "| search s | steps/s |"
    )
    print("|---|---|---|---|---|---|---|")
    names = list(dict.fromkeys(r["decomp"] for r in result["runs"]))
    for name in names:
        rows = [r for r in result["runs"] if r["decomp"] == name]
        searched = [r for r in rows if "search_seconds" in r]

        def col(key, fmt, rows=searched):
            return _mean_sd([r[key] for r in rows], fmt)

        print(
            f"| {name} | {len(rows)} | {_mean_sd([r['test_acc'] for r in rows], '.4f')} "
            f"| {col('val_acc', '.4f')} | {col('p_arch', '.2g')} | {col('search_seconds', '.1f')} "
            f"| {col('steps_per_s', '.1f')} |"
        )


if __name__ == "__main__":
    main()
