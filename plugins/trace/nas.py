"""Cell search with a tensorized architecture distribution (TRACE, on the DARTS space).

The space is DARTS's normal cell, kept small: two input states x0, x1 (the outputs of the two
previous cells) and four intermediate nodes n2..n5, each summing one operation of every earlier
state,

    n_j = sum_{i < j} op_{ij}(s_i),        s = (x0, x1, n2, n3, n4, n5),

so 2 + 3 + 4 + 5 = 14 edges, each choosing one of the 5 operations of ``OPS``. The cell's output
is ReLU-Conv1x1-BN of the concatenated intermediate nodes (4C -> C channels). The network is a
stem convolution, ``cells`` cells (each fed by the previous two, the first by the stem twice),
global average pooling and a linear classifier; every cell shares one architecture, as DARTS
shares one normal cell (no reduction cells: the images stay at their size).

An architecture is one operation per edge, ``a = (k_1, ..., k_14)``; its probability is a
``ChainDistribution`` over the 14 edges in topological order (node n2's edges from x0, x1, then
n3's from x0, x1, n2, ...): the tensor train follows the cell's DAG flattened into that order,

    P(a) = G_1[k_1] G_2[k_2] ... G_14[k_14]                       (TRACE's tensor train),

with ``decomp="independent"`` (rank 1: DARTS / ENAS-like per-edge softmaxes) and ``"cp"`` as
ablations. Two objectives, alternating first-order steps on the weights w (train batches) and the
distribution theta (validation batches):

- ``stochastic`` (default): sample S architectures a_s ~ P_theta ancestrally from the joint; the
  weights step runs each sampled cell alone (one-hot: only the chosen operation of each edge),
  loss (1/S) sum_s L_train(w, a_s). The distribution step follows the score function

      grad_theta E_{a ~ P}[L_val(w, a)] ~= (1/S) sum_s (L_val(w, a_s) - b) grad_theta log P(a_s)

  with b a moving average of the sampled losses (TRACE's stochastic objective, with a baseline). log P is the
  full joint, so a tensor train can learn correlations between edges.
- ``deterministic``: every edge mixes its operations with the edge's marginal,
  o_l(x) = sum_k p(k_l = k) op_k(x) (the DARTS relaxation); gradients flow into theta
  through the marginals. For a nonlinear supernet this is a relaxation, not the expectation
  E_a[f(x; a)] over architectures.

The derived architecture is the most probable one (``viterbi`` on the cores); ``retrain`` trains
it from scratch. The data are sklearn's digits (8x8 grey images, a smoke task for the CPU) or
CIFAR-10 from its binary archive (``cifar.py``; meant for a GPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mltk.errors import DataError, UsageError, require

from . import cifar
from .tensornet import DECOMPOSITIONS, ChainDistribution, log_prob, marginals, sample, viterbi

OPS = ("none", "skip_connect", "conv_3x3", "max_pool_3x3", "avg_pool_3x3")
NODES = 4  # intermediate nodes; states 0, 1 are the cell's inputs
EDGES = tuple((i, 2 + j) for j in range(NODES) for i in range(2 + j))  # (source, node), topological
INCOMING = tuple(tuple(e for e, (_, t) in enumerate(EDGES) if t == 2 + j) for j in range(NODES))
OBJECTIVES = ("stochastic", "deterministic")
STATE_NAMES = ("x0", "x1") + tuple(f"n{2 + j}" for j in range(NODES))


@dataclass(frozen=True)
class Settings:
    decomp: str = "tt"
    rank: int = 4
    objective: str = "stochastic"  # stochastic | deterministic
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05  # weights: SGD, momentum 0.9, cosine schedule
    arch_lr: float = 0.1  # distribution: Adam (betas 0.5, 0.999)
    channels: int = 8
    cells: int = 2
    samples: int = 4  # stochastic objective: architectures sampled per step
    init_scale: float = 0.01
    retrain_epochs: int = 20
    weight_decay: float = 3e-4
    baseline_decay: float = 0.9  # b <- decay b + (1 - decay) mean sampled loss


def check(s: Settings) -> None:
    """UsageError for a setting that cannot run."""
    if s.decomp not in DECOMPOSITIONS:
        raise UsageError(f"decomp {s.decomp!r} is not one of {', '.join(DECOMPOSITIONS)}")
    if s.objective not in OBJECTIVES:
        raise UsageError(f"objective {s.objective!r} is not one of {', '.join(OBJECTIVES)}")
    for name in ("rank", "epochs", "batch_size", "channels", "cells", "samples"):
        if getattr(s, name) < 1:
            raise UsageError(f"{name} must be at least 1, not {getattr(s, name)}")
    if s.retrain_epochs < 0:
        raise UsageError(f"retrain_epochs must be 0 or more, not {s.retrain_epochs}")
    for name in ("lr", "arch_lr", "init_scale"):
        if not getattr(s, name) > 0:
            raise UsageError(f"{name} must be positive, not {getattr(s, name)}")
    if not 0 <= s.baseline_decay < 1:
        raise UsageError(f"baseline_decay must be in [0, 1), not {s.baseline_decay}")


# --- data ------------------------------------------------------------------------------------


def load_data(source: str, seed: int = 0) -> dict:
    """``"digits"`` or the path of CIFAR-10's binary archive (or its folder) -> a dict with
    train / val / test as (images (n, C, H, W) float32 normalised, labels (n,) int64).

    The validation split (for the distribution steps) is half of the training set, as in
    DARTS; ``retrain`` trains on train + val. Digits: 20% of the 1,797 images are the test set,
    pixels scaled by the training mean and standard deviation. CIFAR-10: pixels / 255,
    standardised with its channel means and standard deviations; random crops and flips while
    training (``augment``).
    """
    g = np.random.default_rng(seed)
    if source == "digits":
        datasets = require("sklearn.datasets", extra="trace")
        d = datasets.load_digits()
        x = d.images.astype(np.float32)[:, None] / 16.0  # (n, 1, 8, 8) in [0, 1]
        y = d.target.astype(np.int64)
        order = g.permutation(len(y))
        n_test = len(y) // 5
        test, rest = order[:n_test], order[n_test:]
        mean, std = float(x[rest].mean()), float(x[rest].std())
        x = (x - mean) / std
        train_x, train_y, test_x, test_y = x[rest], y[rest], x[test], y[test]
        name, augment = "digits", False
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(
                f"{source!r} is neither 'digits' nor an existing path; give 'digits' or the path "
                "of cifar-10-binary.tar.gz (or its extracted cifar-10-batches-bin folder)"
            )
        raw = cifar.load(path)
        mean = np.asarray(cifar.MEAN, dtype=np.float32)[:, None, None]  # (3, 1, 1)
        std = np.asarray(cifar.STD, dtype=np.float32)[:, None, None]

        def norm(u8: np.ndarray) -> np.ndarray:
            return (u8.astype(np.float32) / 255.0 - mean) / std  # (n, 3, 32, 32)

        (train_x, train_y), (test_x, test_y) = raw["train"], raw["test"]
        train_x, test_x = norm(train_x), norm(test_x)
        name, augment = "cifar10", True
    order = g.permutation(len(train_y))
    half = len(order) // 2
    tr, va = order[:half], order[half:]

    def pair(xs, ys):
        return torch.from_numpy(np.ascontiguousarray(xs)), torch.from_numpy(ys)

    return {
        "name": name,
        "train": pair(train_x[tr], train_y[tr]),
        "val": pair(train_x[va], train_y[va]),
        "test": pair(test_x, test_y),
        "in_channels": int(train_x.shape[1]),
        "classes": 10,
        "augment": augment,
    }


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crops after zero padding by ``pad`` and random horizontal flips, per image."""
    n, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device)  # (2, n)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)  # (n,)
    xp = F.pad(x, (pad, pad, pad, pad))  # (n, C, h + 2 pad, w + 2 pad)
    rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (n, h)
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (n, w)
    idx = torch.arange(n, device=x.device)[:, None, None]
    out = xp.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]  # (n, h, w, C)
    out = out.permute(0, 3, 1, 2)  # (n, C, h, w)
    return torch.where(flip[:, None, None, None], out.flip(3), out)


