"""Devices, precision and distributed (torchrun) awareness.

Nothing here imports torch at module level: `mltk --help` must stay light.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from mltk.errors import DeviceError, UsageError

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
PRECISIONS = ("auto", "fp32", "fp64", "bf16", "fp16")


def available_devices() -> list[str]:
    """The devices torch can use here, e.g. ['cpu', 'cuda:0', 'cuda:1']."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def resolve_device(spec: str = "auto", *, local_rank: int | None = None):
    """`auto` picks cuda, then mps, then cpu; an explicit device that is not there is an error."""
    import torch

    spec = (spec or "auto").strip().lower()
    if not _DEVICE_RE.match(spec):
        raise UsageError(f"--device {spec!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    have = available_devices()
    if spec == "auto":
        if torch.cuda.is_available():
            spec = "cuda"
        elif "mps" in have:
            spec = "mps"
        else:
            spec = "cpu"
    if spec == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device cuda asked, but torch sees no CUDA device (available: {', '.join(have)})"
            )
        index = local_rank if local_rank is not None else 0
        return torch.device("cuda", index % torch.cuda.device_count())
    if spec.startswith("cuda:"):
        if spec not in have:
            raise DeviceError(f"--device {spec} is not available (available: {', '.join(have)})")
        return torch.device(spec)
    if spec == "mps" and "mps" not in have:
        raise DeviceError(f"--device mps is not available (available: {', '.join(have)})")
    return torch.device(spec)


def resolve_precision(spec: str, device) -> Any:
    """The compute dtype: `auto` is bf16 on a GPU that supports it, fp32 elsewhere."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec not in PRECISIONS:
        raise UsageError(f"--precision {spec!r} is not one of {', '.join(PRECISIONS)}")
    if spec == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if spec == "fp16" and device.type == "cpu":
        raise UsageError("--precision fp16 is not supported on the CPU; use fp32 or bf16")
    if spec == "fp64" and device.type == "mps":
        raise UsageError("--precision fp64 is not supported on mps; use fp32")
    table = {"fp32": torch.float32, "fp64": torch.float64, "bf16": torch.bfloat16}
    return table.get(spec, torch.float16)


@dataclass
class Dist:
    """Where this process stands in a torchrun launch (world_size 1 when not launched)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as td

            td.barrier()

    def all_reduce_mean(self, tensor):
        """Average a tensor over ranks in place (and return it)."""
        if self.enabled:
            import torch.distributed as td

            td.all_reduce(tensor, op=td.ReduceOp.SUM)
            tensor /= self.world_size
        return tensor

    def gather(self, tensor):
        """``tensor`` from every rank concatenated along dim 0 in rank order (equal sizes on
        every rank), differentiable: each rank gets back the summed gradient of its own rows."""
        if not self.enabled:
            return tensor
        return _Gather.apply(tensor, self.rank, self.world_size)

    def wrap(self, model, device=None):
        """Wrap a model in DistributedDataParallel when distributed; return it unchanged otherwise."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device is not None and device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def shard(self, n: int) -> range:
        """The indices 0..n-1 that this rank handles (a strided split)."""
        return range(self.rank, n, self.world_size)

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def _gather_function():
    import torch
    import torch.distributed as td

    class Gather(torch.autograd.Function):
        """all_gather forward; backward sums every rank's gradient and keeps this rank's rows
        (what torch.distributed.nn.all_gather did before its deprecation)."""

        @staticmethod
        def forward(ctx, x, rank, world):
            ctx.rank, ctx.rows = rank, x.shape[0]
            parts = [torch.empty_like(x) for _ in range(world)]
            td.all_gather(parts, x.contiguous())
            return torch.cat(parts)

        @staticmethod
        def backward(ctx, grad):
            grad = grad.contiguous()
            td.all_reduce(grad)
            return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows], None, None

    return Gather


class _LazyGather:
    """Builds the autograd Function on first use (this module must not import torch at top)."""

    fn = None

    @classmethod
    def apply(cls, *args):
        if cls.fn is None:
            cls.fn = _gather_function()
        return cls.fn.apply(*args)


_Gather = _LazyGather


def env_dist() -> Dist:
    """Rank and world size from the torchrun environment, without initialising anything."""
    return Dist(
        rank=int(os.environ.get("RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_distributed(device) -> Dist:
    """Join the torchrun process group: nccl on GPUs, gloo on the CPU."""
    dist = env_dist()
    if not dist.enabled:
        return dist
    import torch
    import torch.distributed as td

    dist.backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not td.is_initialized():
        td.init_process_group(backend=dist.backend)
    return dist
