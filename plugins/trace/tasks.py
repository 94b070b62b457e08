"""`search --task hin | nas`: meta-paths on a heterogeneous graph and a DARTS-like cell, each
written to a run folder that `eval` reads back."""

from __future__ import annotations

from dataclasses import asdict, replace

from mltk.checkpoint import save_checkpoint
from mltk.errors import DataError

from .config import settings_from

# --- meta-paths -------------------------------------------------------------------------------


def search_hin(cfg, rt) -> dict:
    from . import hin as H

    graph = H.load(cfg.data, seed=rt.seed)
    s = settings_from(
        cfg,
        H.Settings(),
        {
            "length": "length",
            "decomp": "decomp",
            "rank": "rank",
            "epochs": "epochs",
            "lr": "lr",
            "init_scale": "init_scale",
        },
    )
    s.check()
    rt.out.log(
        f"{cfg.data}: {graph.n_nodes:,} nodes, {len(graph.edge_types)} edge types; "
        f"{s.decomp} distribution over {graph.n_operators}^{s.length} meta-paths"
    )
    model, history = H.train(graph, s, seed=rt.seed, log=rt.out.log)
    for row in history:
        rt.run.log_metrics(row["epoch"], **{k: v for k, v in row.items() if k != "epoch"})
    rt.record(replace(cfg, length=s.length, epochs=s.epochs, lr=s.lr, init_scale=s.init_scale))
    scores = H.evaluate(graph, model, "test")
    paths = H.meta_paths(graph, model, k=cfg.top)
    tensors = {f"model.{k}": v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(
        rt.run.checkpoint_dir,
        tensors,
        {
            "task": "hin",
            "data": cfg.data,
            "seed": rt.seed,
            "settings": asdict(s),
            "meta_paths": paths,
        },
    )
    return {
        "data": cfg.data,
        "decomp": s.decomp,
        "rank": s.rank,
        "length": s.length,
        **scores,
        "planted": " -> ".join(graph.planted) if graph.planted else None,
        "recovered": H.recovered(graph, paths),
        "meta_paths": [
            {"path": p["path"], "share": round(p["share"], 4), "probability": p["probability"]}
            for p in paths
        ],
        "run": str(rt.run.path),
    }


# --- cells ------------------------------------------------------------------------------------


def search_nas(cfg, rt) -> dict:
    from . import nas as N

    data = N.load_data(cfg.data, seed=rt.seed)
    s = settings_from(
        cfg,
        N.Settings(),
        {
            "decomp": "decomp",
            "rank": "rank",
            "objective": "objective",
            "epochs": "epochs",
            "arch_lr": "lr",
            "samples": "samples",
            "batch_size": "batch_size",
            "init_scale": "init_scale",
            "retrain_epochs": "retrain_epochs",
        },
    )
    N.check(s)
    rt.out.log(
        f"{data['name']}: cell of {len(N.EDGES)} edges x {len(N.OPS)} operations, {s.decomp} "
        f"distribution, {s.objective} objective, on {rt.device}"
    )
    _, dist, history = N.search(data, s, seed=rt.seed, device=rt.device, log=rt.out.log)
    for row in history:
        rt.run.log_metrics(row["epoch"], **{k: v for k, v in row.items() if k != "epoch"})
    rt.record(replace(cfg, epochs=s.epochs, lr=s.arch_lr, init_scale=s.init_scale))
    arch = N.derive(dist)
    result = N.retrain(data, arch, s, seed=rt.seed, device=rt.device, log=rt.out.log)
    tensors = {f"dist.{k}": v.detach().cpu() for k, v in dist.state_dict().items()}
    meta = {
        "task": "nas",
        "data": cfg.data,
        "settings": asdict(s),
        "arch": result["arch"],
        "cell": result["text"],
        "test_acc": result["test_acc"],
        "params": result["params"],
        "probability": N.arch_probability(dist, arch),
    }
    save_checkpoint(rt.run.checkpoint_dir, tensors, meta)
    return {
        "data": data["name"],
        "decomp": s.decomp,
        "rank": s.rank,
        "objective": s.objective,
        "cell": result["text"],
        "probability": meta["probability"],
        "test_accuracy": result["test_acc"],
        "parameters": result["params"],
        "steps_per_second": history[-1].get("steps_per_s") if history else None,
        "run": str(rt.run.path),
    }


# --- eval -------------------------------------------------------------------------------------


def eval_run(run, task: str, checkpoint: tuple[dict, dict]) -> dict:
    """One `eval` row of a meta-path run (scored again) or a cell run (its retrained network's
    test accuracy, as recorded: the network itself is not kept); ``checkpoint``: the run's
    (tensors, meta)."""
    from .commands import run_label

    tensors, meta = checkpoint
    if task == "nas":
        return {
            "run": run_label(run),
            "data": meta["data"],
            "decomp": meta["settings"]["decomp"],
            "accuracy": meta["test_acc"],
        }
    if task != "hin":
        raise DataError(f"{run.path}/checkpoint names an unknown task {task!r}")
    import torch

    from . import hin as H

    s = H.Settings(**meta["settings"])
    graph = H.load(meta["data"], seed=int(meta["seed"]))
    model = H.MetaPathGCN(graph, s, seed=int(meta["seed"]))
    state = {k[6:]: torch.as_tensor(v) for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(f"{run.path}/checkpoint does not fit its graph ({exc})") from exc
    scores = H.evaluate(graph, model, "test")
    return {
        "run": run_label(run),
        "data": meta["data"],
        "decomp": s.decomp,
        **{k: scores[k] for k in ("macro_f1", "micro_f1", "accuracy")},
    }