# --- the supernet ----------------------------------------------------------------------------


def _bn(c: int, search: bool, affine: bool = True) -> nn.BatchNorm2d:
    """While searching, BN uses the batch's statistics always (a supernet's running statistics
    would mix architectures)."""
    return nn.BatchNorm2d(c, affine=affine, track_running_stats=not search)


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, c: int, search: bool = True) -> nn.Module:
    """One candidate operation, C -> C channels, stride 1. The convolution's BN has no affine
    parameters while searching (DARTS)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "conv_3x3":
        return nn.Sequential(
            nn.ReLU(), nn.Conv2d(c, c, 3, padding=1, bias=False), _bn(c, search, affine=not search)
        )
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise UsageError(f"operation {name!r} is not one of {', '.join(OPS)}")


class MixedEdge(nn.Module):
    """Every operation of one edge: o(x) = sum_k w_k op_k(x), or op_k(x) alone."""

    def __init__(self, c: int, search: bool = True):
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, c, search) for name in OPS)

    def forward(self, x: torch.Tensor, w: torch.Tensor | int) -> torch.Tensor:
        if not isinstance(w, torch.Tensor):
            return self.ops[int(w)](x)
        # (K,) weights; the zero operation adds w_none * 0 and is skipped
        return sum(w[k] * op(x) for k, op in enumerate(self.ops) if OPS[k] != "none")


class Cell(nn.Module):
    """The supernet cell (``arch`` None: a MixedEdge per edge) or the discrete cell of ``arch``
    (one operation per edge, ``none`` edges dropped)."""

    def __init__(self, c: int, arch: Sequence[int] | None = None, search: bool = True):
        super().__init__()
        self.arch = None if arch is None else [int(k) for k in arch]
        if self.arch is None:
            self.edges = nn.ModuleList(MixedEdge(c, search) for _ in EDGES)
        else:
            _check_arch(self.arch)
            self.edges = nn.ModuleList(make_op(OPS[k], c, search) for k in self.arch)
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(NODES * c, c, 1, bias=False), _bn(c, search))

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor | Sequence[int] | None = None,
    ) -> torch.Tensor:
        """s0, s1: (N, C, H, W). ``weights``: (14, K) mixing weights, or 14 choices (the sampled
        operations alone), for the supernet; ignored by a discrete cell. -> (N, C, H, W)."""
        if self.arch is not None:
            weights = self.arch
        elif weights is None:
            raise UsageError("the supernet cell needs mixing weights or an architecture")
        mixed = isinstance(weights, torch.Tensor)
        states = [s0, s1]
        for incoming in INCOMING:
            node = None
            for e in incoming:
                src = states[EDGES[e][0]]
                if mixed:
                    term = self.edges[e](src, weights[e])
                elif OPS[weights[e]] == "none":
                    continue
                elif self.arch is None:
                    term = self.edges[e](src, int(weights[e]))
                else:
                    term = self.edges[e](src)
                node = term if node is None else node + term
            states.append(torch.zeros_like(s0) if node is None else node)
        return self.out(torch.cat(states[2:], dim=1))  # (N, 4C, H, W) -> (N, C, H, W)


def discrete_cell(cell: Cell, arch: Sequence[int]) -> Cell:
    """The discrete cell of ``arch`` holding the supernet cell's own weights (copies)."""
    search = not cell.out[2].track_running_stats
    c = cell.out[1].out_channels
    out = Cell(c, arch, search=search)
    for e, k in enumerate(out.arch):
        out.edges[e].load_state_dict(cell.edges[e].ops[k].state_dict())
    out.out.load_state_dict(cell.out.state_dict())
    return out


