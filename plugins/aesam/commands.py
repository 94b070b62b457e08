"""The bodies of `mltk aesam train|eval|predict|compare` (heavy: imported inside the commands)."""

from __future__ import annotations

import json
import statistics
from typing import Any

import numpy as np

from mltk.atomic import write_text
from mltk.checkpoint import load_training_state
from mltk.config import to_dict
from mltk.errors import DataError, UsageError

from .config import (
    PRESET_TUNED_FOR,
    SWITCH_SETTINGS,
    AESAMConfig,
    CompareConfig,
    PredictConfig,
    TuneConfig,
)
from .data import Dataset, check_range, load_data, load_inputs, normalise
from .stats import paired
from .training import (
    CHANCE_EPOCHS,
    EpochRecord,
    TrainState,
    at_chance,
    build_training,
    evaluate,
    left_chance,
    predict_proba,
    quick_run,
    steps_in_epoch,
    train,
)


def _data_for(cfg: AESAMConfig, seed: int) -> Dataset:
    return load_data(
        cfg.data,
        cfg.data_path,
        noise=cfg.noise,
        seed=seed,
        test_fraction=cfg.test_fraction,
        image_size=cfg.image_size,
        limit_train=cfg.limit_train,
    )


def _summary(cfg: AESAMConfig, rec: EpochRecord) -> dict[str, Any]:
    return {
        "optimizer": cfg.optimizer,
        "epochs": rec.epoch,
        "steps": rec.step,
        "test_acc": rec.test_acc,
        "test_loss": rec.test_loss,
        "train_acc": rec.train_acc,
        "sam_fraction": rec.sam_fraction,
        "grad_evals": rec.grad_evals,
        "wall_s": rec.wall_s,
    }


def run_train(cfg: AESAMConfig, rt) -> dict[str, Any]:
    import torch

    if rt.dtype == torch.float16:
        # fp16 needs loss scaling, and a scaled gradient would distort ||g||^2 and the switch.
        raise UsageError("--precision fp16 is not supported by aesam train; use bf16 or fp32")
    seed = rt.seed
    data = _data_for(cfg, seed)
    run = rt.run  # only now: a bad option or unreadable data leaves no empty folder behind
    dist = rt.dist
    state = build_training(cfg, data, rt.device, seed, world_size=dist.world_size)
    if rt.resumed:
        objects = dict(model=state.model, optimizer=state.optimizer, scheduler=state.scheduler)
        meta = run.restore_state(**objects)
        state.epoch = int(meta["epoch"])
        state.wall_s = float(meta["wall_s"])
        state.history = [EpochRecord(**r) for r in meta.get("history", [])]
        rt.out.log(f"resuming {run.path} at epoch {state.epoch}/{cfg.epochs}")
    rt.out.log(
        f"aesam train: {cfg.optimizer} on {cfg.data} (noise {cfg.noise:g}), {cfg.model}, "
        f"{len(data.y_train)} training examples, {cfg.epochs} epochs -> {run.path}"
    )
    ddp_model = dist.wrap(state.model, rt.device) if dist.enabled else None
    meta_static = {
        "classes": data.classes,
        "mean": data.mean.tolist(),
        "std": data.std.tolist(),
        "input_shape": list(data.input_shape),
        "input_range": list(data.input_range),
        "seed": seed,
        "config": to_dict(cfg),
    }

    def save(st: TrainState) -> None:
        history = [r.as_dict() for r in st.history]
        run.save_state(model=st.model, optimizer=st.optimizer, scheduler=st.scheduler,
                       step=st.optimizer.t, meta={**meta_static, "epoch": st.epoch,
                                                  "wall_s": st.wall_s, "history": history})  # fmt: skip

    steps = steps_in_epoch(len(data.y_train), cfg.batch_size, dist.world_size)
    remaining = steps * (cfg.epochs - state.epoch)
    with rt.out.progress(remaining, f"{cfg.optimizer}") as bar:
        warned: list[str] = []  # the chance warning, if given

        def on_step(index: int, loss) -> None:
            o = state.optimizer
            if index % 20 == 0:  # reading the loss waits for the device: not every step
                bar.advance(1, loss=float(loss), sam=o.sam_steps / max(o.t, 1))
            else:
                bar.advance(1)

        def on_epoch(rec: EpochRecord, st: TrainState) -> None:
            values = rec.as_dict()
            run.log_metrics(values.pop("step"), **values)
            save(st)
            rt.out.log(
                f"epoch {rec.epoch:>3}/{cfg.epochs}  loss {rec.train_loss:.4f}  test acc "
                f"{rec.test_acc:.4f}  SAM fraction {rec.sam_fraction:.3f}  grad evals "
                f"{rec.grad_evals}"
            )
            k = min(CHANCE_EPOCHS, cfg.epochs)
            if rec.epoch == k and dist.rank == 0:
                message = at_chance(cfg, st.history, len(data.classes), epoch=k)
                if message:
                    warned.append(message)
                    rt.out.warn(message)

        if state.epoch < cfg.epochs:
            train(cfg, data, state, device=rt.device, seed=seed, rank=dist.rank,
                  world_size=dist.world_size, ddp_model=ddp_model, autocast=rt.autocast,
                  on_epoch=on_epoch, on_step=on_step)  # fmt: skip
        if warned and (note := left_chance(state.history, len(data.classes))):
            rt.out.log(f"{cfg.optimizer}: {note}")
    if not state.history:
        raise DataError(f"{run.path} holds no finished epoch to report")
    return {"run": str(run.path), **_summary(cfg, state.history[-1])}


