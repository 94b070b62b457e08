"""Every measured table in the plugin docs, generated from the JSON its benchmark wrote.

In docs/<plugin>.md a generated block is the text between a line ``<!-- table: NAME -->`` and a
line ``<!-- /table -->`` (both indented like the block, inside a list item). ``generate(NAME)``
returns that text exactly; ``refresh(path)`` rewrites every block of a file from its generator
(docs/assemble_readme.py runs it before copying the docs into README.md), and
tests/test_docs_tables.py checks that the docs hold what the JSON gives. Tables that hold no
measurement stay hand-written: their header lines are in ``DESCRIPTIVE``.

    python docs/tables.py              # list the names
    python docs/tables.py NAME ...     # print those blocks
    python docs/tables.py --refresh    # rewrite the blocks of the four plugin docs

Standard library only (json, math, statistics, pathlib): no torch, numpy or plugin import. A
generator reads its JSON with every object's missing key an error (``TableError``), so a JSON
that lacks what a table shows fails loudly instead of printing a blank.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
DOCS = sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "core-api.md")  # plugins

# Hand-written tables: what the plugin does, options, data sources. No measured number.
DESCRIPTIVE = [
    "| paper | module | what it does |",
    "| preset | denoiser | diffusion / sampling | training | for |",
    "| setting | default | where it comes from |",
    "| source | what `--data-path` points at |",
    "| stage | what it trains | starts from |",
    "| teacher | picks | paper's curve |",
    "| `--data` | pool | target f* | start f0 |",
    "| `--decomp` | cores | is |",
    "| set | entities | relations | facts | train | valid | test |",
    "| step | what mltk does |",
    "| method | captions of an image with the concept | loss map | negative prompt |",
    "| detail | choice | why |",
]

OPEN, CLOSE = "<!-- table: ", "<!-- /table -->"


def _opening(line: str) -> str | None:
    """The block name if the line is an opening marker (indentation allowed), else None."""
    s = line.strip()
    if s.startswith(OPEN) and s.endswith(" -->"):
        name = s[len(OPEN) : -len(" -->")]
        return name if name and " " not in name else None
    return None


def _closing(line: str) -> bool:
    return line.strip() == CLOSE


def _separator(line: str) -> bool:
    """A markdown table's second line: | --- | :--: | ... |"""
    s = line.strip()
    if len(s) < 2 or not (s.startswith("|") and s.endswith("|")):
        return False
    cells = [c.strip().strip(":") for c in s[1:-1].split("|")]
    return all(len(c) >= 3 and set(c) == {"-"} for c in cells)


class TableError(Exception):
    """A generator's JSON lacks what the table shows, or a docs file's markers are broken."""


class _Strict(dict):
    """A JSON object whose missing key raises with the file it came from."""

    source = "?"

    def __missing__(self, key):
        raise TableError(f"{self.source} has no key {key!r}")


def _load(bench: Path, rel: str):
    path = bench / rel
    if not path.is_file():
        raise TableError(f"{path} does not exist")

    def hook(d):
        obj = _Strict(d)
        obj.source = f"benchmarks/{rel}"
        return obj

    return json.loads(path.read_text(), object_hook=hook)


_GENERATORS: dict = {}


def _table(name: str):
    def register(fn):
        _GENERATORS[name] = fn
        return fn

    return register


def generate(name: str, bench: Path | None = None) -> str:
    """The markdown text of block NAME, from the JSON under ``bench`` (default benchmarks/)."""
    if name not in _GENERATORS:
        raise TableError(f"no table generator {name!r}; known: {', '.join(NAMES)}")
    return _GENERATORS[name](Path(bench) if bench is not None else BENCH)


def _indent(lines: list[str], pad: str = "  ") -> str:
    return "\n".join(pad + ln if ln else ln for ln in lines)


