"""SAM, its cheaper relatives, and the adaptive switch of AE-SAM, behind one optimizer API.

Jiang, Yang, Zhang and Kwok, "An Adaptive Policy to Employ Sharpness-Aware Minimization",
ICLR 2023 (arXiv:2304.14647). Every optimizer here wraps a base optimizer (SGD, AdamW, ...) and
runs one code path; they differ only in *when* a step is a SAM step:

- ``ERM``        never (the base optimizer, plus the bookkeeping below);
- ``SAM``        always (Foret et al., ICLR 2021): w <- w - eta * grad L(w + rho g/||g||);
- ``LookSAM``    every k-th step, reusing the component of the SAM gradient orthogonal to g on
                 the others (Liu et al., CVPR 2022);
- ``SSSAM``      with probability p, by a Bernoulli trial (Zhao et al., 2022);
- ``AESAM``      when the squared norm of the minibatch gradient is large for its recent history
                 (Sec. 3.1, Eq. 3-5 of the AE-SAM paper):

                     s_t     = ||g_t||^2
                     mu_t    = d mu_{t-1} + (1 - d) s_t
                     var_t   = d var_{t-1} + (1 - d) (s_t - mu_t)^2
                     c_t     = (t / T) lambda1 + (1 - t / T) lambda2
                     SAM step  iff  s_t >= mu_t + c_t sqrt(var_t)

- ``AELookSAM``  the AE-SAM switch with LookSAM's gradient reuse on the non-SAM steps (Sec. 3.2).

Usage in a training loop (the closure is called only on SAM steps)::

    opt = AESAM(model.parameters(), torch.optim.SGD, rho=0.05, total_steps=T, lr=0.1,
                momentum=0.9, model=model)  # model=: BatchNorm statistics frozen on the SAM pass
    loss = loss_fn(model(x), y); loss.backward()
    opt.step(lambda: loss_fn(model(x), y).backward())
    opt.zero_grad()

or by hand::

    loss.backward()
    if opt.first_step(zero_grad=True):          # a SAM step: weights are now w + e
        with frozen_bn_stats(model):
            loss_fn(model(x), y).backward()
    opt.second_step(zero_grad=True)

Under torch.distributed the decision statistic is averaged across ranks so every rank takes the
same branch (DDP already averages the gradients; ``sync_grads=True`` averages them here for a
model that is not wrapped in DDP).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = [
    "AELookSAM",
    "AESAM",
    "ERM",
    "LookSAM",
    "OPTIMIZERS",
    "SAM",
    "SSSAM",
    "SwitchingSAM",
    "frozen_bn_stats",
    "make_optimizer",
    "threshold_schedule",
]


def threshold_schedule(t: int, total_steps: int, lambda1: float, lambda2: float) -> float:
    """c_t of AE-SAM: lambda2 at t = 0, moving linearly to lambda1 at t = T (clipped beyond)."""
    frac = min(max(t / max(total_steps, 1), 0.0), 1.0)
    return frac * lambda1 + (1.0 - frac) * lambda2


@contextmanager
def frozen_bn_stats(model: nn.Module):
    """Run the forward passes inside without touching BatchNorm running statistics.

    The perturbed pass of SAM sees weights w + e that are never kept; its batch statistics must
    not leak into the running mean and variance used at evaluation. Normalisation still uses the
    batch statistics, exactly as in the unperturbed pass.
    """
    layers = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    for m in layers:
        m.track_running_stats = False
    try:
        yield model
    finally:
        for m in layers:
            m.track_running_stats = True


def _dist_world() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


class SwitchingSAM(torch.optim.Optimizer):
    """A base optimizer that takes SAM steps on the steps a policy picks (ERM on the others).

    Subclasses decide by overriding ``_wants_sam(s)``; everything else (the perturbation, the
    restore, the gradient reuse, the statistics, the state dict) is shared so that comparisons
    between policies are like for like.

    Args:
        params: parameters or parameter groups, as for any torch optimizer.
        base_optimizer_cls: the optimizer that applies the update (``torch.optim.SGD``, ...).
        rho: radius of the SAM neighbourhood (perturbation e = rho * g / ||g||).
        delta: forgetting rate d of the moving mean and variance of ||g||^2.
        reuse_alpha: when set, LookSAM's reuse on non-SAM steps: g + alpha ||g||/||g_v|| g_v.
        model: when given, ``step`` freezes its BatchNorm running statistics on the SAM pass.
        sync_grads: all-reduce (average) gradients across ranks before using them; only for
            models not wrapped in DDP (DDP has already averaged them).
        eps: added to ||g|| in the perturbation.
        **base_kwargs: passed to ``base_optimizer_cls`` (lr, momentum, weight_decay, ...).
    """

    name = "switching"

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer_cls: type[torch.optim.Optimizer] = torch.optim.SGD,
        rho: float = 0.05,
        *,
        delta: float = 0.9,
        reuse_alpha: float | None = None,
        model: nn.Module | None = None,
        sync_grads: bool = False,
        eps: float = 1e-12,
        **base_kwargs: Any,
    ) -> None:
        if not rho >= 0.0:
            raise ValueError(f"rho must be >= 0, got {rho}")
        if not 0.0 <= delta < 1.0:
            raise ValueError(f"delta must be in [0, 1), got {delta}")
        if reuse_alpha is not None and not reuse_alpha >= 0.0:
            raise ValueError(f"reuse_alpha must be >= 0, got {reuse_alpha}")
        super().__init__(params, dict(rho=rho, **base_kwargs))
        self.base_optimizer = base_optimizer_cls(self.param_groups, **base_kwargs)
        # One list of groups for both, so LR schedulers on either object act on the real update.
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.rho = float(rho)
        self.delta = float(delta)
        self.reuse_alpha = None if reuse_alpha is None else float(reuse_alpha)
        self.model = model
        self.sync_grads = bool(sync_grads)
        self.eps = float(eps)
        # Statistics of the switch (all python numbers, so they round-trip exactly).
        self.t = 0  # steps completed
        self.sam_steps = 0
        self.grad_evals = 0  # forward-backward passes: one per step, two on SAM steps
        self.mu = 0.0
        self.var = 0.0
        self.last_sq_norm = float("nan")
        self.last_threshold = float("nan")
        self.last_was_sam = False
        self._pending: bool | None = None  # decision of first_step, consumed by second_step

    # ------------------------------------------------------------------ the policy
    def _wants_sam(self, s: float) -> bool:
        raise NotImplementedError

    def _policy_state(self) -> dict[str, Any]:
        return {}

    def _load_policy_state(self, state: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ helpers
    def _params_with_grad(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"] if p.grad is not None]

    @staticmethod
    def _global_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
        if not tensors:
            return torch.zeros(())
        if all(t.dtype == torch.float32 for t in tensors):
            norms = torch._foreach_norm([t.detach() for t in tensors])  # one fused launch
        else:
            norms = [torch.linalg.vector_norm(t.detach().float()) for t in tensors]
        return torch.linalg.vector_norm(torch.stack(norms))

    @staticmethod
    def _global_dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        if not a:
            return torch.zeros(())
        if len({t.device for t in a}) == 1:  # one flat dot product instead of a kernel per tensor
            flat_a = torch.cat([x.reshape(-1).float() for x in a])
            flat_b = torch.cat([y.reshape(-1).float() for y in b])
            return torch.dot(flat_a, flat_b)
        return torch.stack([(x.float() * y.float()).sum().cpu() for x, y in zip(a, b)]).sum()

    def _sync_gradients(self, params: list[torch.Tensor]) -> None:
        world = _dist_world()
        if world > 1 and self.sync_grads:
            for p in params:
                torch.distributed.all_reduce(p.grad)
                p.grad.div_(world)

    def _statistic(self, params: list[torch.Tensor]) -> float:
        """s_t = ||g_t||^2, the same number on every rank."""
        norm = self._global_norm([p.grad for p in params])
        sq = norm.pow(2)
        world = _dist_world()
        if world > 1:
            sq = sq.to(params[0].device if params else sq.device)
            torch.distributed.all_reduce(sq)
            sq = sq / world
        return float(sq.item())

    # ------------------------------------------------------------------ the two steps
    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> bool:
        """Read g_t, update the statistics and decide. On a SAM step move to w + e and return True.

        Gradients must have been computed at w. With ``zero_grad`` they are cleared, but only on a
        SAM step (on the others they are still needed by ``second_step``).
        """
        if self._pending is not None:
            raise RuntimeError("first_step was called twice; call second_step in between")
        params = self._params_with_grad()
        self._sync_gradients(params)
        s = self._statistic(params)
        if not math.isfinite(s):
            raise FloatingPointError(
                f"the gradient norm is not finite at step {self.t}; lower the learning rate"
            )
        # Eq. 3-4: moving mean, then variance around the updated mean.
        self.mu = self.delta * self.mu + (1.0 - self.delta) * s
        self.var = self.delta * self.var + (1.0 - self.delta) * (s - self.mu) ** 2
        self.last_sq_norm = s
        use_sam = bool(self._wants_sam(s)) and self.rho > 0.0
        if use_sam and params:
            scale = self.rho / (math.sqrt(s) + self.eps)
            grads = [p.grad for p in params]
            # Fused copies (x * 1.0 is exact): one launch per dtype/device group, not per tensor.
            olds = torch._foreach_mul([p.detach() for p in params], 1.0)
            saved = torch._foreach_mul(grads, 1.0) if self.reuse_alpha is not None else None
            for i, p in enumerate(params):
                self.state[p]["old_p"] = olds[i]
                if saved is not None:
                    self.state[p]["g"] = saved[i]
            torch._foreach_add_(params, grads, alpha=scale)  # w <- w + rho g / ||g||
            if zero_grad:
                self.zero_grad(set_to_none=True)
        self._pending = use_sam
        return use_sam

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Return to w (SAM step), reuse the stored direction (LookSAM), and apply the base update."""
        if self._pending is None:
            raise RuntimeError("second_step needs first_step to be called before it")
        use_sam, self._pending = self._pending, None
        params = [p for g in self.param_groups for p in g["params"]]
        if use_sam:
            moved = [p for p in params if "old_p" in self.state.get(p, {})]
            if moved:
                torch._foreach_copy_(moved, [self.state[p].pop("old_p") for p in moved])
            with_grad = [p for p in params if p.grad is not None]
            self._sync_gradients(with_grad)
            if self.reuse_alpha is not None:
                self._store_orthogonal(with_grad)
            self.sam_steps += 1
            self.grad_evals += 2
        else:
            if self.reuse_alpha is not None:
                self._reuse_orthogonal(self._params_with_grad())
            self.grad_evals += 1
        self.last_was_sam = use_sam
        self.base_optimizer.step()
        self.t += 1
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def _store_orthogonal(self, params: list[torch.Tensor]) -> None:
        """g_v = g_s - (<g_s, g> / ||g||^2) g: the part of the SAM gradient orthogonal to g."""
        pairs = [(p, self.state[p].pop("g")) for p in params if "g" in self.state[p]]
        if not pairs:
            return
        gs = [p.grad for p, _ in pairs]
        gg = [g for _, g in pairs]
        coef = self._global_dot(gs, gg) / self._global_norm(gg).pow(2).clamp_min(self.eps)
        g_v = torch._foreach_mul(gg, -coef.to(gg[0].device))  # a tensor factor: no host sync
        torch._foreach_add_(g_v, gs)
        for (p, _), v in zip(pairs, g_v):
            self.state[p]["g_v"] = v

    def _reuse_orthogonal(self, params: list[torch.Tensor]) -> None:
        """LookSAM's cheap step: g <- g + alpha ||g|| / ||g_v|| g_v with the last stored g_v."""
        pairs = [(p, self.state[p]["g_v"]) for p in params if "g_v" in self.state[p]]
        if not pairs:
            return
        g_norm = self._global_norm([p.grad for p, _ in pairs])
        gv_norm = self._global_norm([gv for _, gv in pairs])
        scale = self.reuse_alpha * g_norm / gv_norm.clamp_min(self.eps)  # a tensor: no host sync
        gvs = [gv for _, gv in pairs]
        torch._foreach_add_(
            [p.grad for p, _ in pairs], torch._foreach_mul(gvs, scale.to(gvs[0].device))
        )

    # ------------------------------------------------------------------ torch.optim API
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update. Gradients at w must be computed; ``closure`` re-evaluates the loss and
        calls ``backward()``, and it is called only on SAM steps (at w + e, with BatchNorm
        statistics frozen when ``model`` was given). Returns the closure's value or None."""
        result = None
        if self.first_step(zero_grad=True):
            if closure is None:
                self._restore_after_failed_sam()
                raise RuntimeError(
                    f"{type(self).__name__} took a SAM step and needs step(closure), where the "
                    "closure recomputes the loss and calls backward()"
                )
            with torch.enable_grad():
                if self.model is not None:
                    with frozen_bn_stats(self.model):
                        result = closure()
                else:
                    result = closure()
        self.second_step()
        return result

    @torch.no_grad()
    def _restore_after_failed_sam(self) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                st = self.state.get(p, {})
                if "old_p" in st:
                    p.copy_(st.pop("old_p"))
                st.pop("g", None)
        self._pending = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if "base_optimizer" not in self.__dict__:  # called by torch.optim.Optimizer.__init__
            super().add_param_group(param_group)
        else:
            self.base_optimizer.add_param_group(param_group)

    @property
    def threshold(self) -> float:
        """The current c_t (NaN for policies without one)."""
        return float("nan")

    @property
    def stats(self) -> dict[str, float | int | bool]:
        """SAM fraction, gradient evaluations and the statistics of ||g||^2 so far."""
        return {
            "steps": self.t,
            "sam_steps": self.sam_steps,
            "sam_fraction": self.sam_steps / self.t if self.t else 0.0,
            "grad_evals": self.grad_evals,
            "mu": self.mu,
            "sigma": math.sqrt(self.var),
            "c_t": self.last_threshold,
            "sq_grad_norm": self.last_sq_norm,
            "last_was_sam": self.last_was_sam,
        }

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state dict plus a "switch" entry with the statistics (and, for
        the LookSAM variants, the stored g_v of every parameter)."""
        sd = self.base_optimizer.state_dict()
        params = [p for g in self.param_groups for p in g["params"]]
        g_v = {
            str(i): self.state[p]["g_v"].detach().clone()
            for i, p in enumerate(params)
            if p in self.state and "g_v" in self.state[p]
        }
        sd["switch"] = {
            "name": self.name,
            "t": self.t,
            "sam_steps": self.sam_steps,
            "grad_evals": self.grad_evals,
            "mu": self.mu,
            "var": self.var,
            "last_sq_norm": self.last_sq_norm,
            "last_threshold": self.last_threshold,
            "last_was_sam": self.last_was_sam,
            "g_v": g_v,
            **self._policy_state(),
        }
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        switch = state_dict.pop("switch", None)
        if switch is None:
            raise ValueError(
                "this state dict has no 'switch' entry; it was not saved by an AESAM-family optimizer"
            )
        if switch.get("name") != self.name:
            raise ValueError(
                f"this state dict was saved by {switch.get('name')!r}, not by {self.name!r}"
            )
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
        self.t = int(switch["t"])
        self.sam_steps = int(switch["sam_steps"])
        self.grad_evals = int(switch["grad_evals"])
        self.mu = float(switch["mu"])
        self.var = float(switch["var"])
        self.last_sq_norm = float(switch["last_sq_norm"])
        self.last_threshold = float(switch["last_threshold"])
        self.last_was_sam = bool(switch["last_was_sam"])
        params = [p for g in self.param_groups for p in g["params"]]
        for p in params:
            if p in self.state:
                self.state[p].pop("g_v", None)
        for key, gv in switch.get("g_v", {}).items():
            p = params[int(key)]
            self.state[p]["g_v"] = torch.as_tensor(gv).to(p.device, p.dtype).clone()
        self._pending = None
        self._load_policy_state(switch)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rho={self.rho}, base={self.base_optimizer!r})"


class ERM(SwitchingSAM):
    """The base optimizer alone (one gradient per step), with the same bookkeeping."""

    name = "erm"

    def _wants_sam(self, s: float) -> bool:
        return False


class SAM(SwitchingSAM):
    """Sharpness-aware minimisation: every step is a SAM step."""

    name = "sam"

    def _wants_sam(self, s: float) -> bool:
        return True


class LookSAM(SwitchingSAM):
    """SAM every ``k`` steps; between them, the stored orthogonal component g_v is reused."""

    name = "looksam"

    def __init__(
        self, params, base_optimizer_cls=torch.optim.SGD, rho=0.05, *, k=5, alpha=0.7, **kw
    ):
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        super().__init__(params, base_optimizer_cls, rho, reuse_alpha=alpha, **kw)
        self.k = int(k)

    def _wants_sam(self, s: float) -> bool:
        return self.t % self.k == 0


class SSSAM(SwitchingSAM):
    """SAM with probability ``p`` at each step (a Bernoulli trial from a seeded generator, so
    every rank draws the same sequence)."""

    name = "sssam"

    def __init__(
        self, params, base_optimizer_cls=torch.optim.SGD, rho=0.05, *, p=0.5, seed=0, **kw
    ):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        super().__init__(params, base_optimizer_cls, rho, **kw)
        self.p = float(p)
        self.generator = torch.Generator().manual_seed(int(seed))

    def _wants_sam(self, s: float) -> bool:
        return bool(torch.rand((), generator=self.generator).item() < self.p)

    def _policy_state(self) -> dict[str, Any]:
        return {"rng": self.generator.get_state()}

    def _load_policy_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(torch.as_tensor(state["rng"], dtype=torch.uint8).cpu())


class AESAM(SwitchingSAM):
    """AE-SAM: a SAM step when ||g_t||^2 >= mu_t + c_t sigma_t (Eq. 5 of the paper).

    ``total_steps`` is T, the number of steps the threshold schedule spans. The defaults
    (delta 0.9, lambda1 -1, lambda2 1) are the paper's.
    """

    name = "aesam"

    def __init__(
        self,
        params,
        base_optimizer_cls=torch.optim.SGD,
        rho=0.05,
        *,
        total_steps: int,
        lambda1: float = -1.0,
        lambda2: float = 1.0,
        **kw,
    ):
        if int(total_steps) < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        super().__init__(params, base_optimizer_cls, rho, **kw)
        self.total_steps = int(total_steps)
        self.lambda1 = float(lambda1)
        self.lambda2 = float(lambda2)

    @property
    def threshold(self) -> float:
        return threshold_schedule(self.t, self.total_steps, self.lambda1, self.lambda2)

    def _wants_sam(self, s: float) -> bool:
        c = self.threshold
        self.last_threshold = c
        sigma = math.sqrt(self.var)
        # With sigma = 0 (a constant statistic so far) the bound is mu whatever c is.
        bound = self.mu + c * sigma if sigma > 0.0 else self.mu
        return s >= bound


class AELookSAM(AESAM):
    """AE-LookSAM: the AE-SAM switch, with LookSAM's reuse of g_v on the non-SAM steps."""

    name = "aelooksam"

    def __init__(self, params, base_optimizer_cls=torch.optim.SGD, rho=0.05, *, alpha=0.7, **kw):
        super().__init__(params, base_optimizer_cls, rho, reuse_alpha=alpha, **kw)


