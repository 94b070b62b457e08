"""The training loop and evaluation shared by the verbs and the benchmarks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mltk.errors import DivergedError

from .adaptive_switch import SwitchingSAM, make_optimizer
from .config import PRESETS, AESAMConfig, get_preset  # noqa: F401 (re-exported)
from .data import Dataset
from .models import build_model


@dataclass
class EpochRecord:
    epoch: int
    step: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    sam_fraction: float
    grad_evals: int
    lr: float
    mu: float
    sigma: float
    c_t: float | None
    wall_s: float

    def as_dict(self) -> dict[str, Any]:
        # JSON has no NaN: c_t of policies without a threshold is written as null.
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in self.__dict__.items()
        }


@dataclass
class TrainState:
    """What a training run has built so far (and what a resumed run starts from)."""

    model: nn.Module
    optimizer: SwitchingSAM
    scheduler: Any
    epoch: int = 0
    wall_s: float = 0.0
    history: list[EpochRecord] = field(default_factory=list)


def build_training(
    cfg: AESAMConfig, data: Dataset, device: torch.device, seed: int, *, world_size: int = 1
) -> TrainState:
    """Model, optimizer (with the chosen switching policy) and LR schedule for ``cfg``; the
    model's initial weights come from torch's global generator (seeded by the caller)."""
    model = build_model(cfg.model, data.input_shape, len(data.classes), cfg.width).to(device)
    steps_per_epoch = steps_in_epoch(len(data.y_train), cfg.batch_size, world_size)
    total = steps_per_epoch * cfg.epochs
    if cfg.base == "sgd":
        base_cls, base_kw = (
            torch.optim.SGD,
            dict(lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay),
        )
    else:
        base_cls, base_kw = torch.optim.AdamW, dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    optimizer = make_optimizer(
        cfg.optimizer,
        model.parameters(),
        base_cls,
        rho=cfg.rho,
        total_steps=total,
        lambda1=cfg.lambda1,
        lambda2=cfg.lambda2,
        delta=cfg.delta,
        alpha=cfg.alpha,
        k=cfg.k,
        p=cfg.p,
        seed=seed,
        model=model,
        **base_kw,
    )
    if cfg.schedule == "cosine":
        # Attached to the base optimizer: the wrapper shares its parameter groups.
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer.base_optimizer, T_max=total
        )
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer.base_optimizer, lambda _: 1.0)
    return TrainState(model=model, optimizer=optimizer, scheduler=scheduler)


def steps_in_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    per_rank = math.ceil(n / world_size)
    local = max(1, batch_size // world_size)
    return max(1, per_rank // local)  # incomplete last batches are dropped


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crops of the zero-padded images and horizontal flips, one draw per image."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p)
    di = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(x.device)
    dj = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(x.device)
    flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)
    rows = (di[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dj[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[
        torch.arange(b, device=x.device)[:, None, None, None], chans, rows, cols
    ]  # (B, C, H, W)
    return torch.where(flip[:, None, None, None], out.flip(3), out)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device, batch: int = 1024
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on (x, y)."""
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, len(y), batch):
        xb = torch.from_numpy(x[i : i + batch]).to(device)
        yb = torch.from_numpy(y[i : i + batch]).to(device)
        logits = model(xb).float()
        total_loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    model.train()
    n = max(len(y), 1)
    return total_loss / n, correct / n