def _wrap(text: str, width: int = 100) -> str:
    """A paragraph broken at spaces into lines of at most ``width`` characters, as the docs are
    (never inside a `code span`)."""
    words: list[str] = []
    for word in text.split(" "):
        if words and words[-1].count("`") % 2:
            words[-1] += " " + word
        else:
            words.append(word)
    lines, line = [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join(lines + [line])


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


# ------------------------------------------------------------------------------------ tensor
# As in benchmarks/tensor/images.py (METHODS, DEFAULT_CAP, cap_of, label, the table in main);
# tests/test_docs_tables.py checks that METHODS is the same list.
TENSOR_METHODS = [
    "nort-lsp",
    "nort-capped-l1",
    "dense-lsp",
    "dense-capped-l1",
    "dense-pa-lsp",
    "convex",
    "tl-parafac",
    "tl-tucker",
    "tl-robust_pca",
]
TENSOR_DEFAULT_CAP = 100


def _tensor_images(bench: Path, image: str, size: int) -> str:
    rows = _load(bench, "tensor/images.json")

    def cap(r):
        return r.get("path", {}).get("max_rank", TENSOR_DEFAULT_CAP)

    def label(r):
        if cap(r) == TENSOR_DEFAULT_CAP:
            return r["method"]
        if r["method"].startswith("nort"):
            return f"{r['method']}, rank cap {cap(r)}"
        return f"{r['method']}, on that path"

    mine = [
        r
        for r in rows
        if r.get("size") == size
        and r.get("image", "astronaut") == image
        and r.get("device", "cpu") == "cpu"
    ]
    if not mine:
        raise TableError(
            f"benchmarks/tensor/images.json has no cpu rows for {image} at size {size}"
        )
    mine.sort(
        key=lambda r: (
            -r["observed"],
            cap(r),
            TENSOR_METHODS.index(r["method"]) if r["method"] in TENSOR_METHODS else 99,
        )
    )
    side = f"{size} px longest side" if size else "original size"
    lines = [
        f"{image}, {side}, 2 shared CPU cores, 1 thread per method",
        "",
        "| observed | method | test RMSE | PSNR (dB) | CPU time (s) | wall time (s) "
        "| peak memory above data (MB) | chosen |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in mine:
        if "error" in r:
            lines.append(f"| {r['observed']:.0%} | {label(r)} | failed: {r['error']} | | | | | |")
            continue
        chosen = r.get("lambda", r.get("chosen", ""))
        chosen = f"{chosen:.3g}" if isinstance(chosen, float) else chosen
        lines.append(
            f"| {r['observed']:.0%} | {label(r)} | {r['test_rmse']:.4f} | "
            f"{20 * math.log10(1 / r['test_rmse']):.2f} | {r['cpu_seconds']:.1f} | "
            f"{r['seconds']:.1f} | {r['peak_memory_mb'] - r['baseline_memory_mb']:.0f} | {chosen} |"
        )
    return "\n".join(lines)


for _image, _size, _name in (
    ("retina", 0, "tensor-images-retina-full"),
    ("retina", 256, "tensor-images-retina-256"),
    ("astronaut", 256, "tensor-images-astronaut-256"),
    ("astronaut", 512, "tensor-images-astronaut-512"),
):
    _table(_name)(lambda bench, i=_image, s=_size: _tensor_images(bench, i, s))


@_table("tensor-selection")
def _tensor_selection(bench: Path) -> str:
    """benchmarks/tensor/images.py --out images_refit.json: photographs at their own size, the
    search with refit, NORT against the dense solver of the same penalty."""
    rows = _load(bench, "tensor/images_refit.json")
    lines = [
        "| image | observed | method | test RMSE | CPU s | ranks (tensorly: chosen) | "
        "dense / NORT CPU | "
        "at or below dense |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    cases = sorted({(r["image"], r["observed"]) for r in rows}, key=lambda c: (c[0], -c[1]))
    for image, observed in cases:
        got = {r["method"]: r for r in rows if (r["image"], r["observed"]) == (image, observed)}
        for method in TENSOR_METHODS:
            r = got.get(method)
            if r is None or "error" in r:
                continue
            dense = got.get("dense-" + method[5:]) if method.startswith("nort-") else None
            ratio = below = ""
            if dense is not None and "error" not in dense:
                ratio = f"{dense['cpu_seconds'] / r['cpu_seconds']:.1f}x"
                below = "yes" if r["test_rmse"] <= dense["test_rmse"] else "no"
            ranks = ", ".join(str(x) for x in r.get("ranks") or []) or f"{r.get('chosen', '-')}"
            lines.append(
                f"| {image} | {observed:.0%} | {method} | {r['test_rmse']:.4f} | "
                f"{r['cpu_seconds']:.1f} | {ranks} | {ratio} | {below} |"
            )
    return "\n".join(lines)


@_table("tensor-rank-cost")
def _tensor_rank_cost(bench: Path) -> str:
    """benchmarks/tensor/rank_cost.py's rows, the doc's shorter columns, in a list item."""
    res = _load(bench, "tensor/rank_cost.json")
    lines = [
        "| ranks reached (modes 1, 2) | dense PA (s / iteration) | NORT, 1 power iteration "
        "| NORT, 2 power iterations | dense / NORT (1) | dense / NORT (2) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in res["rows"]:
        ranks = ", ".join(str(x) for x in r["dense_ranks"][:2])
        lines.append(
            f"| {ranks} | {r['dense_s']:.2f} | {r['nort_1_s']:.2f} | {r['nort_2_s']:.2f} | "
            f"{r['dense_s'] / r['nort_1_s']:.1f}x | {r['dense_s'] / r['nort_2_s']:.1f}x |"
        )
    return _indent(lines)


@_table("tensor-scale")
def _tensor_scale(bench: Path) -> str:
    """benchmarks/tensor/scale.py's table."""
    rows = _load(bench, "tensor/scale.json")
    lines = [
        "Synthetic CP rank-5 cubes, capped-l1, rank caps 5, fixed iteration budget, 1 thread, "
        "float64",
        "",
        "| side n | solver | observed entries | dense cube (float64) | iterations | "
        "CPU s / iteration | wall s / iteration | test RMSE (signal std) | peak memory |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["n"], r["solver"])):
        if "error" in r:
            lines.append(f"| {r['n']} | {r['solver']} | | | | failed: {r['error']} | | | |")
            continue
        lines.append(
            f"| {r['n']} | {r['solver']} | {r['observed']:,} | {r['dense_cube_gb']:.2f} GB | "
            f"{r['iterations']} | {r['cpu_seconds_per_iter']:.2f} | {r['seconds_per_iter']:.2f} | "
            f"{r['test_rmse']:.4f} ({r['signal_std']:.4f}) | {r['peak_memory_mb'] / 1024:.2f} GB |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- timediff
def _timediff_results(bench: Path, dataset: str) -> str:
    """benchmarks/timediff/first_release.py --report, one dataset."""
    res = _load(bench, f"timediff/results_{dataset}.json")
    lines = [
        f"**{res['dataset'].upper()}**, horizon {res['horizon']}, lookback {res['lookback']} "
        f"(chosen on validation), {res['test_windows']} test windows",
        "",
        "| model | runs | MSE (mean ± std) | MAE | CRPS | wall s / run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in res["rows"]:
        runs = r.get("runs", 1)
        std = f" ± {r['mse_std']:.4f}" if runs > 1 else ""
        secs = f"{r['seconds_per_run']:.0f}" if "seconds_per_run" in r else "-"
        lines.append(
            f"| {r['model']} | {runs} | {r['mse']:.4f}{std} | {r['mae']:.4f} | "
            f"{r['crps']:.4f} | {secs} |"
        )
    return "\n".join(lines)


for _dataset in ("etth1", "etth2"):
    _table(f"timediff-results-{_dataset}")(lambda bench, d=_dataset: _timediff_results(bench, d))


TIMEDIFF_SETS = ("etth1", "etth2", "pv_system50")


def _timediff_prob(bench: Path, dataset: str) -> str:
    """benchmarks/timediff/run_benchmark.py --report DIR, one data set, from probabilistic/."""
    res = _load(bench, f"timediff/probabilistic/results_{dataset}.json")
    lines = [
        f"**{res['dataset']}** ({res['series_rows']:,} rows, {len(res['channels'])} channels), "
        f"lookback {res['lookback']}, AR-init {res['ar_channels']}, "
        f"{res['test_windows']:,} test windows",
        "",
        "| model | runs | MSE | CRPS | wQL | coverage 50 / 80 / 90 % | width 90 % |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in res["rows"]:
        runs = r.get("runs", 1)
        mse = f"{r['mse']:.4f}" + (f" ± {r['mse_std']:.4f}" if runs > 1 else "")
        crps = f"{r['crps']:.4f}" + (f" ± {r['crps_std']:.4f}" if "crps_std" in r else "")
        point = r["width90"] == 0
        cover = "-" if point else " / ".join(f"{100 * r[f'coverage{p}']:.1f}" for p in (50, 80, 90))
        width = "-" if point else f"{r['width90']:.2f}"
        lines.append(
            f"| {r['model']} | {runs} | {mse} | {crps} | {r['wql']:.4f} | {cover} | {width} |"
        )
    return "\n".join(lines)


for _dataset in TIMEDIFF_SETS:
    _table(f"timediff-prob-{_dataset}")(lambda bench, d=_dataset: _timediff_prob(bench, d))


@_table("timediff-prob-goals")
def _timediff_prob_goals(bench: Path) -> str:
    """The goals of the probabilistic benchmark, one row per data set."""
    lines = [
        "| data | best CRPS | calibrated TimeDiff CRPS | coverage gaps 50 / 80 / 90 (points) "
        "| MSE vs as shipped (its seed std) | AR-init MSE, validation → test | goal |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for dataset in TIMEDIFF_SETS:
        res = _load(bench, f"timediff/probabilistic/results_{dataset}.json")
        rows = {r["model"]: r for r in res["rows"]}
        cal, old = rows["TimeDiff calibrated"], rows["TimeDiff as shipped"]
        best = min(res["rows"], key=lambda r: r["crps"])
        gaps = [100 * (cal[f"coverage{p}"] - p / 100) for p in (50, 80, 90)]
        mse_ok = cal["mse"] <= old["mse"] + old["mse_std"]
        met = best["model"] == cal["model"] and max(abs(g) for g in gaps) <= 3 and mse_ok
        lines.append(
            f"| {res['dataset']} | {best['model']} ({best['crps']:.4f}) | {cal['crps']:.4f} | "
            + " / ".join(f"{g:+.1f}" for g in gaps)
            + f" | {cal['mse'] - old['mse']:+.4f} ({old['mse_std']:.4f}) | "
            + f"{res['ar_init_mse']['val']:.3f} → {res['ar_init_mse']['test']:.3f} | "
            + ("met" if met else "not met")
            + " |"
        )
    return "\n".join(lines)


@_table("timediff-spread")
def _timediff_spread(bench: Path) -> str:
    """benchmarks/timediff/spread.py --report."""
    res = _load(bench, "timediff/spread.json")
    lines = [
        "| model | sampler | spread | RMSE | spread / RMSE | 5-95% holds | CRPS |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['model']} | {r['sampler']} | {r['spread']:.3f} | {r['rmse']:.3f} | "
            f"{r['ratio']:.2f} | {100 * r['coverage90']:.1f}% | {r['crps']:.4f} |"
        )
    return "\n".join(lines)


@_table("timediff-regularised")
def _timediff_regularised(bench: Path) -> str:
    """benchmarks/timediff/regularised.py --report, in a list item."""
    rows = _load(bench, "timediff/regularised_results.json")["rows"]
    lines = [
        "| data | variant | validation MSE, epoch 0 (AR-init) | best trained epoch | "
        "TimeDiff test MSE | AR-init test MSE |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        v = r["val_mse_by_epoch"]
        best = min(range(1, len(v)), key=v.__getitem__)
        lines.append(
            f"| {r['dataset']} | {r['variant']} | {v[0]:.4f} | {v[best]:.4f} (epoch {best}) | "
            f"{r['test_mse']:.4f} | {r['ar_init_test_mse']:.4f} |"
        )
    return _indent(lines)


def _sci(x: float) -> str:
    """1000.0 -> 1e3."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


@_table("timediff-ar-penalty")
def _timediff_ar_penalty(bench: Path) -> str:
    """The AR-init penalty the benchmark tables ran with against the per-row default
    (benchmarks/timediff/ar_penalty.py), and the AR-init rows under each."""
    pen = _load(bench, "timediff/ar_penalty.json")
    rows = {d["dataset"]: d for d in pen["datasets"]}
    names = ("etth1", "etth2")
    old, new = [], []
    missing = [n for n in names if n not in rows]
    if missing:
        raise TableError(f"benchmarks/timediff/ar_penalty.json has no dataset {missing[0]!r}")
    for name in names:
        res = _load(bench, f"timediff/results_{name}.json")
        full = _load(bench, f"timediff/fullbudget_results_{name}.json")
        if full["config"]["ar_ridge"] != rows[name]["ar_ridge_per_row"]:
            raise TableError(
                f"benchmarks/timediff/fullbudget_results_{name}.json ran with ar_ridge "
                f"{full['config']['ar_ridge']}, ar_penalty.json has {rows[name]['ar_ridge_per_row']}"
            )
        if full["lookback"] != rows[name]["lookback"] or res["lookback"] != rows[name]["lookback"]:
            raise TableError(f"{name}: the lookbacks of the results and ar_penalty.json differ")
        old.append(res["config"]["ar_ridge"])
        ar = [
            next((r for r in j["rows"] if r["model"] == "AR-init alone"), None) for j in (res, full)
        ]
        if None in ar:
            raise TableError(f"{name}: a results JSON has no 'AR-init alone' row")
        if f"{ar[0]['mse']:.4f}" != f"{ar[1]['mse']:.4f}":
            raise TableError(f"{name}: the AR-init rows differ at four decimals; edit the sentence")
        new.append(ar[1]["mse"])
    if len(set(old)) != 1:
        raise TableError("results_etth1.json and results_etth2.json ran with different ar_ridge")
    penalties = " and ".join(
        f"{rows[n]['absolute_penalty']:,.0f} on {n.replace('etth', 'ETTh')}" for n in names
    )
    lookbacks = ", ".join(str(rows[n]["lookback"]) for n in names)
    mses = ", ".join(f"{m:.4f}" for m in new)
    return _wrap(
        f"The tables below ran with the AR-init penalty as an absolute {_sci(old[0])}; the "
        f"per-row default that replaced it ({rows[names[0]]['ar_ridge_per_row']:g} per window "
        f"and channel) gives {penalties} (`benchmarks/timediff/ar_penalty.py` → "
        f"`ar_penalty.json`), the same lookbacks ({lookbacks}), and the same AR-init rows to four "
        f"decimals ({mses}: the `AR-init alone` rows come from `training.ar_predictor`, which the "
        "benchmark calls; its TimeDiff rows were not re-run)."
    )


# ------------------------------------------------------------------------------------- aesam
def _aesam_settings(s: dict) -> str:
    """bench_digits.py:fmt_settings."""
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


@_table("aesam-digits-summary")
def _aesam_summary(bench: Path) -> str:
    """benchmarks/aesam/bench_digits.py:markdown, its first table."""
    res = _load(bench, "aesam/bench_digits.json")
    lines = [
        f"digits, MLP, {res['config']['epochs']} epochs, {res['seeds']} seeds "
        "(mean +- std of test accuracy)",
        "",
        "| label noise | optimizer | settings | test accuracy | SAM fraction | grad evals | "
        "grad evals / SAM | wall time / SAM | CPU time / SAM |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in res["summary"]:
        lines.append(
            f"| {r['noise']:.0%} | {r['row']} | {_aesam_settings(r['settings'])} | "
            f"{100 * r['acc_mean']:.2f} +- {100 * r['acc_std']:.2f} | "
            f"{r['sam_fraction']:.3f} | {r['grad_evals']:.0f} | {r['grad_evals_vs_sam']:.2f} | "
            f"{r['wall_vs_sam']:.2f} | {r['cpu_vs_sam']:.2f} |"
        )
    return "\n".join(lines)


@_table("aesam-digits-goals")
def _aesam_goals(bench: Path) -> str:
    """benchmarks/aesam/bench_digits.py:markdown, its second table."""
    res = _load(bench, "aesam/bench_digits.json")
    lines = [
        "| label noise | AE-SAM within SAM's spread (AE-SAM - SAM) | AE-SAM grad evals <= 0.6x SAM "
        "| AE-SAM above SS-SAM, same fraction and rho | AE-SAM above SS-SAM, same fraction, "
        "SS-SAM's own rho |",
        "| --- | --- | --- | --- | --- |",
    ]
    for g in res["goals"]:
        lines.append(
            f"| {g['noise']:.0%} | {_yes(g['aesam_within_sam_spread'])} "
            f"({100 * g['aesam_minus_sam']:+.2f}) | "
            f"{_yes(g['aesam_grad_evals_at_most_0.6x_sam'])} | "
            f"{_yes(g['aesam_above_sssam_same_fraction_same_rho'])} "
            f"({100 * g['aesam_minus_sssam_same_rho']:+.2f}) | "
            f"{_yes(g['aesam_above_sssam_same_fraction_own_rho'])} "
            f"({100 * g['aesam_minus_sssam_own_rho']:+.2f}) |"
        )
    return "\n".join(lines)


def _tuned_settings(s: dict) -> str:
    """mltk_plugins.aesam.tune.settings_text."""
    parts = [f"rho {s['rho']:.3g}"] if "rho" in s else []
    if "lambda2" in s:
        parts.append(f"c_t {s['lambda2']:.2f} -> {s['lambda1']:.2f}")
    if "p" in s:
        parts.append(f"p {s['p']:g}")
    return ", ".join(parts) or "-"


def _paired_cell(p) -> str:
    """mltk_plugins.aesam.stats.describe: percentage points."""
    if p is None:
        return "-"
    mean = f"{100 * p['mean']:+.2f}"
    if p["se"] is None:
        return mean
    return f"{mean} ± {100 * p['se']:.2f} (t p {p['t_p']:.2g}, sign p {p['sign_p']:.2g})"


def _task_order(res: dict) -> tuple:
    """Digits first, then Fashion-MNIST, each by noise level (the JSON is in finishing order)."""
    return (res["task"] != "digits", res["noise"])


def _wall_vs_sam(res: dict, name: str) -> float:
    """Mean wall time of an optimizer's runs over SAM's (the rows store CPU time's ratio)."""
    wall = [statistics.fmean(r["wall_s"] for r in res["runs"][n]) for n in (name, "sam")]
    return wall[0] / wall[1]


@_table("aesam-tuned")
def _aesam_tuned(bench: Path) -> str:
    return aesam_tuned(_load(bench, "aesam/bench_tuned.json"))


def aesam_tuned(results: list) -> str:
    """benchmarks/aesam/bench_tuned.py's first table (it prints this one)."""
    results = sorted(results, key=_task_order)
    lines = [
        "| task | noise | optimizer | tuned | test acc (%) | paired difference to SAM (points) "
        "| SAM fraction | grad evals / SAM | CPU / SAM | wall / SAM |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for res in results:
        for r in res["rows"]:
            settings = _tuned_settings(r["settings"]) if r["settings"] else "-"
            lines.append(
                f"| {res['task']} | {res['noise']:.0%} | {r['optimizer']} | {settings} | "
                f"{100 * r['acc_mean']:.2f} ± {100 * r['acc_std']:.2f} | "
                f"{_paired_cell(r['diff_vs_sam'])} | {r['sam_fraction']:.3f} | "
                f"{r['grad_evals_vs_sam']:.2f} | {r['cpu_vs_sam']:.2f} | "
                f"{_wall_vs_sam(res, r['optimizer']):.2f} |"
            )
    return "\n".join(lines)


@_table("aesam-tuned-goals")
def _aesam_tuned_goals(bench: Path) -> str:
    return aesam_tuned_goals(_load(bench, "aesam/bench_tuned.json"))


def aesam_tuned_goals(results: list) -> str:
    """benchmarks/aesam/bench_tuned.py's second table (it prints this one)."""
    results = sorted(results, key=_task_order)
    lines = [
        "| task | noise | AE-SAM within one SE of SAM or above | <= 0.6x SAM's gradient "
        "evaluations | above SS-SAM |",
        "| --- | --- | --- | --- | --- |",
    ]
    for res in results:
        g = {k: "yes" if v else "**no**" for k, v in res["goal"].items()}
        lines.append(
            f"| {res['task']} | {res['noise']:.0%} | {g['paired_within_one_se']} | "
            f"{g['cost_at_most_0.6']} | {g['above_sssam']} |"
        )
    return "\n".join(lines)


# bench_digits.json written before the script stored "test_images" lacks it. The test split is
# fixed: mltk_plugins.aesam.data._split keeps round(0.25 * n) images of each class of
# scikit-learn's 1,797 digits (classes 0-9 below), 450 in all -- what `bench_digits.py --report`
# counts with load_data("digits").
DIGITS_CLASS_SIZES = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)
DIGITS_TEST_IMAGES = sum(int(round(0.25 * n)) for n in DIGITS_CLASS_SIZES)
AESAM_PAIRS = (
    ("aesam", "sam"),
    ("aesam, paper lambda 1 -> -1", "sam"),
    ("aesam", "sssam, same fraction"),
)


@_table("aesam-digits-paired")
def _aesam_paired(bench: Path) -> str:
    """benchmarks/aesam/bench_digits.py:paired_markdown."""
    res = _load(bench, "aesam/bench_digits.json")
    n_img = res.get("test_images") or DIGITS_TEST_IMAGES
    lines = [
        f"Paired differences on the same seed, in points of test accuracy ({n_img} test images; "
        f"one image is {100 / n_img:.2f} points)",
        "",
        "| label noise | difference | mean +- standard error | per seed, in test images |",
        "| --- | --- | --- | --- |",
    ]
    for noise, runs in res["runs"].items():
        for a, b in AESAM_PAIRS:
            d = [100 * (x["test_acc"] - y["test_acc"]) for x, y in zip(runs[a], runs[b])]
            se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else 0.0
            imgs = ", ".join(f"{round(v * n_img / 100):+d}" for v in d)
            lines.append(
                f"| {float(noise):.0%} | {a} - {b} | {statistics.fmean(d):+.2f} +- {se:.2f} | "
                f"{imgs} |"
            )
    return "\n".join(lines)


@_table("aesam-gpu-resnet18")
def _aesam_gpu(bench: Path) -> str:
    """benchmarks/aesam/gpu_resnet18.py's table, the doc's columns."""
    res = _load(bench, "aesam/gpu_resnet18.json")
    lines = [
        "| optimizer | SAM fraction | grad evals / SAM | train wall s | wall / SAM |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in res["runs"]:
        # gpu_resnet18.py runs sssam with --p 0.5 (not stored in the JSON)
        name = "sssam (p 0.5)" if r["optimizer"] == "sssam" else r["optimizer"]
        lines.append(
            f"| {name} | {r['sam_fraction']:.3f} | {r['grad_evals_vs_sam']:.2f} | "
            f"{r['wall_s']:.1f} | {r['wall_vs_sam']:.2f} |"
        )
    return "\n".join(lines)


@_table("aesam-cpu-width")
def _aesam_width(bench: Path) -> str:
    """gpu_resnet18.py --device cpu at widths 32 and 64 (cpu_resnet18_w*.json)."""
    lines = [
        "| width | ERM test acc | SAM test acc | SAM wall / ERM |",
        "| --- | --- | --- | --- |",
    ]
    for width in (32, 64):
        res = _load(bench, f"aesam/cpu_resnet18_w{width}.json")
        runs = {r["optimizer"]: r for r in res["runs"]}
        erm, sam = runs.get("erm"), runs.get("sam")
        if erm is None or sam is None:
            raise TableError(f"benchmarks/aesam/cpu_resnet18_w{width}.json lacks an erm or sam run")
        lines.append(
            f"| {res['width']} | {erm['test_acc']:.3f} | {sam['test_acc']:.3f} | "
            f"{sam['wall_s'] / erm['wall_s']:.2f} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ pixart
@_table("pixart-cpu-speed")
def _pixart_cpu(bench: Path) -> str:
    """benchmarks/pixart/gpu_speed.py --cpu (cpu_speed.json)."""
    res = _load(bench, "pixart/cpu_speed.json")
    sec, ips = res["seconds_per_batch"], res["images_per_second"]
    same = "yes" if res["identical_images"] else f"no, max diff {res['max_abs_pixel_diff']}"
    return "\n".join(
        [
            "| runner | s / batch | images / s | identical to diffusers |",
            "| --- | --- | --- | --- |",
            f"| diffusers PixArtAlphaPipeline | {sec['diffusers']:.3f} | {ips['diffusers']:.2f} | - |",
            f"| mltk pixart generate (in-process) | {sec['mltk']:.3f} | {ips['mltk']:.2f} | {same} |",
            "| mltk pixart generate (CLI, `--json` images_per_second) | - | "
            f"{res['cli_images_per_second']:.2f} | {_yes(res['cli_identical_to_diffusers'])} |",
        ]
    )


@_table("pixart-cpu-ratio")
def _pixart_cpu_ratio(bench: Path) -> str:
    """The stored ratio (mltk images/s over diffusers', from the medians) and its range over the
    repeats: per repeat, diffusers' seconds over mltk's (gpu_speed.py times the two in turn)."""
    res = _load(bench, "pixart/cpu_speed.json")
    before = _load(bench, "pixart/cpu_speed_before_t2i.json")
    runs = res["runs"]
    per = [d / m for d, m in zip(runs["diffusers"], runs["mltk"])]
    if not per:
        raise TableError("benchmarks/pixart/cpu_speed.json has no repeats in 'runs'")
    return _wrap(
        f"Ratio mltk / diffusers: {res['ratio_mltk_over_diffusers']:.2f} ({min(per):.2f} to "
        f"{max(per):.2f} over the {len(per)} repeats on the shared machine). mltk samples through "
        "diffusers' own pipeline (with its prompt features passed in), so this is the same work "
        "at the same speed; before mltk's sampling moved onto the pipeline, its own loop gave "
        f"{before['ratio_mltk_over_diffusers']:.2f} in the same benchmark "
        "(`cpu_speed_before_t2i.json`, identical images too)."
    )


@_table("pixart-gpu-speed")
def _pixart_gpu(bench: Path) -> str:
    """benchmarks/pixart/gpu_speed.sh on an H200 (gpu_speed_h200.json)."""
    res = _load(bench, "pixart/gpu_speed_h200.json")
    sec, ips = res["seconds_per_batch"], res["images_per_second"]
    return "\n".join(
        [
            f"| runner | s / batch (median of {len(res['runs']['diffusers'])}) | images / s |",
            "| --- | --- | --- |",
            f"| diffusers PixArtAlphaPipeline | {sec['diffusers']:.3f} | {ips['diffusers']:.1f} |",
            f"| mltk pixart generate (in-process) | {sec['mltk']:.3f} | {ips['mltk']:.1f} |",
            f"| mltk pixart generate (CLI, `--json`) | - | {res['cli_images_per_second']:.1f} |",
        ]
    )


@_table("pixart-efficiency")
def _pixart_efficiency(bench: Path) -> str:
    """benchmarks/pixart/efficiency.py --table (print_table), the doc's labels."""
    res = _load(bench, "pixart/efficiency.json")
    results, args = res["results"], res["args"]
    steps = [c["step"] for c in next(iter(results.values()))[0]["curve"]]

    def mean(xs):
        return sum(xs) / len(xs)

    lines = [
        f"| recipe (stage 2 on) | stage-2 steps to colour acc >= {args['threshold']} (per seed) | "
        + " | ".join(f"colour @{s}" for s in steps)
        + " | position | count | all |",
        "| --- | --- | " + " | ".join("---" for _ in steps) + " | --- | --- | --- |",
    ]
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
        lines.append(f"| {arm} captions | {reach} | {curve} | {final} |")
    return "\n".join(lines)


@_table("pixart-shipped")
def _pixart_shipped(bench: Path) -> str:
    """benchmarks/pixart/ship_tiny.sh (shipped_eval.json); the pixel-space model it replaced
    (shipped_eval_pixel.json, same command and prompts)."""
    rows = [
        ("latent: tiny VAE, 2x2 patches (shipped)", _load(bench, "pixart/shipped_eval.json")),
        ("pixel space, 4x4 patches (before)", _load(bench, "pixart/shipped_eval_pixel.json")),
    ]
    attrs = ("colour", "shape", "position", "count", "all")
    lines = [
        "| tiny model | " + " | ".join(attrs) + " | Fréchet (classifier features) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, r in rows:
        accs = " | ".join(f"{r[f'acc_{a}']:.3f}" for a in attrs)
        lines.append(f"| {label} | {accs} | {r['frechet']:.0f} |")
    return "\n".join(lines)


@_table("pixart-eps-vs-v")
def _pixart_eps_vs_v(bench: Path) -> str:
    """benchmarks/pixart/eps_vs_v.sh (eps_vs_v.json)."""
    res = _load(bench, "pixart/eps_vs_v.json")
    labels = {"v": "v (tiny-pixel preset)", "eps": "eps (paper)"}
    lines = [
        "| prediction | colour | shape | position | count | all | text_gap (last log) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for target, r in res["results"].items():
        accs = " | ".join(
            f"{r[f'acc_{a}']:.3f}" for a in ("colour", "shape", "position", "count", "all")
        )
        lines.append(f"| {labels.get(target, target)} | {accs} | {r['text_gap']:+.4f} |")
    return "\n".join(lines)


@_table("pixart-classifier-accuracy")
def _pixart_classifier(bench: Path) -> str:
    """benchmarks/pixart/build_classifier.py --eval-only (classifier_accuracy.json)."""
    res = _load(bench, "pixart/classifier_accuracy.json")
    acc, n = res["accuracy"], res["labelled_images"]
    heads = list(acc)
    return "\n".join(
        [
            _wrap(
                f"The shipped classifier's held-out accuracy is {min(acc.values()):.2f}-"
                f"{max(acc.values()):.2f} per attribute, on {res['held_out_images']} fresh world "
                f"images (seed {res['seed']}, {res['low_quality_fraction']:.0%} low quality; "
                "`OMP_NUM_THREADS=1 python benchmarks/pixart/build_classifier.py --eval-only` "
                "→ `classifier_accuracy.json`):"
            ),
            "",
            "| head | " + " | ".join(heads) + " |",
            "| --- | " + " | ".join("---" for _ in heads) + " |",
            "| held-out accuracy | " + " | ".join(f"{acc[h]:.3f}" for h in heads) + " |",
            "| images with that label | " + " | ".join(str(n[h]) for h in heads) + " |",
        ]
    )


@_table("teach-toy1d")
def _teach_toy1d(bench: Path) -> str:
    """benchmarks/teach/toy1d.py (toy1d.json): every teacher's ITD to 1e-4 on the paper's toy."""
    res = _load(bench, "teach/toy1d.json")
    lines = [
        "| teacher | ITD to 1e-4 | reached eps | final loss | distinct examples |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in res["results"]:
        itd = "-" if r["itd_mean"] is None else f"{r['itd_mean']:,.0f}"
        if r["seeds"] > 1 and r["itd_mean"] is not None:
            itd += f" ± {r['itd_std']:,.0f}"
        loss = statistics.mean(x["final_loss"] for x in r["runs"])
        ex = statistics.mean(x["examples"] for x in r["runs"])
        lines.append(f"| {r['teacher']} | {itd} | {r['reached']}/{r['seeds']} | {loss:.3g} | "
                     f"{ex:,.0f} |")  # fmt: skip
    lines += ["", _wrap(
        f"RFT-1 / GFT-1: **{res['rft1_over_gft1']:.2f}** (the theory's 1/mean(gamma) over the "
        f"GFT-1 run: {res['theory_ratio_gft1']:.2f}); random teachers over {res['seeds']} seeds, "
        f"T = {res['max_iter']:,}; {res['seconds']:.0f} s on one thread."
    )]  # fmt: skip
    return "\n".join(lines)


@_table("teach-images")
def _teach_images(bench: Path) -> str:
    """benchmarks/teach/images.py (images.json): GFT-1 against RFT-1 on images."""
    res = _load(bench, "teach/images.json")
    b = res["budgets"]
    lines = [
        "| problem | eps | ITD GFT-1 | ITD RFT-1 | RFT / GFT (goal) | theory | "
        + " | ".join(f"loss @{x:,}: GFT / RFT" for x in b) + " |",
        "| --- " * (6 + len(b)) + "|",
    ]  # fmt: skip
    for r in res["results"]:
        rft = (
            "-"
            if r["rft_itd_mean"] is None
            else f"{r['rft_itd_mean']:,.0f} ± {r['rft_itd_std']:,.0f}"
        )
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f} (>= {r['goal']:g})"
        losses = [
            f"{r['runs']['GFT-1'][0]['loss_at'][str(x)]:.1e} / "
            f"{statistics.mean(q['loss_at'][str(x)] for q in r['runs']['RFT-1']):.1e}"
            for x in b
        ]
        lines.append(f"| {r['problem']} | {r['eps']:.2g} | {r['gft_itd']:,} | {rft} | {ratio} | "
                     f"{r['theory_ratio']:.2f} | " + " | ".join(losses) + " |")  # fmt: skip
    return "\n".join(lines)


@_table("teach-speed")
def _teach_speed(bench: Path) -> str:
    """benchmarks/teach/speed.py (speed.json): GFT-1 iterations per second against pool size."""
    res = _load(bench, "teach/speed.json")
    lines = [
        "| pixels | notebook loop (numpy) | mltk dense | mltk truncated | truncated / dense |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['size']}x{r['size']} | {r['notebook']['it_per_s']:,.0f} | "
                     f"{r['dense']['it_per_s']:,.0f} | {r['truncated']['it_per_s']:,.0f} | "
                     f"{r['speedup']:,.0f}x |")  # fmt: skip
    return "\n".join(lines)


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


TRACE_NAMES = {"independent": "independent", "cp": "CP-4", "tt": "TT-4 (TRACE)"}


def _kg_table(res) -> str:
    rows = res["rows"]
    lines = [
        "| data | distribution | epochs | lr | seeds | MRR | Hits@1 | Hits@10 | MRR (strict) "
        "| s / epoch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    published = {r["data"]: r["methods"] for r in res["published"]}
    for data in dict.fromkeys(r["data"] for r in rows):
        for decomp in ("independent", "cp", "tt"):
            group = [r for r in rows if r["data"] == data and r["decomp"] == decomp]
            if not group:
                continue
            lines.append(
                f"| {data} | {TRACE_NAMES[decomp]} | {group[0]['epochs']} | {group[0]['lr']:g} | "
                f"{len(group)} | "
                + " | ".join(_spread([r[k] for r in group])
                             for k in ("mrr", "hits@1", "hits@10", "mrr_strict"))
                + f" | {statistics.mean(r['epoch_seconds'] for r in group):.1f} |"
            )  # fmt: skip
        for method, m in published.get(data, {}).items():
            lines.append(f"| {data} | {method} (published) | | | | {m[0]:.3f} | {m[1]:.3f} | "
                         f"{m[2]:.3f} | | |")  # fmt: skip
    return "\n".join(lines)


@_table("trace-kg")
def _trace_kg(bench: Path) -> str:
    """benchmarks/trace/kg.py (kg.json): independent, CP and TT rule chains, three seeds."""
    return _kg_table(_load(bench, "trace/kg.json"))


@_table("trace-kg-lr")
def _trace_kg_lr(bench: Path) -> str:
    """benchmarks/trace/kg.py --lr 0.02 (kg-lr0.02.json): kinship at a smaller step size."""
    return _kg_table(_load(bench, "trace/kg-lr0.02.json"))


@_table("trace-goals")
def _trace_goals(bench: Path) -> str:
    """benchmarks/trace/kg.py and walk.py: the plugin's goals, measured."""
    res = _load(bench, "trace/kg.json")
    rows = res["rows"]

    def mrr(data, decomp):
        return [r["mrr"] for r in rows if r["data"] == data and r["decomp"] == decomp]

    lines = ["| goal | measured | met |", "| --- | --- | --- |"]
    tt, ind = mrr("kinship", "tt"), mrr("kinship", "independent")
    if len(tt) > 1 and len(ind) > 1:
        gain = statistics.mean(tt) - statistics.mean(ind)
        s_tt, s_ind = statistics.stdev(tt), statistics.stdev(ind)
        lines.append(f"| kinship: TT >= independent + 0.02 MRR | {gain:+.3f} | "
                     f"{'yes' if gain >= 0.02 else 'no'} |")  # fmt: skip
        lines.append(f"| kinship: TT's seed spread <= half of independent's | {s_tt:.3f} vs "
                     f"{s_ind:.3f} / 2 | {'yes' if s_tt <= s_ind / 2 else 'no'} |")  # fmt: skip
    drum = {r["data"]: r["methods"].get("DRUM") for r in res["published"]}
    for data in dict.fromkeys(r["data"] for r in rows):
        got = mrr(data, "tt")
        if got and drum.get(data):
            m = statistics.mean(got)
            lines.append(f"| {data}: TT at or above DRUM's MRR | {m:.3f} vs {drum[data][0]:.2f} | "
                         f"{'yes' if m >= drum[data][0] else 'no'} |")  # fmt: skip
        elif got:
            lines.append(f"| {data}: TT at or above DRUM's MRR | {statistics.mean(got):.3f}; "
                         "no published DRUM row found | - |")  # fmt: skip
    walk = _load(bench, "trace/walk.json")["rows"]
    for r in walk:
        if r["data"] == "family":
            limit = 15 if r["decomp"] == "independent" else 60
            epoch = r[r["auto"]] * r["steps_per_epoch"]
            name = "independent" if r["decomp"] == "independent" else "TT-4"
            lines.append(f"| family: an epoch ({name}) < {limit} s on one core | {epoch:.1f} s | "
                         f"{'yes' if epoch < limit else 'no'} |")  # fmt: skip
    return "\n".join(lines)


@_table("trace-walk")
def _trace_walk(bench: Path) -> str:
    """benchmarks/trace/walk.py (walk.json): dense against sparse walks, seconds per step."""
    lines = [
        "| data | distribution | dense: s / step | sparse: s / step | epoch, layout picked |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in _load(bench, "trace/walk.json")["rows"]:
        epoch = r[r["auto"]] * r["steps_per_epoch"]
        lines.append(f"| {r['data']} | {TRACE_NAMES[r['decomp']]} | {r['dense']:.3f} | "
                     f"{r['sparse']:.3f} | {epoch:.1f} s ({r['auto']}) |")  # fmt: skip
    return "\n".join(lines)


@_table("trace-hin")
def _trace_hin(bench: Path) -> str:
    """benchmarks/trace/hin.py (hin.json): meta-paths on the generated graph, three seeds."""
    rows = _load(bench, "trace/hin.json")["rows"]
    lines = [
        "| distribution | seeds | test Macro-F1 | test Micro-F1 | planted path on top "
        "| its share | train s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for decomp in ("independent", "cp", "tt"):
        group = [r for r in rows if r["decomp"] == decomp]
        if not group:
            continue
        name = "independent (GTN-style)" if decomp == "independent" else TRACE_NAMES[decomp]
        found = sum(bool(r["recovered"]) for r in group)
        lines.append(
            f"| {name} | {len(group)} | {_spread([r['macro_f1'] for r in group])} | "
            f"{_spread([r['micro_f1'] for r in group])} | {found}/{len(group)} | "
            f"{_spread([r['top_share'] for r in group])} | "
            f"{statistics.mean(r['train_seconds'] for r in group):.1f} |"
        )
    return "\n".join(lines)


GEOM_ROWS = (
    "tiny model before fine-tuning",
    "plain",
    "plain + name negative",
    "name",
    "mask",
    "esd",
    "geom",
    "geom, frequent cells",
    "geom, no negative prompt",
)  # as in benchmarks/geom-erasing/removal.py ROWS


def _geom_table(bench: Path, setting: str) -> str:
    rows = [r for r in _load(bench, "geom-erasing/removal.json")["rows"] if r["setting"] == setting]
    if not rows:
        raise TableError(f"benchmarks/geom-erasing/removal.json has no {setting}-setting rows")
    lines = [
        "| concept | method | seeds | ICR | ICR (cross-check) | alignment | Fréchet | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for concept in dict.fromkeys(r["concept"] for r in rows):
        for name in GEOM_ROWS:
            g = [r for r in rows if r["concept"] == concept and r["row"] == name]
            if not g:
                continue
            untrained = name.startswith("tiny") or (name.startswith("plain") and setting == "model")
            seconds = "-" if untrained else (
                f"{statistics.mean(r['train_seconds'] for r in g):.0f}")  # fmt: skip
            lines.append(
                f"| {concept} | {name} | {len(g)} | {_spread([r['icr'] for r in g])} | "
                f"{_spread([r['icr_cross'] for r in g])} | {_spread([r['alignment'] for r in g])} "
                f"| {statistics.mean(r['frechet'] for r in g):.0f} | {seconds} |"
            )
    return "\n".join(lines)


@_table("geom-goals")
def _geom_goals(bench: Path) -> str:
    """benchmarks/geom-erasing/removal.py (removal.json): the issue's goals, per concept and
    setting, on the mean over seeds: ICR <= 0.2x plain's, <= 0.5x the best name-based
    baseline's (the name as negative prompt, ESD-x), alignment within 0.05 of plain's."""
    rows = _load(bench, "geom-erasing/removal.json")["rows"]
    lines = [
        "| setting | concept | seeds | sampled | ICR / plain | ICR / best name-based "
        "| alignment - plain | goals |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def mean(setting, concept, row, key):
        g = [
            r[key]
            for r in rows
            if (r["setting"], r["concept"], r["row"]) == (setting, concept, row)
        ]
        return statistics.mean(g) if g else None

    for setting in ("data", "model"):
        for concept in dict.fromkeys(r["concept"] for r in rows if r["setting"] == setting):
            plain = mean(setting, concept, "plain", "icr")
            named = min(mean(setting, concept, n, "icr") for n in ("plain + name negative", "esd"))
            seeds = len(
                {r["seed"] for r in rows if (r["setting"], r["concept"]) == (setting, concept)}
            )
            for row, label in (
                ("geom", "with its negative prompt"),
                ("geom, no negative prompt", "without"),
            ):
                icr = mean(setting, concept, row, "icr")
                if icr is None:
                    continue
                da = mean(setting, concept, row, "alignment") - mean(
                    setting, concept, "plain", "alignment"
                )
                ok = icr <= 0.2 * plain and icr <= 0.5 * named and da >= -0.05
                ratio = [f"{icr / b:.2f}x" if b else "-" for b in (plain, named)]
                lines.append(
                    f"| {setting} | {concept} | {seeds} | {label} | {ratio[0]} | {ratio[1]} "
                    f"| {da:+.3f} | {'met' if ok else 'not met'} |"
                )
    return "\n".join(lines)


@_table("geom-premise")
def _geom_premise(bench: Path) -> str:
    """benchmarks/geom-erasing/premise.py (premise.json): does plain fine-tuning paint it?"""
    lines = ["| concept | placement | share with it | steps | ICR | alignment | Fréchet |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in _load(bench, "geom-erasing/premise.json")["rows"]:
        lines.append(f"| {r['concept']} | {r['placement']} | {r['ratio']} | {r['steps']} | "
                     f"{r['icr']:.3f} | {r['alignment']:.3f} | {r['frechet']:.0f} |")  # fmt: skip
    return "\n".join(lines)


@_table("geom-detector")
def _geom_detector(bench: Path) -> str:
    """benchmarks/geom-erasing/build_detector.py (detector.json): the embedded detectors."""
    lines = [
        "| detector | concept | cell F1 | cell F1 after VAE | false alarms, tiny model |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in _load(bench, "geom-erasing/detector.json").items():
        label = "shipped" if name == "seed 0" else f"cross-check ({name})"
        for c in r["f1"]:
            lines.append(
                f"| {label} | {c} | {r['f1'][c]:.3f} | {r['f1_after_vae'][c]:.3f} "
                f"| {r['false_alarms'][c]:.3f} |"
            )
    return "\n".join(lines)


@_table("geom-data")
def _geom_data(bench: Path) -> str:
    """benchmarks/geom-erasing/removal.py (removal.json): the data setting."""
    return _geom_table(bench, "data")


@_table("geom-model")
def _geom_model(bench: Path) -> str:
    """benchmarks/geom-erasing/removal.py (removal.json): the model setting."""
    return _geom_table(bench, "model")


@_table("trace-nas")
def _trace_nas(bench: Path) -> str:
    """benchmarks/trace/nas.py (nas.json): the cell search on digits, TT against the others."""
    res = _load(bench, "trace/nas.json")
    lines = [
        "| distribution | seeds | test accuracy (retrained) | P(derived cell) | search s "
        "| steps / s | device |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for decomp in ("independent", "cp", "tt", "random"):
        group = [r for r in res["runs"] if r["decomp"] == decomp]
        if not group:
            continue
        name = TRACE_NAMES.get(decomp, "random cells")
        if decomp == "random":
            lines.append(f"| {name} | {len(group)} | {_spread([r['test_acc'] for r in group])} "
                         f"| - | - | - | {res['device']} |")  # fmt: skip
            continue
        lines.append(
            f"| {name} | {len(group)} | {_spread([r['test_acc'] for r in group])} | "
            f"{_spread([r['p_arch'] for r in group])} | "
            f"{statistics.mean(r['search_seconds'] for r in group):.0f} | "
            f"{statistics.mean(r['steps_per_s'] for r in group):.1f} | {res['device']} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- growclip
# As in benchmarks/growclip/stream.py (METHODS, TASKS).
GROWCLIP_METHODS = [
    "fixed small",
    "fixed large",
    "fixed large, continued",
    "manual growth",
    "GrowCLIP, plain inheritance",
    "GrowCLIP",
    "fixed small, equal FLOPs",
]


@_table("growclip-stream")
def _growclip_stream(bench: Path) -> str:
    """benchmarks/growclip/stream.py (stream.json): every method after the third arrival."""
    rows = _load(bench, "growclip/stream.json")["rows"]
    lines = [
        "| method | seeds | zero-shot mean | colour-shape | position | count | i2t R@1 "
        "| t2i R@1 | parameters | training TFLOPs | growths | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method in GROWCLIP_METHODS:
        g = [r for r in rows if r["method"] == method]
        if not g:
            continue
        growths = sorted({" / ".join(r["growth"][1:]) for r in g})
        lines.append(
            f"| {method} | {len(g)} | {_spread([r['zero_shot_mean'] for r in g])} | "
            + " | ".join(_spread([r[f"zero_shot_{t}"] for r in g]) for t in GROWCLIP_TASKS)
            + f" | {_spread([r['i2t_r@1'] for r in g])} | {_spread([r['t2i_r@1'] for r in g])} "
            f"| {statistics.mean(r['params'] for r in g):,.0f} "
            f"| {statistics.mean(r['cumulative_flops'] for r in g) / 1e12:.2f} "
            f"| {'; '.join(growths)} | {statistics.mean(r['seconds'] for r in g):.0f} |"
        )
    return "\n".join(lines)


GROWCLIP_TASKS = ("colour-shape", "position", "count")


@_table("growclip-steps")
def _growclip_steps(bench: Path) -> str:
    """benchmarks/growclip/stream.py and stream.py --steps 2400 (stream.json,
    stream-steps2400.json): the same methods at 600 and 2,400 steps per arrival, on the seeds
    the longer probe has."""
    long = _load(bench, "growclip/stream-steps2400.json")["rows"]
    seeds = sorted({r["seed"] for r in long})
    lines = [
        "| steps per arrival | method | seeds | zero-shot mean | colour-shape | position | count "
        "| training TFLOPs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for steps, rows in ((600, _load(bench, "growclip/stream.json")["rows"]), (2400, long)):
        for method in ("fixed small", "GrowCLIP", "fixed small, equal FLOPs"):
            g = [r for r in rows if r["method"] == method and r["seed"] in seeds]
            if not g:
                continue
            tasks = " | ".join(_spread([r[f"zero_shot_{t}"] for r in g]) for t in GROWCLIP_TASKS)
            flops = statistics.mean(r["cumulative_flops"] for r in g) / 1e12
            lines.append(
                f"| {steps:,} | {method} | {len(g)} | {_spread([r['zero_shot_mean'] for r in g])} "
                f"| {tasks} | {flops:.2f} |"
            )
    return "\n".join(lines)


def _group(rows: list[dict], key: str, value: str, source: str) -> list[dict]:
    g = [r for r in rows if r[key] == value]
    if not g:
        raise TableError(f"{source} has no {value!r} rows")
    return g


def _mean(g: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in g)


def _sd(g: list[dict], key: str) -> float:
    return statistics.stdev(r[key] for r in g) if len(g) > 1 else float("nan")


@_table("growclip-goals")
def _growclip_goals(bench: Path) -> str:
    """benchmarks/growclip/stream.py (stream.json): the issue's goals on the means over seeds:
    GrowCLIP's final zero-shot within fixed large's seed spread at <= 0.6x its training FLOPs,
    and >= 2 points above fixed small at equal FLOPs; PIM against plain inheritance."""
    rows = _load(bench, "growclip/stream.json")["rows"]

    def group(method):
        return _group(rows, "method", method, "benchmarks/growclip/stream.json")

    mean, sd = _mean, _sd
    grow, large = group("GrowCLIP"), group("fixed large")
    lines = ["| goal | measured | met |", "| --- | --- | --- |"]
    gap = mean(grow, "zero_shot_mean") - mean(large, "zero_shot_mean")
    spread = sd(large, "zero_shot_mean")
    if len(large) > 1:
        within = f"{gap:+.3f} (spread {spread:.3f}, {len(large)} seeds)"
        lines.append(
            f"| zero-shot within fixed large's seed spread | {within} | {_yes(gap >= -spread)} |"
        )
    else:
        lines.append(f"| zero-shot within fixed large's seed spread | {gap:+.3f} (one seed) | - |")
    ratio = mean(grow, "cumulative_flops") / mean(large, "cumulative_flops")
    lines.append(f"| training FLOPs <= 0.6x fixed large's | {ratio:.2f}x | {_yes(ratio <= 0.6)} |")
    equal = [r for r in rows if r["method"] == "fixed small, equal FLOPs"]
    if equal:
        d = mean(grow, "zero_shot_mean") - mean(equal, "zero_shot_mean")
        lines.append(
            f"| >= 2 points above fixed small at equal FLOPs | {100 * d:+.1f} points "
            f"| {_yes(d >= 0.02)} |"
        )
    plain = [r for r in rows if r["method"] == "GrowCLIP, plain inheritance"]
    if plain:
        d = mean(grow, "zero_shot_mean") - mean(plain, "zero_shot_mean")
        lines.append(
            f"| PIM against plain inheritance | {d:+.3f} (spreads {sd(grow, 'zero_shot_mean'):.3f}"
            f" / {sd(plain, 'zero_shot_mean'):.3f}) | - |"
        )
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- epic


@_table("epic-saliency")
def _epic_saliency(bench: Path) -> str:
    """benchmarks/epic/saliency.py (saliency.json): each saliency measure on a trained model."""
    rows = _load(bench, "epic/saliency.json")["rows"]
    lines = [
        "| model | measure | captions | attribute word ranked first | ms per caption |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} ({r['objective']}) | {r['method']} | {r['captions']} "
            f"| {r['attribute_first']:.3f} | {r['ms_per_caption']:.1f} |"
        )
    return "\n".join(lines)


# As in benchmarks/epic/bias.py (OBJECTIVES).
EPIC_OBJECTIVES = ("albef", "epic", "rtd-random", "salient-mask")


def _epic_rows(bench: Path, bias: float = 0.8) -> list[dict]:
    return [r for r in _load(bench, "epic/bias.json")["rows"] if r.get("bias", 0.8) == bias]


@_table("epic-bias")
def _epic_bias(bench: Path) -> str:
    """benchmarks/epic/bias.py (bias.json): every objective from the same ALBEF start, equal
    steps, on the counterfactual split."""
    rows = _epic_rows(bench)
    lines = [
        "| objective | seeds | i2t R@1 | t2i R@1 | ITM hard | colour | shape | position | count "
        "| reliance | colour reliance | token AUC | seconds |",
        "| --- " * 13 + "|",
    ]
    keys = (
        "i2t_r@1",
        "t2i_r@1",
        "itm_hard",
        "itm_hard_colour",
        "itm_hard_shape",
        "itm_hard_position",
        "itm_hard_count",
        "reliance",
        "reliance_colour",
        "token_auc",
    )
    for obj in EPIC_OBJECTIVES:
        g = [r for r in rows if r["objective"] == obj and r["epic_weight"] is None]
        if not g:
            continue
        cells = " | ".join(_spread([r[k] for r in g]) for k in keys)
        secs = statistics.mean(r["seconds"] for r in g)
        lines.append(f"| {obj} | {len(g)} | {cells} | {secs:.0f} |")
    return "\n".join(lines)


@_table("epic-goals")
def _epic_goals(bench: Path) -> str:
    """benchmarks/epic/bias.py (bias.json): the issue's goals on the means over seeds: EPIC
    over ALBEF by 5 points of hard-negative ITM and 3 of counterfactual R@1 (beyond the seed
    spread), visual reliance x1.5, and over random-mask RTD."""
    rows = [r for r in _epic_rows(bench) if r["epic_weight"] is None]

    def group(obj):
        return _group(rows, "objective", obj, "benchmarks/epic/bias.json")

    mean, sd = _mean, _sd
    epic, albef, rtd = group("epic"), group("albef"), group("rtd-random")
    lines = ["| goal | measured | met |", "| --- | --- | --- |"]
    d = mean(epic, "itm_hard") - mean(albef, "itm_hard")
    spread = max(sd(epic, "itm_hard"), sd(albef, "itm_hard"))
    lines.append(
        f"| hard-negative ITM >= 5 points over ALBEF | {100 * d:+.1f} points (spread "
        f"{100 * spread:.1f}) | {_yes(d >= 0.05 and d > spread)} |"
    )
    r_epic = (mean(epic, "i2t_r@1") + mean(epic, "t2i_r@1")) / 2
    r_albef = (mean(albef, "i2t_r@1") + mean(albef, "t2i_r@1")) / 2
    d = r_epic - r_albef
    lines.append(
        f"| counterfactual R@1 (mean of both ways) >= 3 points over ALBEF | {100 * d:+.1f} "
        f"points | {_yes(d >= 0.03)} |"
    )
    ratio = mean(epic, "reliance") / mean(albef, "reliance")
    lines.append(f"| visual reliance x1.5 | {ratio:.2f}x | {_yes(ratio >= 1.5)} |")
    d = mean(epic, "itm_hard") - mean(rtd, "itm_hard")
    lines.append(
        f"| EPIC over random-mask RTD (hard-negative ITM) | {100 * d:+.1f} points | {_yes(d > 0)} |"
    )
    d = mean(epic, "token_auc") - mean(rtd, "token_auc")
    lines.append(f"| EPIC over random-mask RTD (token AUC) | {d:+.3f} | {_yes(d > 0)} |")
    return "\n".join(lines)


@_table("epic-weights")
def _epic_weights(bench: Path) -> str:
    """benchmarks/epic/bias.py --weights (bias.json): EPIC's loss weight, seed 0."""
    rows = _epic_rows(bench)
    sweep = [r for r in rows if r["objective"] == "epic" and r["seed"] == 0]
    lines = [
        "| EPIC weight | ITM hard | colour reliance | token AUC | i2t R@1 | t2i R@1 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(sweep, key=lambda r: 8.0 if r["epic_weight"] is None else r["epic_weight"]):
        w = "8 (default)" if r["epic_weight"] is None else f"{r['epic_weight']:g}"
        lines.append(
            f"| {w} | {r['itm_hard']:.3f} | {r['reliance_colour']:.3f} | {r['token_auc']:.3f} "
            f"| {r['i2t_r@1']:.3f} | {r['t2i_r@1']:.3f} |"
        )
    return "\n".join(lines)


@_table("epic-bias-probe")
def _epic_bias_probe(bench: Path) -> str:
    """benchmarks/epic/bias.py --bias B (bias.json): how biased the world must be before ALBEF
    reads colour from the text; the default world (0.8) first."""
    rows = _load(bench, "epic/bias.json")["rows"]
    lines = [
        "| bias | objective | seeds | colour MLM, image | colour MLM, blank | colour reliance "
        "| ITM hard, colour | ITM hard, shape |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    biases = sorted({r.get("bias", 0.8) for r in rows})
    for b in biases:
        for obj in EPIC_OBJECTIVES:
            g = [
                r
                for r in rows
                if r.get("bias", 0.8) == b
                and r["objective"] == obj
                and r["epic_weight"] is None
                and r.get("mlm_acc_colour") is not None
            ]
            if not g:
                continue
            keys = (
                "mlm_acc_colour",
                "mlm_acc_blank_colour",
                "reliance_colour",
                "itm_hard_colour",
                "itm_hard_shape",
            )
            cells = " | ".join(_spread([r[k] for r in g]) for k in keys)
            lines.append(f"| {b:g} | {obj} | {len(g)} | {cells} |")
    return "\n".join(lines)


ANTNET_ROWS = [
    ("majority", "-", "majority class"),
    ("tfidf-answer", "-", "TF-IDF of the answer + LR"),
    ("tfidf-qa", "-", "TF-IDF of question, options, answer + LR"),
    ("minilm-lr", "MiniLM, frozen", "mean-pooled + option cosines + LR"),
    ("bilstm-concat", "BiLSTM", "one sequence, pooled"),
    ("bilstm-interactive", "BiLSTM", "interactive attention (Semi-IAN's family)"),
    ("cross-encoder", "MiniLM, fine-tuned", "cross-encoder"),
    ("antnet-bilstm", "BiLSTM", "AntNet"),
    ("antnet-minilm", "MiniLM, frozen", "AntNet"),
    ("antnet-minilm-ft", "MiniLM, fine-tuned", "AntNet"),
    ("antnet-minilm-no-skeleton", "MiniLM, frozen", "AntNet minus skeleton extraction"),
    ("antnet-minilm-no-relevance", "MiniLM, frozen", "AntNet minus relevance-aware answer"),
    ("antnet-minilm-k1", "MiniLM, frozen", "AntNet with one hop (K = 1)"),
    ("antnet-minilm-self-paced", "MiniLM, frozen", "AntNet, self-paced weights"),
]
ANTNET_BASELINES = (
    "majority",
    "tfidf-answer",
    "tfidf-qa",
    "minilm-lr",
    "bilstm-concat",
    "bilstm-interactive",
)


def _antnet(bench: Path) -> dict:
    return _load(bench, "antnet/compare.json")["rows"]


@_table("antnet-compare")
def _antnet_compare(bench: Path) -> str:
    """benchmarks/antnet/compare.py (compare.json): every method, mean ± std over seeds."""
    rows = _antnet(bench)
    lines = [
        "| method | encoder | seeds | test accuracy | test macro-F1 | OOD accuracy "
        "| OOD macro-F1 | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, encoder, name in ANTNET_ROWS:
        g = list(rows.get(key, {}).values())
        if not g:
            continue
        keys = ("test_accuracy", "test_macro_f1", "ood_accuracy", "ood_macro_f1")
        cells = " | ".join(_spread([r[k] for r in g]) for k in keys)
        secs = statistics.mean(r["train_seconds"] for r in g)
        lines.append(f"| {name} | {encoder} | {len(g)} | {cells} | {secs:.0f} |")
    return "\n".join(lines)


def _antnet_group(rows: dict, key: str) -> list:
    g = list(rows.get(key, {}).values())
    if not g:
        raise TableError(f"benchmarks/antnet/compare.json has no {key!r} rows")
    return g


@_table("antnet-goals")
def _antnet_goals(bench: Path) -> str:
    """benchmarks/antnet/compare.py (compare.json): the issue's goals on the means over seeds.
    A module's removal counts as costing OOD accuracy when the drop exceeds the standard
    deviation over seeds of both rows."""
    rows = _antnet(bench)
    full = _antnet_group(rows, "antnet-minilm")
    ood, test = _mean(full, "ood_accuracy"), _mean(full, "test_accuracy")
    best = max(
        (k for k in ANTNET_BASELINES if rows.get(k)),
        key=lambda k: _mean(_antnet_group(rows, k), "ood_accuracy"),
    )
    base = _mean(_antnet_group(rows, best), "ood_accuracy")
    names = {k: f"{n} over {e.split(',')[0]}" if e != "-" else n for k, e, n in ANTNET_ROWS}
    lines = [
        "| goal (AntNet, frozen MiniLM) | measured | met |",
        "| --- | --- | --- |",
        f"| OOD accuracy >= 0.85 | {_spread([r['ood_accuracy'] for r in full])} | "
        f"{_yes(ood >= 0.85)} |",
        f"| >= 5 points above the best non-fine-tuned baseline on OOD ({names[best]}: "
        f"{base:.3f}) | "
        f"{100 * (ood - base):+.1f} points | {_yes(ood - base >= 0.05)} |",
        f"| test accuracy >= 0.97 | {_spread([r['test_accuracy'] for r in full])} | "
        f"{_yes(test >= 0.97)} |",
    ]
    for key, module in (
        ("antnet-minilm-no-skeleton", "skeleton extraction"),
        ("antnet-minilm-no-relevance", "the relevance-aware answer"),
        ("antnet-minilm-k1", "multi-hop fusion (K = 1)"),
    ):
        if not rows.get(key):
            continue
        g = _antnet_group(rows, key)
        drop = ood - _mean(g, "ood_accuracy")
        spread = max(_sd(full, "ood_accuracy"), _sd(g, "ood_accuracy"))
        change = f"{abs(100 * drop):.1f} points {'lost' if drop > 0 else 'gained'}"
        lines.append(
            f"| removing {module} costs OOD accuracy beyond the seed spread | "
            f"{change} (spread {100 * spread:.1f}) | {_yes(drop > spread)} |"
        )
    return "\n".join(lines)


@_table("antnet-phenomena")
def _antnet_phenomena(bench: Path) -> str:
    """benchmarks/antnet/compare.py (compare.json): OOD accuracy per answer phenomenon, mean
    over seeds."""
    rows = _antnet(bench)
    shown = [
        k
        for k in (
            "minilm-lr",
            "bilstm-interactive",
            "antnet-bilstm",
            "antnet-minilm",
            "antnet-minilm-ft",
            "cross-encoder",
        )
        if rows.get(k)
    ]
    first = next(iter(_antnet_group(rows, shown[0])))
    kinds = list(first["ood_phenomena"])
    lines = [
        "| OOD phenomenon | n | " + " | ".join(shown) + " |",
        "| --- " * (len(shown) + 2) + "|",
    ]
    for kind in kinds:
        cells = []
        for k in shown:
            g = _antnet_group(rows, k)
            cells.append(f"{statistics.mean(r['ood_phenomena'][kind]['accuracy'] for r in g):.2f}")
        n = statistics.mean(r["ood_phenomena"][kind]["n"] for r in _antnet_group(rows, shown[0]))
        lines.append(f"| {kind} | {n:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


NAMES = list(_GENERATORS)


# ------------------------------------------------------------------------------ the markers
def blocks(text: str) -> list[tuple[str, str, int]]:
    """(name, text between the markers, line number of the opening marker) of every block."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        name = _opening(lines[i])
        if name is None:
            if _closing(lines[i]):
                raise TableError(f"line {i + 1}: {CLOSE} without an opening marker")
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not _closing(lines[j]):
            if _opening(lines[j]) is not None:
                raise TableError(f"line {j + 1}: a block opens inside block {name!r}")
            j += 1
        if j == len(lines):
            raise TableError(f"line {i + 1}: block {name!r} is never closed")
        out.append((name, "\n".join(lines[i + 1 : j]), i + 1))
        i = j + 1
    return out


def markdown_tables(text: str) -> list[tuple[int, str, bool]]:
    """(line number, header line stripped, inside a generated block) of every markdown table
    (a line starting with | followed by a separator line) outside fenced code."""
    out, lines = [], text.split("\n")
    inside = fence = False
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("```"):
            fence = not fence
        if fence:
            continue
        if _opening(line) is not None:
            inside = True
        elif _closing(line):
            inside = False
        elif s.startswith("|") and i + 1 < len(lines) and _separator(lines[i + 1]):
            out.append((i + 1, s, inside))
    return out


def refresh(path: Path | str, bench: Path | None = None) -> bool:
    """Rewrite every marked block of a docs file from its generator; True if the file changed.
    Every generator runs before anything is written, so a failing one leaves the file as it was."""
    path = Path(path)
    text = path.read_text()
    lines, out, i = text.split("\n"), [], 0
    blocks(text)  # marker errors first, with line numbers
    while i < len(lines):
        out.append(lines[i])
        name = _opening(lines[i])
        if name is None:
            i += 1
            continue
        j = i + 1
        while not _closing(lines[j]):
            j += 1
        out.extend(generate(name, bench).split("\n"))
        out.append(lines[j])
        i = j + 1
    new = "\n".join(out)
    if new != text:
        path.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> None:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("\n".join(NAMES))
    elif args == ["--refresh"]:
        for doc in DOCS:
            if refresh(doc):
                print(f"updated {doc.relative_to(ROOT)}")
    else:
        print("\n\n".join(generate(name) for name in args))


if __name__ == "__main__":
    main()