class Network(nn.Module):
    """stem conv -> cells (inputs: the previous two outputs) -> global average pool -> linear."""

    def __init__(
        self,
        in_channels: int,
        classes: int,
        c: int,
        cells: int,
        arch: Sequence[int] | None = None,
        search: bool = True,
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False), _bn(c, search)
        )
        self.cells = nn.ModuleList(Cell(c, arch, search) for _ in range(cells))
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor, weights=None) -> torch.Tensor:
        """x: (N, C_in, H, W) -> logits (N, classes)."""
        s0 = s1 = self.stem(x)  # (N, C, H, W)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, weights)
        return self.head(s1.mean(dim=(2, 3)))  # (N, C) -> (N, classes)


def _check_arch(arch: Sequence[int]) -> None:
    if len(arch) != len(EDGES) or any(not 0 <= int(k) < len(OPS) for k in arch):
        raise UsageError(
            f"an architecture is {len(EDGES)} choices in 0..{len(OPS) - 1} (one per edge), "
            f"not {list(arch)}"
        )


# --- the distribution over architectures ----------------------------------------------------


def make_distribution(s: Settings, seed: int = 0) -> ChainDistribution:
    g = torch.Generator().manual_seed(seed)
    return ChainDistribution(
        [len(OPS)] * len(EDGES), decomp=s.decomp, rank=s.rank, init_scale=s.init_scale, generator=g
    )


def mixing_weights(dist: ChainDistribution) -> torch.Tensor:
    """(14, K): row l is the marginal p(k_l) of edge l (the deterministic objective's mix)."""
    return torch.stack([m[0] for m in marginals(dist.cores())])


def sample_architectures(
    dist: ChainDistribution, n: int, generator: torch.Generator
) -> torch.Tensor:
    """(n, 14) architectures drawn ancestrally from the joint, on the CPU (so a seed gives the
    same draws on every device)."""
    with torch.no_grad():
        cores = [c.detach().float().cpu() for c in dist.cores()]
    return sample(cores, n, generator=generator)