def _load_run(run, device):
    """(config, model with the trained weights, checkpoint meta) of a run folder."""
    from .models import build_model

    cfg = run.saved_config(AESAMConfig)
    try:
        _, meta = run.load()
        shape = tuple(int(v) for v in meta["input_shape"])
        classes = list(meta["classes"])
    except KeyError as exc:
        raise DataError(
            f"{run.checkpoint_dir} lacks {exc} in its meta.json; it was not written by aesam train"
        ) from exc
    model = build_model(cfg.model, shape, len(classes), cfg.width).to(device)
    load_training_state(run.checkpoint_dir, model=model, restore_rng=False)
    model.eval()
    return cfg, model, meta


def run_eval(rt) -> dict[str, Any]:
    rows = []
    for run in rt.sources:
        cfg, model, meta = _load_run(run, rt.device)
        data = _data_for(cfg, int(meta.get("seed", 0)))
        loss, acc = evaluate(model, data.x_test, data.y_test, rt.device)
        last = (meta.get("history") or [{}])[-1]
        rows.append(
            {
                "run": str(run.path),
                "optimizer": cfg.optimizer,
                "data": cfg.data,
                "noise": cfg.noise,
                "seed": int(meta.get("seed", 0)),
                "epochs": int(meta.get("epoch", 0)),
                "test_acc": acc,
                "test_loss": loss,
                "sam_fraction": last.get("sam_fraction", float("nan")),
                "grad_evals": last.get("grad_evals", 0),
                "wall_s": float(meta.get("wall_s", float("nan"))),
            }
        )
    sam_rows = [r for r in rows if r["optimizer"] == "sam"]
    ref = sam_rows[0] if sam_rows else None
    for r in rows:
        r["grad_evals_vs_sam"] = (
            r["grad_evals"] / ref["grad_evals"] if ref and ref["grad_evals"] else None
        )
        r["wall_vs_sam"] = r["wall_s"] / ref["wall_s"] if ref and ref["wall_s"] else None
    payload: dict[str, Any] = {"runs": rows}
    if pairs := _paired_runs(rows):
        payload["paired"] = pairs
    if len(rows) == 1:
        payload.update({k: v for k, v in rows[0].items()})
    return payload


