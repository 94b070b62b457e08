"""One call that sets up what every command needs: device, precision, seeds, threads, DDP, output."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from mltk.device import Dist
from mltk.output import Output


@dataclass
class Runtime:
    device: Any
    dtype: Any
    dist: Dist
    out: Output
    seed: int

    def autocast(self):
        """Mixed precision for bf16/fp16; nothing for fp32."""
        import torch

        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def setup(
    *,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
    threads: int | None = None,
    deterministic: bool = False,
    json: bool = False,
    quiet: bool = False,
    distributed: bool = False,
) -> Runtime:
    """Resolve the shared options. With `distributed`, join a torchrun process group if launched."""
    import torch

    from mltk.device import env_dist, init_distributed, resolve_device, resolve_precision
    from mltk.errors import UsageError
    from mltk.seed import seed_everything

    if not 0 <= seed < 2**63:
        raise UsageError(f"--seed {seed} must be a non-negative integer below 2**63")
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads {threads} must be at least 1")
        torch.set_num_threads(threads)
    dist = env_dist()
    dev = resolve_device(device, local_rank=dist.local_rank if dist.enabled else None)
    dtype = resolve_precision(precision, dev)
    if distributed:
        dist = init_distributed(dev)
    elif dist.enabled:
        dist = Dist()  # a command that does not train in parallel runs whole on every rank
        dist.rank = env_dist().rank
    seed_everything(seed, deterministic=deterministic)
    out = Output(json=json, quiet=quiet, is_main=dist.is_main)
    return Runtime(device=dev, dtype=dtype, dist=dist, out=out, seed=seed)