def score_function_step(
    dist: ChainDistribution,
    opt: torch.optim.Optimizer,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    samples: int,
    baseline: float | None,
    generator: torch.Generator,
    decay: float = 0.9,
) -> tuple[float, torch.Tensor]:
    """One distribution step by the score function (TRACE's stochastic objective, with a baseline):

        g = (1/S) sum_s (L(a_s) - b) grad_theta log P_theta(a_s),     a_s ~ P_theta,

    the gradient of the surrogate (1/S) sum_s (L(a_s) - b) log P(a_s). ``loss_of`` maps (S, 14)
    architectures to their (S,) losses (no gradient). The baseline b is the running average
    b <- decay b + (1 - decay) mean_s L(a_s) (the first batch's mean to start); it is returned
    updated, with the losses.
    """
    chains = sample_architectures(dist, samples, generator)  # (S, 14)
    with torch.no_grad():
        losses = loss_of(chains).detach().float()  # (S,)
    mean = float(losses.mean())
    b = mean if baseline is None else baseline
    cores = dist.cores()
    logp = log_prob(cores, chains.to(cores[0].device))  # (S,)
    surrogate = ((losses.to(logp.device) - b) * logp).mean()
    opt.zero_grad(set_to_none=True)
    surrogate.backward()
    opt.step()
    return decay * b + (1 - decay) * mean, losses


def derive(dist: ChainDistribution) -> list[int]:
    """The most probable architecture (Viterbi on the cores: max-product over choices and bond
    values, exact for ``independent``)."""
    with torch.no_grad():
        cores = [c.detach().double().cpu() for c in dist.cores()]
    return [int(k) for k in viterbi(cores)[0]]


def arch_probability(dist: ChainDistribution, arch: Sequence[int]) -> float:
    """P(arch) under the distribution (the exact contraction)."""
    with torch.no_grad():
        cores = [c.detach().double().cpu() for c in dist.cores()]
        return float(log_prob(cores, torch.tensor([list(arch)])).exp()[0])


def arch_text(arch: Sequence[int]) -> str:
    """``"n2: conv_3x3(x0) + skip_connect(x1); n3: ..."``; ``none`` edges are left out, a node
    with no operation reads ``0``."""
    _check_arch(arch)
    parts = []
    for j, incoming in enumerate(INCOMING):
        terms = [
            f"{OPS[arch[e]]}({STATE_NAMES[EDGES[e][0]]})"
            for e in incoming
            if OPS[arch[e]] != "none"
        ]
        parts.append(f"{STATE_NAMES[2 + j]}: {' + '.join(terms) if terms else '0'}")
    return "; ".join(parts)


# --- search and retrain ----------------------------------------------------------------------


