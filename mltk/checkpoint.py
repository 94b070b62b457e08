"""Checkpoints: tensors in safetensors, everything else in JSON; saved atomically.

Nothing here unpickles: a checkpoint folder holds `tensors.safetensors` and `meta.json`, and
loading reads exactly those two files. Optimizer and scheduler state dicts are split into their
tensors (stored in safetensors) and a JSON skeleton that says where each tensor goes.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from mltk import atomic
from mltk.errors import DataError

FORMAT_VERSION = 1
TENSORS_FILE = "tensors.safetensors"
META_FILE = "meta.json"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("mltk", "torch", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def split_state(obj: Any, prefix: str, tensors: dict[str, Any]) -> Any:
    """Replace every tensor in a nested state by a reference, collecting the tensors.

    Dicts whose keys are not all strings (optimizer states keyed by parameter index) are kept as
    lists of pairs so that the keys survive JSON.
    """
    import torch

    if isinstance(obj, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: split_state(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
        return {
            "__pairs__": [[k, split_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]
        }
    if isinstance(obj, (list, tuple)):
        return [split_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, float) and obj != obj:
        return {"__float__": "nan"}
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return {"__float__": "inf" if obj > 0 else "-inf"}
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return obj.item()
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint (at {prefix})")


def join_state(obj: Any, tensors: dict[str, Any]) -> Any:
    """Inverse of `split_state`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__pairs__" in obj:
            return {k: join_state(v, tensors) for k, v in obj["__pairs__"]}
        if "__float__" in obj:
            return float(obj["__float__"])
        return {k: join_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_state(v, tensors) for v in obj]
    return obj


def save_checkpoint(
    directory: str | os.PathLike, tensors: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Write `tensors` (torch tensors or numpy arrays) and `meta` (JSON) atomically to a folder."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    directory = Path(directory)
    clean = {}
    for name, value in tensors.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        clean[name] = value.detach().cpu().contiguous().clone()
    from mltk.output import _jsonable

    # NaN and infinities (a diverged loss, say) are stored as null: strict JSON everywhere.
    payload = _jsonable({"format_version": FORMAT_VERSION, "versions": _versions(), **meta})
    text = json.dumps(payload, indent=2, allow_nan=False)
    with atomic.build_dir(directory) as tmp:
        save_file(clean, str(tmp / TENSORS_FILE))
        atomic.default_mode(tmp / TENSORS_FILE)
        (tmp / META_FILE).write_text(text)
    return directory


def load_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint folder; DataError when it is missing, incomplete or corrupt."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = atomic.recover_dir(Path(directory))
    if not directory.is_dir():
        raise DataError(f"checkpoint folder {directory} does not exist")
    for name in (TENSORS_FILE, META_FILE):
        if not (directory / name).is_file():
            raise DataError(
                f"checkpoint folder {directory} has no {name}; it is not an mltk checkpoint"
            )
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"checkpoint {directory / META_FILE} is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise DataError(f"checkpoint {directory / META_FILE} does not hold a JSON object")
    try:
        tensors = load_file(str(directory / TENSORS_FILE))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise DataError(f"checkpoint {directory / TENSORS_FILE} is corrupt ({exc})") from exc
    return tensors, meta


def save_training_state(
    directory: str | os.PathLike,
    *,
    model,
    optimizer=None,
    scheduler=None,
    step: int,
    meta: dict[str, Any] | None = None,
    extra_tensors: dict[str, Any] | None = None,
) -> Path:
    """Model, optimizer, scheduler and RNG state in one atomic checkpoint folder."""
    from mltk.seed import get_rng_state

    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    tensors: dict[str, Any] = {f"model.{k}": v for k, v in module.state_dict().items()}
    info: dict[str, Any] = {"step": int(step), **(meta or {})}
    if optimizer is not None:
        info["optimizer"] = split_state(optimizer.state_dict(), "optimizer", tensors)
    if scheduler is not None:
        info["scheduler"] = split_state(scheduler.state_dict(), "scheduler", tensors)
    rng_tensors, rng_info = get_rng_state()
    tensors.update(rng_tensors)
    info["rng"] = rng_info
    for k, v in (extra_tensors or {}).items():
        tensors[f"extra.{k}"] = v
    return save_checkpoint(directory, tensors, info)


def load_training_state(
    directory: str | os.PathLike, *, model, optimizer=None, scheduler=None, restore_rng: bool = True
) -> dict[str, Any]:
    """Restore what `save_training_state` wrote; returns the JSON meta (with "step")."""
    from mltk.seed import set_rng_state

    tensors, meta = load_checkpoint(directory)
    module = getattr(model, "module", model)
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        module.load_state_dict(weights)
    except RuntimeError as exc:
        # torch's first line only names the class; the second says which tensor differs
        lines = [line.strip() for line in str(exc).strip().splitlines()]
        what = lines[1] if len(lines) > 1 else lines[0]
        raise DataError(
            f"checkpoint {directory} does not match this model (was it written by another "
            f"version of the model?): {what}"
        ) from exc
    if optimizer is not None and "optimizer" in meta:
        optimizer.load_state_dict(join_state(meta["optimizer"], tensors))
    if scheduler is not None and "scheduler" in meta:
        scheduler.load_state_dict(join_state(meta["scheduler"], tensors))
    if restore_rng:
        set_rng_state(tensors, meta.get("rng", {}))
    meta["extra_tensors"] = {
        k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")
    }
    return meta
