"""`mltk tensor`: nonconvex low-rank tensor completion (NORT, JMLR 2022, arXiv:2205.03059).

Imported on every `mltk` call: only the standard library, typer and light core modules at the
top; torch, numpy and the method are imported inside the commands.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from mltk import options as o
from mltk.hookspecs import hookimpl

app = typer.Typer(
    help="Fill in the missing entries of a tensor (image, video, array, coordinate list) with "
    "NORT: nonconvex overlapped low-rank regularisation solved without dense tensors.",
    no_args_is_help=True,
)

_PEN = "nuclear | capped-l1 | lsp | tnn | scad | mcp"


def _fit_options(
    preset: str = typer.Option("quick", help="quick | full | paper."),
    data: Optional[str] = typer.Option(
        None,
        help="astronaut | coffee | chelsea | rocket | hubble_deep_field | retina (photographs "
        "shipped with scikit-image), an image file, a .npy/.npz "
        "array, or a .csv/.parquet file of i,j,k,...,value rows.",
    ),
    mask: Optional[str] = typer.Option(None, help=".npy/.npz boolean mask, True = observed."),
    shape: Optional[str] = typer.Option(
        None, help="Tensor shape for a coordinate file, e.g. 100,200,50."
    ),
    observed: Optional[float] = typer.Option(
        None, help="Sample this fraction of a complete tensor as observed (images: 0.2)."
    ),
    size: Optional[int] = typer.Option(None, help="Images: longest side in pixels (0 = original)."),
    val_fraction: Optional[float] = typer.Option(
        None, help="Observed share held out for the lambda search."
    ),
    test_fraction: Optional[float] = typer.Option(
        None, help="Observed share held out for testing when the truth is unknown."
    ),
    penalty: Optional[str] = typer.Option(None, help=f"{_PEN} (default lsp)."),
    lam: Optional[float] = typer.Option(
        None,
        "--lambda",
        help="Per-mode weight lambda_d (threshold = sum_d lambda_d); default: searched.",
    ),
    theta: Optional[float] = typer.Option(
        None, help="Penalty parameter theta (default: scaled rule)."
    ),
    lambda_search: bool = typer.Option(
        False,
        "--lambda-search",
        help="Choose lambda on the validation entries (the default without --lambda).",
    ),
    max_rank: Optional[int] = typer.Option(None, help="Rank cap per mode."),
    solver: Optional[str] = typer.Option(
        None, help="nort | dense | convex (the dense references)."
    ),
    momentum: Optional[str] = typer.Option(None, help="adaptive | restart | none."),
    max_iter: Optional[int] = typer.Option(None, help="Iterations of the final stage."),
    tol: Optional[float] = typer.Option(None, help="Relative objective change that stops a stage."),
    power_iters: Optional[int] = typer.Option(None, help="Power iterations per mode and step."),
    final_power_iters: Optional[int] = typer.Option(
        None, help="Power iterations per mode and step in the final stage."
    ),
    path_steps: Optional[int] = typer.Option(None, help="Length of the lambda path."),
    path_ratio: Optional[float] = typer.Option(None, help="Shrink factor between path stages."),
    stage_iters: Optional[int] = typer.Option(None, help="Iterations per path stage."),
    dtype: Optional[str] = typer.Option(None, help="float32 | float64."),
    device: o.Device = "auto",
    precision: o.Precision = "auto",
    seed: o.Seed = 0,
    threads: o.Threads = None,
    deterministic: o.Deterministic = False,
    out: o.Out = None,
    config: o.Config = None,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
):  # pragma: no cover - a signature template, never called
    ...


_FIT_SIGNATURE = inspect.signature(_fit_options, eval_str=True)


def _with_fit_options(fn):
    fn.__signature__ = _FIT_SIGNATURE
    return fn


def _run_fit(write_dense: bool, kw: dict) -> None:
    from mltk.config import build_config, config_to_dict
    from mltk.errors import UsageError
    from mltk.runs import RunDir
    from mltk.runtime import setup

    rt = setup(
        device=kw["device"],
        precision=kw["precision"],
        seed=kw["seed"],
        threads=kw["threads"],
        deterministic=kw["deterministic"],
        json=kw["json_out"],
        quiet=kw["quiet"],
    )
    from mltk_plugins.tensor import commands as c
    from mltk_plugins.tensor.config import TensorConfig, preset

    if kw["lambda_search"] and kw["lam"] is not None:
        raise UsageError(
            "--lambda-search chooses lambda itself; drop --lambda (or --lambda-search)"
        )
    fields = (
        "data",
        "mask",
        "shape",
        "observed",
        "size",
        "val_fraction",
        "test_fraction",
        "penalty",
        "lam",
        "theta",
        "max_rank",
        "solver",
        "momentum",
        "max_iter",
        "tol",
        "power_iters",
        "final_power_iters",
        "path_steps",
        "path_ratio",
        "stage_iters",
        "dtype",
    )
    cfg = build_config(
        TensorConfig,
        preset=preset(kw["preset"]),
        file=kw["config"],
        overrides={k: kw[k] for k in fields},
    )
    if kw["lambda_search"]:
        cfg.lam = 0.0
    c.validate(cfg)
    prob = c.load_problem(cfg, kw["seed"])
    run = RunDir.create("tensor", out=kw["out"])
    out = rt.out
    out.log(
        f"{prob.name}: shape {prob.shape}, {len(prob.train_val):,} training / {len(prob.val_val):,} "
        f"validation / {len(prob.test_val):,} test entries; solver {cfg.solver}, penalty {cfg.penalty}"
    )
    import torch

    torch.manual_seed(kw["seed"])
    res = c.fit(cfg, prob, rt.device, out.log, seed=kw["seed"])
    final = c.config_for_run(cfg, res)
    run.write_config(
        {
            **config_to_dict(c.with_absolute_paths(final)),
            "seed": kw["seed"],
            "chosen_lambda": res["lam"],
            **c.data_fingerprints(final),
        }
    )
    c.save_factors(run, res, prob, cfg, kw["seed"])
    hist = res["history"]
    for i, f in enumerate(hist.objective):
        row = {"objective": f, "time_s": hist.time[i]}
        run.log_metrics(i + 1, **row)
    c.write_history(run, hist)
    files = ["config.json", "metrics.jsonl", "checkpoint/", "convergence.csv", "convergence.png"]
    if write_dense:
        X = c.dense_result(res, prob.shape)
        if X is None:
            out.warn(
                f"the completed tensor {prob.shape} is too large to write densely; use `mltk tensor predict`"
            )
        else:
            files += c.write_tensor(run, X, prob)
    test = res["test"]
    data = {
        "data": prob.name,
        "shape": list(prob.shape),
        "solver": cfg.solver,
        "penalty": "nuclear" if cfg.solver == "convex" else cfg.penalty,
        "lambda": res["lam"],
        "theta": res["theta"],
        "test_rmse": test.get("rmse"),
        "test_mae": test.get("mae"),
        "test_psnr": test.get("psnr"),
        "test_entries": test.get("n", 0),
        "iterations": res["iterations"],
        "seconds": round(res["seconds"], 3),
        "ranks": res["ranks"],
        **{k: res[k] for k in ("val_rmse", "refined") if k in res},
        "peak_memory_mb": round(c.peak_memory_mb(), 1),
        **{k: round(res[k], 1) for k in ("gpu_peak_memory_mb",) if k in res},
        "run": str(run.path),
        "files": files,
    }
    from mltk.output import Table

    rows = [[k, v] for k, v in data.items() if k not in ("files",)]
    out.result(
        data,
        table=Table(
            title=f"mltk tensor {'complete' if write_dense else 'train'}",
            columns=["", "value"],
            in_json=False,  # the same keys and values are the JSON result itself
            rows=rows,
        ),
    )


@app.command()
@_with_fit_options
def complete(**kw) -> None:
    """Fill in the missing entries (fit, then write the completed tensor and pictures).

    Prints the test RMSE; writes the completed tensor, a before/after picture for images and the
    convergence curve. With no arguments: astronaut with 20% of its pixels observed.
    """
    _run_fit(True, kw)


@app.command()
@_with_fit_options
def train(**kw) -> None:
    """Fit and save the low-rank factors in a run folder (no dense tensor written)."""
    _run_fit(False, kw)


@app.command("eval")
def eval_(
    run_dir: Path = typer.Argument(..., help="A run folder written by train or complete."),
    device: o.Device = "auto",
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """RMSE, MAE and PSNR on the run's held-out test entries (the split is rebuilt from its seed)."""
    from mltk.config import config_from_dict
    from mltk.runs import RunDir
    from mltk.runtime import setup

    rt = setup(device=device, json=json_out, quiet=quiet)
    import torch
    from mltk_plugins.tensor import commands as c
    from mltk_plugins.tensor.config import TensorConfig

    run = RunDir.open(run_dir, plugin="tensor")
    saved = run.read_config()
    seed = int(saved.get("seed", 0))
    cfg = config_from_dict(
        TensorConfig,
        {k: v for k, v in saved.items() if k in TensorConfig.__dataclass_fields__},
        source=str(run.path / "config.json"),
    )
    c.check_fingerprints(cfg, saved)
    prob = c.load_problem(cfg, seed)
    model, meta = c.load_model(run, rt.device)
    if tuple(meta["shape"]) != tuple(prob.shape):
        from mltk.errors import DataError

        raise DataError(
            f"the checkpoint's shape {tuple(meta['shape'])} differs from the data's {prob.shape}"
        )
    idx = torch.from_numpy(prob.test_idx).to(rt.device)
    pred = c.values_at(model, idx, prob.shape)
    m = c.metrics(pred, torch.from_numpy(prob.test_val).to(pred))
    rt.out.result(
        {"run": str(run.path), **m},
        text=(
            f"test RMSE {m['rmse']:.5g}  MAE {m['mae']:.5g}  PSNR {m['psnr']:.2f} dB on {m['n']:,} entries"
        ),
    )


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A run folder written by train or complete."),
    coords: Optional[Path] = typer.Option(
        None, help="CSV of integer coordinates (one column per mode); default: the dense tensor."
    ),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        help="Write the values here: .csv (coordinates and value) or .npy (the values, or the dense tensor).",
    ),
    device: o.Device = "auto",
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Values at given coordinates, or the whole completed tensor when it fits in memory."""
    import math

    from mltk.errors import UsageError
    from mltk.runs import RunDir
    from mltk.runtime import setup

    rt = setup(device=device, json=json_out, quiet=quiet)
    from mltk_plugins.tensor import commands as c

    if output is not None:
        c.check_output(output, (".csv", ".npy") if coords is not None else (".npy",))
    run = RunDir.open(run_dir, plugin="tensor")
    model, meta = c.load_model(run, rt.device)
    shape = tuple(int(x) for x in meta["shape"])
    if coords is not None:
        idx = c.read_coords(str(coords), shape).to(rt.device)
        vals = c.values_at(model, idx, shape).cpu().double().numpy()
        if output is not None and output.suffix.lower() == ".npy":
            c.save_npy(output, vals)
        elif output is not None:
            from mltk.atomic import write_text

            lines = [",".join([*(f"i{d}" for d in range(len(shape))), "value"])]
            lines += [
                ",".join([*map(str, r), repr(float(v))])
                for r, v in zip(idx.cpu().tolist(), vals, strict=True)
            ]
            write_text(output, "\n".join(lines) + "\n")
        rows = [[*r, float(v)] for r, v in zip(idx.cpu().tolist()[:20], vals[:20], strict=True)]
        from mltk.output import Table

        rt.out.result(
            {
                "n": int(len(vals)),
                "values": vals.tolist(),
                "output": str(output) if output else None,
            },
            table=Table(
                title="predicted values (first 20)",
                columns=[*(f"i{d}" for d in range(len(shape))), "value"],
                rows=rows,
            ),
        )
        return
    if math.prod(shape) > c.DENSE_LIMIT:
        raise UsageError(f"the tensor {shape} is too large to predict densely; pass --coords")
    if output is None:
        raise UsageError("predicting the dense tensor needs --output FILE.npy (or pass --coords)")
    X = model.dense() if hasattr(model, "dense") else model
    c.save_npy(Path(output), X.detach().cpu().double().numpy())
    rt.out.result({"shape": list(shape), "output": str(output)}, text=f"wrote {output} {shape}")


@hookimpl
def mltk_register_commands(register):
    register("tensor", app, summary="Low-rank tensor completion with NORT (JMLR 2022).")


@hookimpl
def mltk_register_datasets(register):
    # the names of data.EMBEDDED_IMAGES (not imported: data.py pulls in numpy)
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina"):
        register(
            name,
            loader="mltk_plugins.tensor.data:load_image",
            description=f"scikit-image's {name} photograph (H x W x 3, values in [0, 1])",
            embedded=True,
        )
