"""AE-SAM against ERM, SAM, AE-LookSAM, LookSAM and SS-SAM on scikit-learn's digits with label noise.

One run of this script produces the README table:

    OMP_NUM_THREADS=1 nice python benchmarks/aesam/bench_digits.py

Every optimizer uses the same model (MLP 64-256-256-10), data, batches (batch 32), base optimizer
(SGD, lr 0.05, momentum 0.9, weight decay 5e-4, cosine decay) and epochs. rho, the lambda
schedule and LookSAM's k of each optimizer are the ones tune_digits.py chose on a validation
split carved from the training data (read from tune_digits.json; the test split plays no part
in the choice). SS-SAM runs at the SAM fraction AE-SAM reached on the same seed and noise
level, with its own validated rho (and
also at AE-SAM's rho when the two differ). One more AE-SAM row uses the
paper's schedule (lambda 1 -> -1) at AE-SAM's rho, to show what the shifted schedule buys.
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

HERE = Path(__file__).parent
SETTING_KEYS = ("rho", "lambda1", "lambda2", "delta", "k")


def chosen_settings(tune_file: Path) -> dict[str, dict]:
    """{optimizer: {rho, lambda1, lambda2, k}} of the candidates tune_digits.py chose."""
    tune = json.loads(tune_file.read_text())
    out = {}
    for name, cand in tune["chosen"].items():
        run = next(r for r in tune["runs"] if r["candidate"] == cand)
        out[name] = {k: run[k] for k in SETTING_KEYS if k in run}
    return out


def rows(settings: dict[str, dict]) -> list[tuple[str, str, dict]]:
    """(row label, optimizer, config overrides) in table order."""
    ae = settings["aesam"]
    ss_rho = settings["sssam"]["rho"]
    out = [
        ("erm", "erm", {}),
        ("sam", "sam", settings["sam"]),
        ("aesam", "aesam", ae),
        ("aesam, paper lambda 1 -> -1", "aesam", {**ae, "lambda2": 1.0, "lambda1": -1.0}),
        ("sssam, same fraction", "sssam", {"rho": ss_rho}),
    ]
    if ss_rho != ae["rho"]:
        out.append(("sssam, same fraction, AE-SAM's rho", "sssam", {"rho": ae["rho"]}))
    out += [
        ("aelooksam", "aelooksam", settings["aelooksam"]),
        ("looksam", "looksam", settings["looksam"]),
    ]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.2, 0.4])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--tune", type=Path, default=HERE / "tune_digits.json")
    ap.add_argument("--out", type=Path, default=HERE / "bench_digits.json")
    ap.add_argument(
        "--report", action="store_true", help="print the tables from the JSON file; run nothing"
    )
    args = ap.parse_args(argv)
    if args.report:
        result = json.loads(args.out.read_text())
        args.epochs, args.seeds = result["config"]["epochs"], result["seeds"]
        print(markdown(result["summary"], result["goals"], args))
        test_images = result.get("test_images") or len(load_data("digits").y_test)
        print("\n" + paired_markdown(result["runs"], test_images))
        return result
    torch.set_num_threads(1)
    settings = chosen_settings(args.tune)
    table_rows = rows(settings)
    base = replace(get_preset("small"), epochs=args.epochs)
    t_start = time.perf_counter()
    raw: dict[str, dict[str, list[dict]]] = {}
    for noise in args.noise:
        raw[str(noise)] = {label: [] for label, _, _ in table_rows}
        for seed in range(args.seeds):
            data = load_data("digits", noise=noise, seed=seed)
            runs = raw[str(noise)]
            for label, name, over in table_rows:
                cfg = replace(base, noise=noise, optimizer=name, **over)
                extra = {}
                if name == "sssam":  # the SAM fraction AE-SAM reached on this seed and noise
                    extra["p"] = runs["aesam"][-1]["sam_fraction"]
                    cfg = replace(cfg, p=extra["p"])
                runs[label].append({**quick_run(cfg, data, seed), **extra})
            print(
                f"noise {noise:.1f} seed {seed}: "
                + "  ".join(f"{lb} {runs[lb][-1]['test_acc']:.4f}" for lb, _, _ in table_rows),
                file=sys.stderr,
                flush=True,
            )
    summary = []
    for noise, runs in raw.items():
        sam_evals = statistics.fmean(r["grad_evals"] for r in runs["sam"])
        sam_wall = statistics.fmean(r["wall_s"] for r in runs["sam"])
        sam_cpu = statistics.fmean(r["cpu_s"] for r in runs["sam"])
        for label, name, over in table_rows:
            rs = runs[label]
            accs = [r["test_acc"] for r in rs]
            summary.append(
                {
                    "noise": float(noise),
                    "row": label,
                    "optimizer": name,
                    "settings": over,
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
        row = {r["row"]: r for r in summary if r["noise"] == float(noise)}
        ae, sam = row["aesam"], row["sam"]
        ss_own = row["sssam, same fraction"]
        ss_same = row.get("sssam, same fraction, AE-SAM's rho", ss_own)
        goals.append(
            {
                "noise": float(noise),
                "aesam_within_sam_spread": ae["acc_mean"] >= sam["acc_mean"] - sam["acc_std"],
                "aesam_grad_evals_at_most_0.6x_sam": ae["grad_evals_vs_sam"] <= 0.6,
                "aesam_above_sssam_same_fraction_same_rho": ae["acc_mean"] > ss_same["acc_mean"],
                "aesam_above_sssam_same_fraction_own_rho": ae["acc_mean"] > ss_own["acc_mean"],
                "aesam_minus_sam": ae["acc_mean"] - sam["acc_mean"],
                "aesam_minus_sssam_same_rho": ae["acc_mean"] - ss_same["acc_mean"],
                "aesam_minus_sssam_own_rho": ae["acc_mean"] - ss_own["acc_mean"],
            }
        )
    result = {
        "benchmark": "aesam digits label noise",
        "config": dict(base.__dict__),
        "settings": settings,
        "seeds": args.seeds,
        "summary": summary,
        "goals": goals,
        "runs": raw,
        "test_images": len(data.y_test),
        "total_wall_s": time.perf_counter() - t_start,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(markdown(summary, goals, args))
    print("\n" + paired_markdown(raw, len(data.y_test)))
    return result


PAIRS = (
    ("aesam", "sam"),
    ("aesam, paper lambda 1 -> -1", "sam"),
    ("aesam", "sssam, same fraction"),
)


def paired_markdown(raw: dict[str, dict[str, list[dict]]], n_img: int) -> str:
    """Differences in test accuracy between two rows on the same seed (same noise draw, same
    batches, same test images): their mean, its standard error, and the per-seed differences
    in test images."""
    lines = [
        f"Paired differences on the same seed, in points of test accuracy ({n_img} test images; "
        "one image is "
        f"{100 / n_img:.2f} points)",
        "",
        "| label noise | difference | mean +- standard error | per seed, in test images |",
        "| --- | --- | --- | --- |",
    ]
    for noise, runs in raw.items():
        for a, b in PAIRS:
            if a not in runs or b not in runs:
                continue
            d = [100 * (x["test_acc"] - y["test_acc"]) for x, y in zip(runs[a], runs[b])]
            se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else 0.0
            imgs = ", ".join(f"{round(v * n_img / 100):+d}" for v in d)
            lines.append(
                f"| {float(noise):.0%} | {a} - {b} | {statistics.fmean(d):+.2f} +- {se:.2f} | {imgs} |"
            )
    return "\n".join(lines)


def fmt_settings(s: dict) -> str:
    parts = []
    if "rho" in s:
        parts.append(f"rho {s['rho']:g}")
    if "lambda2" in s:
        parts.append(f"lambda {s['lambda2']:g} -> {s['lambda1']:g}")
    if "delta" in s:
        parts.append(f"d {s['delta']:g}")
    if "k" in s:
        parts.append(f"k {s['k']}")
    return ", ".join(parts) or "-"


def markdown(summary: list[dict], goals: list[dict], args) -> str:
    lines = [
        f"digits, MLP, {args.epochs} epochs, {args.seeds} seeds (mean +- std of test accuracy)",
        "",
        "| label noise | optimizer | settings | test accuracy | SAM fraction | grad evals | grad evals / SAM | wall time / SAM | CPU time / SAM |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in summary:
        lines.append(
            f"| {r['noise']:.0%} | {r['row']} | {fmt_settings(r['settings'])} | "
            f"{100 * r['acc_mean']:.2f} +- {100 * r['acc_std']:.2f} | "
            f"{r['sam_fraction']:.3f} | {r['grad_evals']:.0f} | {r['grad_evals_vs_sam']:.2f} | "
            f"{r['wall_vs_sam']:.2f} | {r['cpu_vs_sam']:.2f} |"
        )
    lines += [
        "",
        "| label noise | AE-SAM within SAM's spread (AE-SAM - SAM) | AE-SAM grad evals <= 0.6x SAM "
        "| AE-SAM above SS-SAM, same fraction and rho | AE-SAM above SS-SAM, same fraction, "
        "SS-SAM's own rho |",
        "| --- | --- | --- | --- | --- |",
    ]
    yes = {True: "yes", False: "no"}
    for g in goals:
        lines.append(
            f"| {g['noise']:.0%} | {yes[g['aesam_within_sam_spread']]} "
            f"({100 * g['aesam_minus_sam']:+.2f}) | "
            f"{yes[g['aesam_grad_evals_at_most_0.6x_sam']]} | "
            f"{yes[g['aesam_above_sssam_same_fraction_same_rho']]} "
            f"({100 * g['aesam_minus_sssam_same_rho']:+.2f}) | "
            f"{yes[g['aesam_above_sssam_same_fraction_own_rho']]} "
            f"({100 * g['aesam_minus_sssam_own_rho']:+.2f}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