def _paired_runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each optimizer against SAM on the same data, noise and seeds: the seeds both have."""
    sam = {
        (r["data"], r["noise"], r["seed"]): r["test_acc"] for r in rows if r["optimizer"] == "sam"
    }
    groups: dict[tuple, dict[int, float]] = {}
    for r in rows:
        if r["optimizer"] != "sam" and (r["data"], r["noise"], r["seed"]) in sam:
            group = groups.setdefault((r["optimizer"], r["data"], r["noise"]), {})
            group[r["seed"]] = r["test_acc"]
    out = []
    for (name, data, noise), accs in groups.items():
        seeds = sorted(accs)
        p = paired([accs[s] for s in seeds], [sam[(data, noise, s)] for s in seeds])
        out.append(
            {
                "optimizer": name,
                "data": data,
                "noise": noise,
                "seeds": len(seeds),
                **_diff_fields(p),
            }
        )
    return out


def run_predict(pcfg: PredictConfig, rt) -> dict[str, Any]:
    top = pcfg.top
    cfg, model, meta = _load_run(rt.source, rt.device)
    shape = tuple(int(v) for v in meta["input_shape"])
    raw, names = load_inputs(pcfg.input, shape)
    # runs written before the range was recorded: every loader gives [0, 1] images
    trained = tuple(float(v) for v in meta.get("input_range", (0.0, 1.0)))
    raw = check_range(raw, trained, pcfg.rescale, rt.out.warn)
    x = normalise(raw, np.asarray(meta["mean"], np.float32), np.asarray(meta["std"], np.float32))
    proba = predict_proba(model, x, rt.device)
    classes = list(meta["classes"])
    top = min(top, len(classes))
    preds = []
    for name, pr in zip(names, proba):
        order = np.argsort(-pr)[:top]
        best = int(order[0])
        preds.append(
            {
                "input": name,
                "label": classes[best],
                "index": best,
                "probability": float(pr[best]),
                "top": [{"label": classes[int(j)], "probability": float(pr[j])} for j in order],
            }
        )
    return {"run": str(rt.source.path), "classes": classes, "predictions": preds}


def _vs_sam(name: str, accs: list[float], results: dict[str, list[dict]]) -> dict[str, Any]:
    """Accuracy minus SAM's, seed by seed: mean, standard error, paired t and sign p-values."""
    if name == "sam" or "sam" not in results:
        return {}
    return _diff_fields(paired(accs, [r["test_acc"] for r in results["sam"]]))


def _diff_fields(p: dict) -> dict[str, Any]:
    """stats.paired's result under the names the tables use."""
    names = {"mean": "diff_vs_sam", "se": "diff_vs_sam_se", "t_p": "t_p", "sign_p": "sign_p"}
    return {names[k]: v for k, v in p.items() if k in names}


TUNED_FILE = "tuned.json"
TUNED_KEYS = ("rho", "lambda1", "lambda2", "p")


def run_tune(cfg: TuneConfig, rt) -> dict[str, Any]:
    from .tune import tune

    run = rt.run
    device = str(rt.device)
    rt.out.log(
        f"aesam tune: {', '.join(cfg.optimizers)} on {cfg.data} (noise {cfg.noise:g}), "
        f"{cfg.trials} radii from {cfg.rho_min:g} to {cfg.rho_max:g}, validation "
        f"{cfg.val_fraction:.0%} of the training split -> {run.path}"
    )
    res = tune(
        cfg,
        load=lambda seed: _data_for(cfg, seed),
        run_one=lambda c, data, seed: quick_run(c, data, seed, device=device),
        log=rt.out.log,
    )
    for name, row in res["chosen"].items():
        if not row["within_cap"]:
            rt.out.warn(
                f"{name}: no radius kept the SAM fraction within --max-sam-fraction "
                f"{cfg.max_sam_fraction:g}; the cheapest ({row['sam_fraction']:.3f}) was chosen"
            )
    payload = {
        "data": cfg.data,
        "noise": cfg.noise,
        "max_sam_fraction": cfg.max_sam_fraction,
        **res,
    }
    write_text(run.artifact(TUNED_FILE), json.dumps(payload, indent=1))
    rows = [
        {
            "optimizer": k,
            **{t: v[t] for t in TUNED_KEYS if t in v},
            "val_acc": v["val_acc"],
            "sam_fraction": v["sam_fraction"],
        }
        for k, v in res["chosen"].items()
    ]
    return {"run": str(run.path), "noise": cfg.noise, "chosen": rows}