@torch.no_grad()
def predict_proba(
    model: nn.Module, x: np.ndarray, device: torch.device, batch: int = 1024
) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        out.append(
            F.softmax(model(torch.from_numpy(x[i : i + batch]).to(device)).float(), dim=1)
            .cpu()
            .numpy()
        )
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def train(
    cfg: AESAMConfig,
    data: Dataset,
    state: TrainState,
    *,
    device: torch.device,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    ddp_model: nn.Module | None = None,
    autocast: Callable[[], Any] | None = None,
    on_epoch: Callable[[EpochRecord, TrainState], None] | None = None,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> TrainState:
    """Train from ``state.epoch`` to ``cfg.epochs``; call ``on_epoch`` after each epoch.

    Batches come from a permutation seeded by (seed, epoch), so a run resumed at an epoch
    boundary sees exactly the batches the uninterrupted run would have seen.
    """
    from contextlib import nullcontext

    net = ddp_model if ddp_model is not None else state.model
    opt, sched = state.optimizer, state.scheduler
    autocast = autocast or nullcontext
    x_all = torch.from_numpy(data.x_train).to(device)
    y_all = torch.from_numpy(data.y_train).to(device)
    n = len(data.y_train)
    local = max(1, cfg.batch_size // world_size)
    steps = steps_in_epoch(n, cfg.batch_size, world_size)
    net.train()
    for epoch in range(state.epoch, cfg.epochs):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        perm = torch.randperm(n, generator=gen)[rank::world_size].to(device)
        aug_gen = torch.Generator().manual_seed(seed * 100_003 + epoch + 7_919 * (rank + 1))
        # Running sums stay on the device: no host sync per step beyond the switch's own.
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for s in range(steps):
            idx = perm[s * local : (s + 1) * local]
            xb, yb = x_all[idx], y_all[idx]
            if cfg.augment:
                xb = augment_batch(xb, aug_gen)  # the perturbed pass sees the same images
            with autocast():
                logits = net(xb)
                loss = F.cross_entropy(logits.float(), yb)
            loss.backward()

            def closure(xb=xb, yb=yb):
                with autocast():
                    perturbed = F.cross_entropy(net(xb).float(), yb)
                perturbed.backward()
                return perturbed

            try:
                opt.step(closure)
            except FloatingPointError as exc:  # the switch found a non-finite gradient norm
                raise DivergedError(f"training diverged: {exc}") from exc
            opt.zero_grad(set_to_none=True)
            sched.step()
            loss_sum += loss.detach() * len(yb)
            correct += (logits.argmax(1) == yb).sum()
            seen += len(yb)
            if on_step is not None:
                on_step(s, loss.detach())
        loss_sum, correct = loss_sum.item(), correct.item()
        if not math.isfinite(loss_sum):
            raise DivergedError(
                f"training diverged: the loss is not finite in epoch {epoch + 1}; "
                "lower the learning rate"
            )
        state.wall_s += time.perf_counter() - t0
        state.epoch = epoch + 1
        test_loss, test_acc = evaluate(state.model, data.x_test, data.y_test, device)
        st = opt.stats
        rec = EpochRecord(
            epoch=epoch + 1,
            step=opt.t,
            train_loss=loss_sum / max(seen, 1),
            train_acc=correct / max(seen, 1),
            test_loss=test_loss,
            test_acc=test_acc,
            sam_fraction=st["sam_fraction"],
            grad_evals=st["grad_evals"],
            lr=opt.param_groups[0]["lr"],
            mu=st["mu"],
            sigma=st["sigma"],
            c_t=st["c_t"],
            wall_s=state.wall_s,
        )
        state.history.append(rec)
        if on_epoch is not None:
            on_epoch(rec, state)
    return state


CHANCE_EPOCHS = 3  # a run still at chance after this many epochs (or all, if fewer) is warned


def at_chance(
    cfg: AESAMConfig, history: list[EpochRecord], n_classes: int, epoch: int | None = None
) -> str | None:
    """A warning when the training accuracy after ``epoch`` epochs (the first CHANCE_EPOCHS,
    or all if fewer; None: the last finished one) is within 1.5x chance (a model that learns
    anything is well above it, even on 40% noisy labels), naming the likely cause: for the SAM
    family the radius (and LookSAM's reuse strength), for ERM the learning rate."""
    if epoch is None:
        rec = history[-1] if history else None
    else:
        rec = next((r for r in history if r.epoch == epoch), None)
    if rec is None:
        return None
    acc, chance = rec.train_acc, 1.0 / n_classes
    if acc > 1.5 * chance:
        return None
    if cfg.optimizer == "erm":
        cause = f"--lr {cfg.lr:g}; try a smaller learning rate"
    elif cfg.optimizer in ("looksam", "aelooksam"):
        cause = (
            f"--rho {cfg.rho:g} or LookSAM's reuse --alpha {cfg.alpha:g} (too large for this "
            "model); try smaller ones, or --optimizer erm to check the learning rate"
        )
    else:
        cause = (
            f"--rho {cfg.rho:g} (too large a radius for this model); try a smaller --rho, or "
            "--optimizer erm to check the learning rate"
        )
    return (
        f"{cfg.optimizer}: training accuracy {acc:.3f} after {rec.epoch} epochs is at chance "
        f"({chance:.3f} for {n_classes} classes); the likely cause is {cause}"
    )


def left_chance(history: list[EpochRecord], n_classes: int) -> str | None:
    """After an early chance warning: a note when the run's last epoch is well above chance."""
    if not history or history[-1].train_acc <= 1.5 / n_classes:
        return None
    last = history[-1]
    return (
        f"training accuracy {last.train_acc:.3f} after {last.epoch} epochs: the run left chance, "
        "the warning above no longer holds"
    )


def quick_run(cfg: AESAMConfig, data: Dataset, seed: int, device: str = "cpu") -> dict[str, Any]:
    """Train once in this process, no files: the numbers the benchmark tabulates."""
    dev = torch.device(device)
    cfg.validate()
    torch.manual_seed(seed)  # several runs in one process: each starts from its seed
    state = build_training(cfg, data, dev, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    train(cfg, data, state, device=dev, seed=seed)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    test_loss, test_acc = evaluate(state.model, data.x_test, data.y_test, dev)
    st = state.optimizer.stats
    return {
        "test_acc": test_acc,
        "test_loss": test_loss,
        "sam_fraction": st["sam_fraction"],
        "grad_evals": st["grad_evals"],
        "steps": st["steps"],
        "wall_s": wall,
        "cpu_s": cpu,  # less disturbed than wall time on a shared machine
        "warning": at_chance(cfg, state.history, len(data.classes)),  # at the end of training
    }
