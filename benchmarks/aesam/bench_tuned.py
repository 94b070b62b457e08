"""Every optimizer tuned per setting on validation alone, then 5 seeds, paired with SAM.

    OMP_NUM_THREADS=1 nice python benchmarks/aesam/bench_tuned.py \
        [--fashion /usr/share/datasets/fashion-mnist] [--only digits] [--noise 0.4] \
        [--tune-seeds 3] [--trials 6 --rho-min 0.05 --rho-max 1.6] [--report]

Settings: scikit-learn's digits (MLP, the `small` preset) at 0, 20 and 40% label noise, and,
with `--fashion FOLDER` (Debian's dataset-fashion-mnist installs the IDX files in
/usr/share/datasets/fashion-mnist), Fashion-MNIST (a small CNN, width 16, 10,000 training
images, 15 epochs) at 0 and 40%.

For each setting, `mltk aesam tune`'s procedure (mltk_plugins.aesam.tune) chooses every
optimizer's radius on 20% of the training split (mean over `--tune-seeds` seeds from 100), the
same number of trials for each, the test split unread; AE-SAM and AE-LookSAM take the cost cap's
schedule (0.2 SAM steps, 0.6x SAM's gradient evaluations). Then ERM, SAM, AE-SAM, SS-SAM (at the
SAM fraction AE-SAM reached on the same seed, with its own tuned radius), LookSAM and AE-LookSAM
train on seeds 0-4 with their own choices and are tested. Each row: test accuracy mean and
standard deviation, the paired difference to SAM (mean, standard error, paired t and sign test
p-values), SAM fraction, gradient evaluations, CPU and wall time relative to SAM. Goal per
setting: AE-SAM's paired difference within one standard error of zero or above, at <= 0.6x SAM's
gradient evaluations, and above SS-SAM. Writes bench_tuned.json after every setting (merging
with what other processes wrote, so that `--noise` runs of one task can go side by side) and
prints the table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.resolve().parents[1]
ORDER = ("erm", "sam", "aesam", "sssam", "looksam", "aelooksam")
TUNED_KEYS = ("rho", "lambda1", "lambda2", "p")


def settings_of(task: str, fashion: Path | None):
    """(base config, noise levels) of a task."""
    from mltk_plugins.aesam.training import get_preset

    if task == "digits":
        return get_preset("small"), (0.0, 0.2, 0.4)
    base = replace(
        get_preset("small"),
        data="idx",
        data_path=fashion,
        model="cnn",
        width=16,
        limit_train=10_000,
        epochs=15,
    )
    return base, (0.0, 0.4)


def run_setting(task: str, base, noise: float, args) -> dict:
    from mltk_plugins.aesam.config import TuneConfig
    from mltk_plugins.aesam.data import load_data
    from mltk_plugins.aesam.stats import paired
    from mltk_plugins.aesam.training import quick_run
    from mltk_plugins.aesam.tune import tune

    def load(seed):
        kw = {"noise": noise, "seed": seed, "limit_train": base.limit_train}
        return load_data(base.data, base.data_path, **kw)

    def log(message):
        print(f"{task} {noise:.0%}: {message}", file=sys.stderr, flush=True)

    cfg = TuneConfig(
        **{
            **base.__dict__,
            "noise": noise,
            "trials": args.trials,
            "tune_seeds": args.tune_seeds,
            "rho_min": args.rho_min,
            "rho_max": args.rho_max,
        }
    )
    t0 = time.perf_counter()
    tuned = tune(cfg, load, quick_run, log)
    own = {n: {k: v for k, v in c.items() if k in TUNED_KEYS} for n, c in tuned["chosen"].items()}
    runs: dict[str, list[dict]] = {n: [] for n in ORDER}
    for seed in range(args.seeds):
        data = load(seed)
        for name in ORDER:
            over = dict(own[name])
            if name == "sssam":  # the share of SAM steps AE-SAM took on this seed
                over["p"] = runs["aesam"][-1]["sam_fraction"]
            r = quick_run(replace(base, noise=noise, optimizer=name, **over), data, seed)
            runs[name].append({**r, "settings": over})
        log(f"seed {seed}: " + "  ".join(f"{n} {runs[n][-1]['test_acc']:.4f}" for n in ORDER))
    sam = runs["sam"]
    rows = []
    for name in ORDER:
        rs = runs[name]
        accs = [r["test_acc"] for r in rs]
        p = paired(accs, [r["test_acc"] for r in sam]) if name != "sam" else None
        rows.append(
            {
                "optimizer": name,
                "settings": own[name],
                "acc_mean": statistics.fmean(accs),
                "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "diff_vs_sam": p,
                "sam_fraction": statistics.fmean(r["sam_fraction"] for r in rs),
                "grad_evals_vs_sam": statistics.fmean(r["grad_evals"] for r in rs)
                / statistics.fmean(r["grad_evals"] for r in sam),
                "cpu_vs_sam": statistics.fmean(r["cpu_s"] for r in rs)
                / statistics.fmean(r["cpu_s"] for r in sam),
                "wall_vs_sam": wall_vs_sam(runs, name),
            }
        )
    by = {r["optimizer"]: r for r in rows}
    ae, d = by["aesam"], by["aesam"]["diff_vs_sam"]
    goal = {
        "paired_within_one_se": d["mean"] >= -(d["se"] or 0.0),
        "cost_at_most_0.6": ae["grad_evals_vs_sam"] <= 0.6,
        "above_sssam": ae["acc_mean"] > by["sssam"]["acc_mean"],
    }
    return {
        "task": task,
        "noise": noise,
        "seeds": args.seeds,
        "tuned": tuned,
        "rows": rows,
        "goal": goal,
        "runs": runs,
        "wall_s": time.perf_counter() - t0,
    }


def wall_vs_sam(runs: dict[str, list[dict]], name: str) -> float:
    """Mean wall time of an optimizer's runs over SAM's."""
    return statistics.fmean(r["wall_s"] for r in runs[name]) / statistics.fmean(
        r["wall_s"] for r in runs["sam"]
    )


def markdown(results: list[dict]) -> str:
    """Both tables, rendered by docs/tables.py as the docs show them."""
    spec = importlib.util.spec_from_file_location("mltk_docs_tables", ROOT / "docs" / "tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    return tables.aesam_tuned(results) + "\n\n" + tables.aesam_tuned_goals(results)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fashion", type=Path, default=None, help="Fashion-MNIST's IDX folder.")
    ap.add_argument("--only", choices=("digits", "fashion"), default=None)
    ap.add_argument("--noise", type=float, default=None, help="Run one noise level only.")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=6, help="Radii tried per optimizer.")
    ap.add_argument("--rho-min", type=float, default=0.05, help="Smallest radius tried.")
    ap.add_argument("--rho-max", type=float, default=1.6, help="Largest radius tried.")
    ap.add_argument("--tune-seeds", type=int, default=3, help="Seeds per trial (100, 101, ...).")
    ap.add_argument("--out", type=Path, default=HERE / "bench_tuned.json")
    ap.add_argument("--report", action="store_true", help="Print the table from the JSON.")
    args = ap.parse_args(argv)
    if args.report:
        results = json.loads(args.out.read_text())
        print(markdown(results))
        return results
    import torch

    torch.set_num_threads(1)
    tasks = ["digits"] + (["fashion"] if args.fashion else [])
    tasks = [t for t in tasks if args.only in (None, t)]
    results = []
    for task in tasks:
        base, noises = settings_of(task, args.fashion)
        for noise in [n for n in noises if args.noise in (None, n)]:
            res = run_setting(task, base, noise, args)
            # read again just before writing: another process may have added its setting
            results = json.loads(args.out.read_text()) if args.out.exists() else []
            results = [r for r in results if (r["task"], r["noise"]) != (task, noise)] + [res]
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1))
            tmp.replace(args.out)
            print(markdown([res]), flush=True)
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