OPTIMIZERS: dict[str, type[SwitchingSAM]] = {
    cls.name: cls for cls in (ERM, SAM, AESAM, AELookSAM, LookSAM, SSSAM)
}


def make_optimizer(
    name: str,
    params: Iterable[Any],
    base_optimizer_cls: type[torch.optim.Optimizer] = torch.optim.SGD,
    *,
    rho: float = 0.05,
    total_steps: int | None = None,
    lambda1: float = -1.0,
    lambda2: float = 1.0,
    delta: float = 0.9,
    alpha: float = 0.7,
    k: int = 5,
    p: float = 0.5,
    seed: int = 0,
    model: nn.Module | None = None,
    **base_kwargs: Any,
) -> SwitchingSAM:
    """Build one of ``OPTIMIZERS`` by name, passing each only the settings it uses."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    common = dict(rho=rho, delta=delta, model=model, **base_kwargs)
    if name in ("aesam", "aelooksam"):
        if total_steps is None:
            raise ValueError(f"{name} needs total_steps (T of the threshold schedule)")
        common.update(total_steps=total_steps, lambda1=lambda1, lambda2=lambda2)
    if name in ("aelooksam", "looksam"):
        common["alpha"] = alpha
    if name == "looksam":
        common["k"] = k
    if name == "sssam":
        common.update(p=p, seed=seed)
    return OPTIMIZERS[name](params, base_optimizer_cls, **common)
