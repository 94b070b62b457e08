"""AE-SAM against ERM, SAM, AE-LookSAM, LookSAM and SS-SAM on scikit-learn's digits with label noise.

One run of this script produces the README table:

    OMP_NUM_THREADS=1 nice python benchmarks/aesam/bench_digits.py

Every optimizer uses the same model (MLP 64-256-256-10), data, batches (batch 32), base optimizer
(SGD, lr 0.05, momentum 0.9, weight decay 5e-4, cosine decay), epochs and rho. SS-SAM runs at
the SAM fraction AE-SAM reached on the same seed and noise level, and LookSAM every
k = round(1 / fraction of AE-LookSAM) steps, so the comparisons are at equal cost.
Prints a markdown table and writes bench_digits.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from mltk_plugins.aesam.data import load_data
from mltk_plugins.aesam.training import get_preset, quick_run

ORDER = ["erm", "sam", "aesam", "aelooksam", "looksam", "sssam"]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.2, 0.4])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--rho", type=float, default=0.1)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("bench_digits.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    base = replace(get_preset("small"), epochs=args.epochs, rho=args.rho)
    t_start = time.perf_counter()
    raw: dict[str, dict[str, list[dict]]] = {}
    for noise in args.noise:
        raw[str(noise)] = {name: [] for name in ORDER}
        for seed in range(args.seeds):
            data = load_data("digits", noise=noise, seed=seed)
            cfg = replace(base, noise=noise)
            runs = raw[str(noise)]
            for name in ("erm", "sam", "aesam", "aelooksam"):
                runs[name].append(quick_run(replace(cfg, optimizer=name), data, seed))
            frac = runs["aesam"][-1]["sam_fraction"]
            k = max(1, round(1.0 / max(runs["aelooksam"][-1]["sam_fraction"], 1e-9)))
            runs["sssam"].append(
                {**quick_run(replace(cfg, optimizer="sssam", p=frac), data, seed), "p": frac}
            )
            runs["looksam"].append(
                {**quick_run(replace(cfg, optimizer="looksam", k=k), data, seed), "k": k}
            )
            print(
                f"noise {noise:.1f} seed {seed}: "
                + "  ".join(f"{n} {runs[n][-1]['test_acc']:.4f}" for n in ORDER),
                file=sys.stderr,
                flush=True,
            )
    summary = []
    for noise, runs in raw.items():
        sam_evals = statistics.fmean(r["grad_evals"] for r in runs["sam"])
        sam_wall = statistics.fmean(r["wall_s"] for r in runs["sam"])
        sam_cpu = statistics.fmean(r["cpu_s"] for r in runs["sam"])
        for name in ORDER:
            rs = runs[name]
            accs = [r["test_acc"] for r in rs]
            summary.append(
                {
                    "noise": float(noise),
                    "optimizer": name,
                    "acc_mean": statistics.fmean(accs),
                    "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                    "sam_fraction": statistics.fmean(r["sam_fraction"] for r in rs),
                    "grad_evals": statistics.fmean(r["grad_evals"] for r in rs),
                    "grad_evals_vs_sam": statistics.fmean(r["grad_evals"] for r in rs) / sam_evals,
                    "wall_vs_sam": statistics.fmean(r["wall_s"] for r in rs) / sam_wall,
                    "cpu_vs_sam": statistics.fmean(r["cpu_s"] for r in rs) / sam_cpu,
                }
            )
    goals = []
    for noise in raw:
        row = {r["optimizer"]: r for r in summary if r["noise"] == float(noise)}
        ae, sam, ss = row["aesam"], row["sam"], row["sssam"]
        goals.append(
            {
                "noise": float(noise),
                "aesam_within_sam_spread": ae["acc_mean"] >= sam["acc_mean"] - sam["acc_std"],
                "aesam_grad_evals_at_most_0.6x_sam": ae["grad_evals_vs_sam"] <= 0.6,
                "aesam_above_sssam_same_fraction": ae["acc_mean"] > ss["acc_mean"],
            }
        )
    result = {
        "benchmark": "aesam digits label noise",
        "config": {k: v for k, v in base.__dict__.items()},
        "seeds": args.seeds,
        "summary": summary,
        "goals": goals,
        "runs": raw,
        "total_wall_s": time.perf_counter() - t_start,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(markdown(summary, goals, args))
    return result


def markdown(summary: list[dict], goals: list[dict], args) -> str:
    lines = [
        f"digits, MLP, {args.epochs} epochs, rho {args.rho}, {args.seeds} seeds (mean +- std of test accuracy)",
        "",
        "| label noise | optimizer | test accuracy | SAM fraction | grad evals | grad evals / SAM | wall time / SAM | CPU time / SAM |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in summary:
        lines.append(
            f"| {r['noise']:.0%} | {r['optimizer']} | {100 * r['acc_mean']:.2f} +- {100 * r['acc_std']:.2f} | "
            f"{r['sam_fraction']:.3f} | {r['grad_evals']:.0f} | {r['grad_evals_vs_sam']:.2f} | {r['wall_vs_sam']:.2f} | {r['cpu_vs_sam']:.2f} |"
        )
    lines += [
        "",
        "| label noise | AE-SAM within SAM's spread | AE-SAM grad evals <= 0.6x SAM | AE-SAM above SS-SAM at same fraction |",
        "| --- | --- | --- | --- |",
    ]
    for g in goals:
        yes = {True: "yes", False: "no"}
        lines.append(
            f"| {g['noise']:.0%} | {yes[g['aesam_within_sam_spread']]} | {yes[g['aesam_grad_evals_at_most_0.6x_sam']]} | "
            f"{yes[g['aesam_above_sssam_same_fraction']]} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
