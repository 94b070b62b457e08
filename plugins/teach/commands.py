"""The verbs' bodies: run several teachers, train one and keep its expansion, score runs, and
evaluate a taught learner."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np

from mltk.errors import DataError, UsageError

from . import data as D
from . import reports
from .config import RunConfig, TeachConfig
from .kernels import Kernel
from .resolve import Plan, plan, pool_factory
from .teachers import parse
from .teaching import Trace, teach


def _absolute(cfg):
    """A run records where its files are, so eval and predict work from any folder."""
    changes = {}
    for name in ("data", "f0", "target_alt"):
        value = getattr(cfg, name)
        if value and Path(value).is_file():
            changes[name] = str(Path(value).resolve())
    return replace(cfg, **changes)


def _describe(p: Plan, log) -> None:
    prob, s = p.problem, p.settings
    shape = "x".join(map(str, prob.grid)) + " grid" if prob.grid else f"{prob.n} points"
    log(
        f"{prob.name}: pool of {shape}; {p.kernel.name} kernel h={p.kernel.h:g}, eta {s.eta:g}, "
        f"eps {s.eps:.3g} (initial loss {p.initial_loss:.4g}), {p.support} kernel support"
    )


def _teachers(names, k: float, p: Plan):
    teachers = parse(names, k)
    if p.problem.alternative is None and any(t.kind == "alt-gft" for t in teachers):
        raise UsageError(
            f"alt-gft teaches with an alternative target, and {p.problem.name} has none: give "
            "--target-alt (an expression or a file)"
        )
    return teachers


def _summary(traces: list[Trace]) -> dict:
    """ITD per teacher (mean and spread over seeds), the loss reached, the teaching-set size."""
    rows = []
    by_name: dict[str, list[Trace]] = {}
    for t in traces:
        by_name.setdefault(t.teacher.name, []).append(t)
    for group in by_name.values():
        itds = [t.itd for t in group if t.itd is not None]
        greedy = "gft" in group[0].teacher.kind and all(len(t.gammas) for t in group)
        rows.append(
            {
                "teacher": group[0].teacher.label,
                "itd": statistics.mean(itds) if len(itds) == len(group) else None,
                "itd_std": statistics.stdev(itds) if len(itds) == len(group) > 1 else None,
                "reached": f"{len(itds)}/{len(group)}",
                "loss": statistics.mean(float(t.losses[-1]) for t in group),
                "examples": round(statistics.mean(t.examples for t in group)),
                # the GFT speed-up over RFT its greedy ratios predict (greedy teachers only)
                "theory": statistics.mean(1 / float(t.gammas.mean()) for t in group)
                if greedy
                else None,
            }
        )
    return {"rows": rows, "by_name": by_name}


def _ratio(by_name: dict[str, list[Trace]]) -> tuple[float | None, float | None, str | None]:
    """ITD of RFT-k over GFT-k for the first k both teachers ran, and the theory's 1/mean(gamma)
    over that GFT run."""
    for name, group in by_name.items():
        if not name.startswith("gft-"):
            continue
        rft = by_name.get("rft-" + name[4:])
        gft_itd = [t.itd for t in group]
        if rft is None or None in gft_itd or any(t.itd is None for t in rft):
            continue
        measured = statistics.mean(t.itd for t in rft) / statistics.mean(gft_itd)
        theory = 1 / float(group[0].gammas.mean())
        return measured, theory, name[4:]
    return None, None, None


def run_teach(cfg: RunConfig, rt) -> dict:
    """`run`: each teacher (random ones over --seeds seeds) on one problem, side by side."""
    cfg = _absolute(cfg)
    p = plan(cfg, rt.device, rt.out.warn)
    teachers = _teachers(cfg.teacher, cfg.k, p)
    _describe(p, rt.out.log)
    build = pool_factory(p, rt.device, rt.dtype)
    traces = []
    total = sum(cfg.seeds if t.random else 1 for t in teachers)
    with rt.out.progress(total, "teaching") as bar:
        for teacher in teachers:
            for s in range(cfg.seeds if teacher.random else 1):
                trace = teach(
                    build,
                    p.problem.target,
                    teacher,
                    p.settings,
                    seed=rt.seed + s,
                    alternative=p.problem.alternative,
                )
                reached = (
                    f"ITD {trace.itd}"
                    if trace.itd is not None
                    else f"eps not reached in {trace.steps} steps"
                )
                rt.out.log(
                    f"{teacher.label} seed {rt.seed + s}: {reached}, loss {trace.losses[-1]:.3g}, "
                    f"{trace.iterations_per_second:,.0f} it/s"
                )
                traces.append(trace)
                bar.advance(1)
    rt.record(p.config)
    run = rt.run
    summary = _summary(traces)
    measured, theory, k = _ratio(summary["by_name"])
    files = _write(run.path, p, traces, title=f"{p.problem.name}: loss to eps {p.settings.eps:.3g}")
    return {
        "data": p.problem.name,
        "pool": p.problem.n,
        "eta": p.settings.eta,
        "eps": p.settings.eps,
        "bandwidth": p.kernel.h,
        "teachers": summary["rows"],
        "rft_over_gft": measured,
        "theory_ratio": theory,
        "ratio_k": k,
        "run": str(run.path),
        "files": files,
    }


def _write(folder: Path, p: Plan, traces: list[Trace], title: str) -> list[str]:
    reports.curves_csv(folder / "curves.csv", traces)
    reports.plot_curves(folder / "curves.png", traces, p.settings.eps, title)
    files = ["config.json", "curves.csv", "curves.png"]
    seen = set()
    for t in traces:  # the first seed of each teacher
        if t.teacher.name in seen:
            continue
        seen.add(t.teacher.name)
        reports.plot_snapshots(folder / f"snapshots-{t.teacher.name}.png", p.problem, t)
        files.append(f"snapshots-{t.teacher.name}.png")
        if reports.sequence_csv(folder / f"sequence-{t.teacher.name}.csv", p.problem, t):
            files.append(f"sequence-{t.teacher.name}.csv")
    return files


def run_train(cfg: TeachConfig, rt) -> dict:
    """`train`: one teacher, one seed; the expansion f = f0 + sum_j alpha_j K(x_j, .) is saved."""
    from mltk.checkpoint import save_checkpoint

    cfg = _absolute(cfg)
    p = plan(cfg, rt.device, rt.out.warn)
    (teacher,) = _teachers([cfg.teacher], cfg.k, p)
    _describe(p, rt.out.log)
    run = rt.run
    psi = [0.0]

    def on_step(t, loss, gamma):
        psi[0] += gamma
        if t % cfg.log_every == 0:
            run.log_metrics(t, loss=loss, gamma=gamma, psi=psi[0])

    trace = teach(
        pool_factory(p, rt.device, rt.dtype),
        p.problem.target,
        teacher,
        p.settings,
        seed=rt.seed,
        alternative=p.problem.alternative,
        on_step=on_step,
    )
    rt.record(replace(p.config, teacher=teacher.name))
    centres = np.flatnonzero(trace.coef)
    seq = trace.sequence
    save_checkpoint(
        run.checkpoint_dir,
        {
            "centres": p.problem.x[centres],
            "alphas": trace.coef[centres],
            "f": trace.final,
            "losses": trace.losses,
            "gammas": trace.gammas,
            **(
                {
                    "sequence_t": seq["t"],
                    "sequence_index": seq["index"],
                    "sequence_alpha": seq["alpha"],
                }
                if seq
                else {}
            ),
        },
        {
            "teacher": teacher.name,
            "itd": trace.itd,
            "steps": trace.steps,
            "eps": p.settings.eps,
            "eta": p.settings.eta,
            "seconds": trace.seconds,
            "f0_expression": p.problem.f0_expression,
            "grid": list(p.problem.grid) if p.problem.grid else None,
        },
    )
    files = _write(run.path, p, [trace], title=f"{teacher.label} on {p.problem.name}")
    if p.problem.grid is not None:
        reports.image_png(run.path / "f.png", p.problem.as_image(trace.final))
        files.append("f.png")
    return {
        "data": p.problem.name,
        "teacher": teacher.label,
        "itd": trace.itd,
        "steps": trace.steps,
        "final_loss": float(trace.losses[-1]),
        "final_rmse": float(trace.losses[-1]) * np.sqrt(p.problem.n),
        "eps": p.settings.eps,
        "examples": trace.examples,
        "theory_ratio": 1 / float(trace.gammas.mean()) if trace.steps else None,
        "it_per_s": round(trace.iterations_per_second),
        "run": str(run.path),
        "files": ["metrics.jsonl", "checkpoint/", *files],
    }


def _load_run(run):
    cfg = run.saved_config(TeachConfig)
    tensors, meta = run.load()
    return cfg, {k: v.numpy() for k, v in tensors.items()}, meta


def run_eval(ecfg, rt) -> dict:
    """`eval`: final loss, ITD and teaching-set size of each run, against its target or another."""
    from . import losses as L
    from .pools import stopping_loss

    rows = []
    for run in rt.sources:
        cfg, t, meta = _load_run(run)
        p = plan(cfg)
        target = p.problem.target
        if ecfg.target is not None:
            target = D._other(ecfg.target, p.problem, cfg.size, "--target")
        eps = ecfg.eps or float(meta["eps"])
        if ecfg.target is None:
            curve = t["losses"]
        else:
            curve = _replay(p, t, target) if "sequence_index" in t else None
        final = stopping_loss(cfg.loss, float(L.value(cfg.loss, t["f"], target).sum()), len(target))
        itd = None
        if curve is not None:
            below = np.flatnonzero(curve < eps)
            itd = int(below[0]) if len(below) else None
        rows.append(
            {
                "run": str(run.path),
                "data": p.problem.name,
                "teacher": meta["teacher"],
                "steps": int(meta["steps"]),
                "eps": eps,
                "itd": itd,
                "loss": final,
                "rmse": final * np.sqrt(len(target)),
                "examples": int(len(t["alphas"])),
            }
        )
    return {"runs": rows}


def _replay(p: Plan, t: dict, target: np.ndarray) -> np.ndarray:
    """The loss against ``target`` at every step of the recorded teaching sequence."""
    from .pools import stopping_loss

    prob = replace(p.problem, target=target)
    pool = pool_factory(replace(p, problem=prob))(None)
    steps, idx, alpha = (t[k] for k in ("sequence_t", "sequence_index", "sequence_alpha"))
    curve = [stopping_loss(p.settings.loss, pool.total(), prob.n)]
    bounds = np.flatnonzero(np.diff(steps)) + 1
    for i, a in zip(np.split(idx.astype(np.int64), bounds), np.split(alpha, bounds)):
        pool.add(i, a)
        curve.append(stopping_loss(p.settings.loss, pool.total(), prob.n))
    return np.asarray(curve)


def run_predict(pcfg, rt) -> dict:
    """`predict`: f on the pool (the image, or the curve), or at the points of a CSV."""
    import torch

    cfg, t, meta = _load_run(rt.source)
    kernel = Kernel(cfg.kernel, cfg.bandwidth, cfg.degree, cfg.coef0)
    out_dir = rt.output.path
    if pcfg.points is None:
        p = plan(cfg)
        x, values = p.problem.x, t["f"]
        if p.problem.grid is not None:
            img = p.problem.as_image(values)
            np.save(out_dir / "f.npy", img)
            reports.image_png(out_dir / "f.png", img)
            files = ["f.npy", "f.png"]
        else:
            reports.values_csv(out_dir / "f.csv", x, values)
            files = ["f.csv"]
    else:
        x, _ = _points(pcfg.points, t["centres"].shape[1])
        f0 = meta.get("f0_expression")
        if f0 is None:
            raise DataError(
                f"{rt.source.path} starts from f0 given on its pool only ({cfg.f0}); "
                "predicting at new points needs f0 = zero or an expression"
            )
        from .expression import evaluate

        values = evaluate(f0, x)
        c, a = torch.from_numpy(t["centres"]), torch.from_numpy(t["alphas"])
        xt = torch.from_numpy(x)
        for s in range(0, len(x), 4096):
            values[s : s + 4096] += (a @ kernel(c, xt[s : s + 4096])).numpy()
        reports.values_csv(out_dir / "f.csv", x, values)
        files = ["f.csv"]
    if pcfg.output is not None:
        _write_output(pcfg.output, x, values, cfg)
    shown = [
        {**{f"x{j + 1}": float(v) for j, v in enumerate(row)}, "f": float(f)}
        for row, f in zip(x[:10], values[:10])
    ]
    return {
        "points": int(len(values)),
        "values": shown,
        "output": str(pcfg.output) if pcfg.output else None,
        "folder": str(out_dir),
        "files": files,
    }


def _points(path: Path, d: int) -> tuple[np.ndarray, None]:
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise DataError(f"{path} is empty")
    header = [c.strip().lower() for c in rows[0]]
    keep = [j for j, h in enumerate(header) if h != "y"]
    try:
        x = np.array([[float(r[j]) for j in keep] for r in rows[1:] if r], dtype=np.float64)
    except (ValueError, IndexError) as exc:
        raise DataError(f"{path} has a value that is not a number or a short row ({exc})") from exc
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != d:
        raise DataError(
            f"{path} needs {d} input column(s) and at least one row; it has {len(keep)} column(s)"
        )
    return x, None


def _write_output(path: Path, x: np.ndarray, values: np.ndarray, cfg) -> None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reports.values_csv(path, x, values)
    elif suffix == ".npy":
        np.save(path, values)
    else:
        p = plan(cfg)
        if p.problem.grid is None or len(values) != p.problem.n:
            raise DataError("--output .png needs a run on an image, predicted on its pool")
        reports.image_png(path, p.problem.as_image(values))