def _tuned_settings(path, data: str, noise: float) -> dict[str, dict[str, float]]:
    """Each optimizer's chosen settings from a tune run folder or its tuned.json."""
    from pathlib import Path

    f = Path(path)
    f = f / TUNED_FILE if f.is_dir() else f
    try:
        got = json.loads(f.read_text())
        chosen = got["chosen"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"--tuned {path} is not a tune run's {TUNED_FILE} ({exc})") from exc
    if got.get("data") != data:
        raise UsageError(f"--tuned {path} was tuned on --data {got.get('data')}, not {data}")
    if got.get("noise") != noise:
        raise UsageError(
            f"--tuned {path} was tuned at --noise {got.get('noise')}, not {noise:g}; tune at "
            "this noise level, or pass its --noise"
        )
    return {k: {t: v[t] for t in TUNED_KEYS if t in v} for k, v in chosen.items()}


def run_compare(base: CompareConfig, rt) -> dict[str, Any]:
    from dataclasses import replace

    names, seeds = list(dict.fromkeys(base.optimizers)), base.seeds
    tuned = _tuned_settings(base.tuned, base.data, base.noise) if base.tuned else {}
    if tuned and (missing := [n for n in names if n not in tuned]):
        raise UsageError(f"--tuned {base.tuned} has no settings for {', '.join(missing)}")
    settings = {n: tuned.get(n, {}) for n in names}
    owners = () if tuned else PRESET_TUNED_FOR.get(rt.preset, ())
    for n in names:  # a preset's radius chosen for AE-SAM is not SAM's
        if owners and n not in owners:
            defaults = AESAMConfig()
            own = {k: getattr(defaults, k) for k in SWITCH_SETTINGS if k not in rt.given}
            settings[n] = {k: v for k, v in own.items() if v != getattr(base, k)}
    why = f" (--preset {rt.preset}'s were chosen for {', '.join(owners)})" if owners else ""
    for n in names:
        if settings[n]:
            own = ", ".join(f"{k} {v:g}" for k, v in settings[n].items())
            rt.out.log(f"{n}: {own}{why if n not in owners else ''}")
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with rt.out.progress(len(names) * seeds, "compare") as bar:
        for seed in range(seeds):
            data = _data_for(base, seed)
            for name in names:
                cfg = replace(base, optimizer=name, **settings[name])
                r = quick_run(cfg, data, seed, device=str(rt.device))
                results[name].append(r)
                if warning := r.pop("warning"):
                    rt.out.warn(f"seed {seed}: {warning}")
                rt.out.log(
                    f"{name:>10} seed {seed}: test acc {r['test_acc']:.4f}  SAM fraction {r['sam_fraction']:.3f}"
                )
                bar.advance(1)

    def mean_std(vals: list[float]) -> tuple[float, float]:
        return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)

    sam_evals = (
        statistics.fmean(r["grad_evals"] for r in results["sam"]) if "sam" in results else None
    )
    rows = []
    for name, rs in results.items():
        acc_m, acc_s = mean_std([r["test_acc"] for r in rs])
        evals = statistics.fmean(r["grad_evals"] for r in rs)
        rows.append(
            {
                "optimizer": name,
                "test_acc_mean": acc_m,
                "test_acc_std": acc_s,
                "test_acc_seeds": [r["test_acc"] for r in rs],
                **_vs_sam(name, [r["test_acc"] for r in rs], results),
                "sam_fraction": statistics.fmean(r["sam_fraction"] for r in rs),
                "grad_evals": evals,
                "grad_evals_vs_sam": evals / sam_evals if sam_evals else None,
                "wall_s": statistics.fmean(r["wall_s"] for r in rs),
            }
        )
    return {
        "data": base.data,
        "noise": base.noise,
        "seeds": seeds,
        "settings": settings,
        "results": rows,
    }
