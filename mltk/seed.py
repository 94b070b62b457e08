"""Seeding and RNG state capture, so that a resumed run continues the same random stream."""

from __future__ import annotations

import os
import random
from typing import Any


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); optionally turn on deterministic kernels."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def get_rng_state() -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, json) describing the python, numpy, torch and CUDA generators."""
    import numpy as np
    import torch

    tensors: dict[str, Any] = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy.keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss = random.getstate()
    info = {
        "numpy": {
            "kind": kind,
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": version, "state": list(internal), "gauss": gauss},
    }
    return tensors, info


def set_rng_state(tensors: dict[str, Any], info: dict[str, Any]) -> None:
    """Restore what `get_rng_state` captured."""
    import numpy as np
    import torch

    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"].to(torch.uint8).cpu())
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            key = f"rng.cuda.{i}"
            if key in tensors:
                torch.cuda.set_rng_state(tensors[key].to(torch.uint8).cpu(), i)
    if "rng.numpy.keys" in tensors and "numpy" in info:
        n = info["numpy"]
        keys = tensors["rng.numpy.keys"].numpy().astype(np.uint32)
        np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))
    if "python" in info:
        p = info["python"]
        random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