def _resolve(device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    from mltk.device import resolve_device

    return resolve_device(str(device))


def _finite(loss: torch.Tensor, what: str) -> None:
    if not torch.isfinite(loss):
        from mltk.errors import DivergedError

        raise DivergedError(f"the {what} loss is not finite; lower lr or arch_lr")


def accuracy(
    net: Network, x: torch.Tensor, y: torch.Tensor, weights=None, batch: int = 500
) -> float:
    """Top-1 accuracy in eval mode (the supernet's BN still uses batch statistics)."""
    was = net.training
    net.eval()
    right = 0
    device = next(net.parameters()).device
    with torch.no_grad():
        for i in range(0, len(y), batch):
            logits = net(x[i : i + batch].to(device), weights)  # (B, classes)
            right += int((logits.argmax(1).cpu() == y[i : i + batch].cpu()).sum())
    net.train(was)
    return right / max(1, len(y))


def _losses_of(net: Network, x: torch.Tensor, y: torch.Tensor):
    """archs (S, 14) -> the (S,) losses of each sampled network on the batch (x, y)."""

    def losses(archs: torch.Tensor) -> torch.Tensor:
        return torch.stack([F.cross_entropy(net(x, a.tolist()), y) for a in archs])

    return losses


def search(data: dict, s: Settings, seed: int = 0, device="cpu", log=None):
    """Alternate weight steps (train batches) and distribution steps (validation batches).

    Returns (supernet, distribution, history); a history row per epoch: epoch, loss (mean
    train loss), val_acc (the derived architecture in the supernet on the whole validation
    set), p_arch (its probability), seconds, steps_per_s.
    """
    check(s)
    dev = _resolve(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)  # batches, crops and architecture draws (CPU)
    net = Network(data["in_channels"], data["classes"], s.channels, s.cells).to(dev)
    dist = make_distribution(s, seed).to(dev)
    xt, yt = (t.to(dev) for t in data["train"])
    xv, yv = (t.to(dev) for t in data["val"])
    steps = math.ceil(len(yt) / s.batch_size)
    w_opt = torch.optim.SGD(net.parameters(), lr=s.lr, momentum=0.9, weight_decay=s.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=s.epochs * steps)
    a_opt = torch.optim.Adam(dist.parameters(), lr=s.arch_lr, betas=(0.5, 0.999))
    aug = bool(data.get("augment"))
    history, baseline = [], None
    for epoch in range(1, s.epochs + 1):
        t0, losses = time.perf_counter(), []
        order = torch.randperm(len(yt), generator=gen).to(dev)
        for i in range(steps):
            idx = order[i * s.batch_size : (i + 1) * s.batch_size]
            vidx = torch.randint(0, len(yv), (s.batch_size,), generator=gen).to(dev)
            xb, yb, xvb, yvb = xt[idx], yt[idx], xv[vidx], yv[vidx]
            if aug:
                xb, xvb = augment(xb, gen), augment(xvb, gen)
            # weights step on the train batch
            if s.objective == "stochastic":
                chains = sample_architectures(dist, s.samples, gen)  # (S, 14)
                loss = sum(F.cross_entropy(net(xb, a.tolist()), yb) for a in chains) / s.samples
            else:
                with torch.no_grad():
                    w = mixing_weights(dist)  # (14, K)
                loss = F.cross_entropy(net(xb, w), yb)
            _finite(loss, "training")
            w_opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            w_opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            # distribution step on the validation batch
            if s.objective == "stochastic":
                baseline, _ = score_function_step(
                    dist,
                    a_opt,
                    _losses_of(net, xvb, yvb),
                    s.samples,
                    baseline,
                    gen,
                    s.baseline_decay,
                )
            else:
                a_loss = F.cross_entropy(net(xvb, mixing_weights(dist)), yvb)
                _finite(a_loss, "validation")
                a_opt.zero_grad(set_to_none=True)
                a_loss.backward()
                a_opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - t0
        arch = derive(dist)
        row = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            "val_acc": accuracy(net, xv, yv, arch),
            "p_arch": arch_probability(dist, arch),
            "seconds": seconds,
            "steps_per_s": steps / seconds,
        }
        history.append(row)
        if log is not None:
            log(
                f"epoch {epoch}/{s.epochs}: loss {row['loss']:.4f}, val acc {row['val_acc']:.4f} "
                f"of P={row['p_arch']:.3g} {arch_text(arch)} ({seconds:.1f} s)"
            )
    return net, dist, history


def retrain(
    data: dict, arch: Sequence[int], s: Settings, seed: int = 0, device="cpu", log=None
) -> dict:
    """Train the discrete network of ``arch`` from scratch on train + val for
    ``retrain_epochs`` (SGD, momentum 0.9, cosine schedule); its test accuracy.

    Returns arch, text, test_acc, params, seconds and the per-epoch history (loss, seconds).
    """
    check(s)
    _check_arch(arch)
    dev = _resolve(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = Network(data["in_channels"], data["classes"], s.channels, s.cells, arch, search=False)
    net = net.to(dev)
    x = torch.cat([data["train"][0], data["val"][0]]).to(dev)
    y = torch.cat([data["train"][1], data["val"][1]]).to(dev)
    steps = math.ceil(len(y) / s.batch_size)
    opt = torch.optim.SGD(net.parameters(), lr=s.lr, momentum=0.9, weight_decay=s.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, s.retrain_epochs * steps))
    aug = bool(data.get("augment"))
    history, t_start = [], time.perf_counter()
    for epoch in range(1, s.retrain_epochs + 1):
        t0, losses = time.perf_counter(), []
        order = torch.randperm(len(y), generator=gen).to(dev)
        for i in range(steps):
            idx = order[i * s.batch_size : (i + 1) * s.batch_size]
            xb = augment(x[idx], gen) if aug else x[idx]
            loss = F.cross_entropy(net(xb), y[idx])
            _finite(loss, "training")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0}
        history.append(row)
        if log is not None:
            loss, sec = row["loss"], row["seconds"]
            log(f"retrain {epoch}/{s.retrain_epochs}: loss {loss:.4f} ({sec:.1f} s)")
    test_acc = accuracy(net, *data["test"])
    return {
        "arch": [int(k) for k in arch],
        "text": arch_text(arch),
        "test_acc": test_acc,
        "params": sum(p.numel() for p in net.parameters()),
        "seconds": time.perf_counter() - t_start,
        "history": history,
        "settings": asdict(s),
    }
