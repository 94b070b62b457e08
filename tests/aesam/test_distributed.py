"""Two gloo ranks, each with half of every batch, end where one process with whole batches ends."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mltk_plugins.aesam.adaptive_switch import AESAM
from torch import nn
from torch.nn import functional as F

STEPS = 20


def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS, 16, 6, generator=g)
    y = (x[..., 0] > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))
    return model, x, y


def _train(model, opt, batches):
    decisions = []
    for xb, yb in batches:
        F.cross_entropy(model(xb), yb).backward()
        opt.step(lambda xb=xb, yb=yb: F.cross_entropy(model(xb), yb).backward())
        opt.zero_grad()
        decisions.append(opt.last_was_sam)
    return decisions


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    half = slice(rank * 8, (rank + 1) * 8)
    # DDP averages the gradients itself; an unwrapped model needs sync_grads=True.
    for use_ddp in (True, False):
        model, x, y = _problem()
        net = nn.parallel.DistributedDataParallel(model) if use_ddp else model
        opt = AESAM(
            model.parameters(),
            torch.optim.SGD,
            total_steps=STEPS,
            lr=0.1,
            momentum=0.9,
            sync_grads=not use_ddp,
        )
        decisions = _train(net, opt, [(x[t, half], y[t, half]) for t in range(STEPS)])
        torch.save(
            {"params": [p.detach() for p in model.parameters()], "decisions": decisions},
            os.path.join(out_dir, f"rank{rank}-ddp{int(use_ddp)}.pt"),
        )
        del net, opt  # as mltk's run lifecycle does: DDP is gone before gloo's teardown
    dist.barrier()  # no rank tears gloo down while the other still talks to it
    dist.destroy_process_group()


def test_two_ranks_with_half_batches_match_one_process_with_whole_batches(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    model, x, y = _problem()
    opt = AESAM(model.parameters(), torch.optim.SGD, total_steps=STEPS, lr=0.1, momentum=0.9)
    decisions = _train(model, opt, [(x[t], y[t]) for t in range(STEPS)])
    assert 0 < sum(decisions) < STEPS
    for rank in range(2):
        for use_ddp in (1, 0):
            got = torch.load(tmp_path / f"rank{rank}-ddp{use_ddp}.pt")  # written by this test
            assert got["decisions"] == decisions, (rank, use_ddp)
            for a, b in zip(got["params"], model.parameters()):
                torch.testing.assert_close(a, b.detach(), rtol=1e-4, atol=1e-5)
