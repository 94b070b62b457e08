"""The optimizers of adaptive_switch.py against independent computations."""

from __future__ import annotations

import math

import pytest
import torch
from mltk_plugins.aesam.adaptive_switch import (
    AESAM,
    ERM,
    SAM,
    SSSAM,
    AELookSAM,
    LookSAM,
    frozen_bn_stats,
    make_optimizer,
    threshold_schedule,
)
from torch import nn
from torch.nn import functional as F

from mltk.checkpoint import load_training_state, save_training_state

torch.set_num_threads(1)
STEPS = 25


def make_problem(seed: int = 0, bn: bool = False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    torch.manual_seed(seed)
    layers = (
        [nn.Linear(6, 16)] + ([nn.BatchNorm1d(16)] if bn else []) + [nn.Tanh(), nn.Linear(16, 2)]
    )
    return nn.Sequential(*layers), x, y


def batches(x, y, n=STEPS, size=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        idx = torch.randint(0, len(y), (size,), generator=g)
        yield x[idx], y[idx]


def run(opt_factory, seed=0, n=STEPS, bn=False):
    """Train with opt.step(closure); return the model, optimizer and closure call count."""
    model, x, y = make_problem(seed, bn=bn)
    opt = opt_factory(model)
    calls = 0
    for xb, yb in batches(x, y, n):
        F.cross_entropy(model(xb), yb).backward()

        def closure(xb=xb, yb=yb):
            nonlocal calls
            calls += 1
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            return loss

        opt.step(closure)
        opt.zero_grad()
    return model, opt, calls


def params(model):
    return [p.detach().clone() for p in model.parameters()]


SGD_KW = dict(lr=0.1, momentum=0.9, weight_decay=1e-4)


@pytest.mark.parametrize("bn", [False, True], ids=["mlp", "batchnorm"])
def test_sam_matches_a_hand_written_sam_step_for_step(bn):
    rho = 0.05
    model, opt, _ = run(
        lambda m: SAM(m.parameters(), torch.optim.SGD, rho=rho, model=m, **SGD_KW), bn=bn
    )
    # Independent SAM: e = rho g / ||g||, gradient at w + e, SGD update from w. BatchNorm uses the
    # batch statistics in both passes; its running statistics come from the first pass only
    # (saved before the perturbed pass and put back after it).
    ref, x, y = make_problem(0, bn=bn)
    base = torch.optim.SGD(ref.parameters(), **SGD_KW)
    for xb, yb in batches(x, y):
        base.zero_grad()
        F.cross_entropy(ref(xb), yb).backward()
        grads = [p.grad.clone() for p in ref.parameters()]
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        kept = [b.clone() for b in ref.buffers()]
        with torch.no_grad():
            eps = [rho * g / norm for g in grads]
            for p, e in zip(ref.parameters(), eps):
                p.add_(e)
        base.zero_grad()
        F.cross_entropy(ref(xb), yb).backward()
        with torch.no_grad():
            for p, e in zip(ref.parameters(), eps):
                p.sub_(e)
            for b, k in zip(ref.buffers(), kept):
                b.copy_(k)
        base.step()
    for a, b in zip(params(model), params(ref)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    bufs = list(ref.buffers())
    assert len(bufs) == (3 if bn else 0)
    for a, b in zip(model.buffers(), bufs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_lambda_minus_huge_reproduces_sam_step_for_step():
    sam_model, sam_opt, sam_calls = run(lambda m: SAM(m.parameters(), torch.optim.SGD, **SGD_KW))
    ae_model, ae_opt, ae_calls = run(
        lambda m: AESAM(
            m.parameters(), torch.optim.SGD, total_steps=STEPS, lambda1=-1e9, lambda2=-1e9, **SGD_KW
        )
    )
    assert ae_opt.stats["sam_fraction"] == 1.0 and ae_calls == sam_calls == STEPS
    for a, b in zip(params(sam_model), params(ae_model)):
        assert torch.equal(a, b)


def test_lambda_plus_huge_reproduces_the_base_optimizer():
    ae_model, ae_opt, calls = run(
        lambda m: AESAM(
            m.parameters(), torch.optim.SGD, total_steps=STEPS, lambda1=1e9, lambda2=1e9, **SGD_KW
        )
    )
    assert calls == 0 and ae_opt.stats["sam_fraction"] == 0.0
    assert ae_opt.grad_evals == STEPS
    ref, x, y = make_problem(0)
    base = torch.optim.SGD(ref.parameters(), **SGD_KW)
    for xb, yb in batches(x, y):
        base.zero_grad()
        F.cross_entropy(ref(xb), yb).backward()
        base.step()
    for a, b in zip(params(ae_model), params(ref)):
        assert torch.equal(a, b)


def test_threshold_schedule_endpoints_and_midpoint():
    assert threshold_schedule(0, 100, -1.0, 1.0) == 1.0  # lambda2 at the start
    assert threshold_schedule(100, 100, -1.0, 1.0) == -1.0  # lambda1 at T
    assert threshold_schedule(50, 100, -3.0, 1.0) == pytest.approx(-1.0)
    assert threshold_schedule(500, 100, -1.0, 1.0) == -1.0  # clipped past T


def test_ema_statistics_and_threshold_follow_the_paper_recurrence():
    """Feed gradients of known norms; compare mu, var and c_t with the recurrence in numpy terms."""
    w = nn.Parameter(torch.zeros(3))
    T, d = 8, 0.9
    opt = AESAM([w], torch.optim.SGD, total_steps=T, lambda1=1e9, lambda2=1e9, lr=0.0, delta=d)
    norms = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    mu = var = 0.0
    for n in norms:
        w.grad = torch.tensor([n, 0.0, 0.0])
        s = n * n
        mu = d * mu + (1 - d) * s
        var = d * var + (1 - d) * (s - mu) ** 2
        assert opt.first_step() is False
        opt.second_step()
        assert opt.mu == pytest.approx(mu, rel=1e-12)
        assert opt.stats["sigma"] == pytest.approx(math.sqrt(var), rel=1e-12)
        assert opt.last_sq_norm == pytest.approx(s, rel=1e-6)
        assert opt.stats["c_t"] == 1e9
    assert opt.t == T
    opt2 = AESAM([w], torch.optim.SGD, total_steps=T, lr=0.0)
    w.grad = torch.ones(3)
    opt2.first_step()
    assert opt2.stats["c_t"] == 1.0  # lambda2 at t = 0
    opt2.second_step()
    opt2.t = T - 1
    opt2.first_step()
    assert opt2.stats["c_t"] == pytest.approx((T - 1) / T * -1.0 + 1 / T * 1.0)


def test_closure_is_called_exactly_on_the_steps_the_rule_picks():
    model, x, y = make_problem(3)
    T = 40
    opt = AESAM(model.parameters(), torch.optim.SGD, total_steps=T, **SGD_KW)
    mu = var = 0.0
    for t, (xb, yb) in enumerate(batches(x, y, n=T)):
        F.cross_entropy(model(xb), yb).backward()
        s = sum((p.grad.double() ** 2).sum() for p in model.parameters()).item()
        mu = 0.9 * mu + 0.1 * s
        var = 0.9 * var + 0.1 * (s - mu) ** 2
        c = (t / T) * -1.0 + (1 - t / T) * 1.0
        expected = s >= mu + c * math.sqrt(var)
        called = []
        opt.step(
            lambda xb=xb, yb=yb, called=called: (
                called.append(1),
                F.cross_entropy(model(xb), yb).backward(),
            )
        )
        opt.zero_grad()
        assert bool(called) == expected == opt.last_was_sam, f"step {t}"
    assert 0 < opt.sam_steps < T
    assert opt.grad_evals == T + opt.sam_steps


def test_sam_step_without_closure_raises_and_restores_weights():
    model, x, y = make_problem(0)
    before = params(model)
    opt = SAM(model.parameters(), torch.optim.SGD, lr=0.1)
    F.cross_entropy(model(x), y).backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()
    for a, b in zip(before, params(model)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["aesam", "aelooksam", "sssam", "looksam"])
def test_state_dict_round_trip_through_a_checkpoint_resumes_identically(name, tmp_path):
    def build(model):
        return make_optimizer(
            name, model.parameters(), torch.optim.SGD, total_steps=40, k=3, p=0.4, seed=7, **SGD_KW
        )

    model, x, y = make_problem(0)
    opt = build(model)
    stream = list(batches(x, y, n=40))

    def train_on(m, o, part):
        for xb, yb in part:
            F.cross_entropy(m(xb), yb).backward()
            o.step(lambda xb=xb, yb=yb: F.cross_entropy(m(xb), yb).backward())
            o.zero_grad()

    train_on(model, opt, stream[:20])
    save_training_state(tmp_path / "ckpt", model=model, optimizer=opt, step=opt.t)
    train_on(model, opt, stream[20:])

    model2, _, _ = make_problem(1)  # different initial weights: everything must come from the file
    opt2 = build(model2)
    load_training_state(tmp_path / "ckpt", model=model2, optimizer=opt2, restore_rng=False)
    assert opt2.t == 20 and opt2.mu > 0
    train_on(model2, opt2, stream[20:])
    for a, b in zip(params(model), params(model2)):
        assert torch.equal(a, b)
    assert repr(opt.stats) == repr(opt2.stats)  # (repr: NaN == NaN)


def test_load_state_dict_refuses_another_policy():
    model, _, _ = make_problem(0)
    sd = SAM(model.parameters(), torch.optim.SGD, lr=0.1).state_dict()
    with pytest.raises(ValueError, match="'sam'"):
        ERM(model.parameters(), torch.optim.SGD, lr=0.1).load_state_dict(sd)


def test_frozen_bn_stats_keeps_running_statistics_of_the_unperturbed_pass():
    model, x, y = make_problem(0, bn=True)
    bn = model[1]
    opt = SAM(model.parameters(), torch.optim.SGD, lr=0.1, model=model)
    F.cross_entropy(model(x), y).backward()
    mean_after_first = bn.running_mean.clone()
    opt.step(lambda: F.cross_entropy(model(x), y).backward())
    assert torch.equal(bn.running_mean, mean_after_first)
    assert int(bn.num_batches_tracked) == 1
    assert bn.track_running_stats  # restored
    with frozen_bn_stats(model):  # the context manager for hand-written loops
        model(x)
    assert torch.equal(bn.running_mean, mean_after_first)
    # Without the bypass the perturbed pass moves them.
    opt_plain = SAM(model.parameters(), torch.optim.SGD, lr=0.1)
    F.cross_entropy(model(x), y).backward()
    before = bn.running_mean.clone()
    opt_plain.step(lambda: F.cross_entropy(model(x), y).backward())
    assert int(bn.num_batches_tracked) == 3 and not torch.equal(bn.running_mean, before)


def test_lr_scheduler_on_the_base_optimizer_drives_the_update():
    w = nn.Parameter(torch.zeros(2))
    opt = ERM([w], torch.optim.SGD, lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt.base_optimizer, step_size=1, gamma=0.5)
    for expected_lr in (1.0, 0.5, 0.25):
        assert opt.param_groups[0]["lr"] == expected_lr
        before = w.detach().clone()
        w.grad = torch.ones(2)
        opt.step()
        assert torch.allclose(before - w.detach(), torch.full((2,), expected_lr))
        sched.step()


def test_looksam_reuses_the_orthogonal_component_of_the_sam_gradient():
    """Quadratic loss 0.5 w^T A w: gradients are known in closed form."""
    A = torch.tensor([[3.0, 1.0], [1.0, 2.0]])
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    rho, alpha, lr = 0.1, 0.7, 0.05
    opt = LookSAM([w], torch.optim.SGD, rho=rho, k=2, alpha=alpha, lr=lr)

    def grad_at(v):
        return A @ v

    def loss_backward():
        (0.5 * w @ A @ w).backward()

    w0 = w.detach().clone()
    loss_backward()
    opt.step(lambda: (opt.zero_grad(), loss_backward()))  # t = 0: a SAM step
    g = grad_at(w0)
    g_s = grad_at(w0 + rho * g / g.norm())
    g_v = g_s - (g_s @ g) / (g @ g) * g
    w1 = w0 - lr * g_s
    torch.testing.assert_close(w.detach(), w1)
    opt.zero_grad()
    loss_backward()
    opt.step()  # t = 1: reuse, no closure needed
    g1 = grad_at(w1)
    w2 = w1 - lr * (g1 + alpha * g1.norm() / g_v.norm() * g_v)
    torch.testing.assert_close(w.detach(), w2)
    assert opt.grad_evals == 3 and opt.sam_steps == 1


def test_sssam_fraction_follows_p_and_aelooksam_switches():
    _, opt, calls = run(
        lambda m: SSSAM(m.parameters(), torch.optim.SGD, p=0.3, seed=0, lr=0.05), n=400
    )
    assert calls == opt.sam_steps
    assert abs(opt.stats["sam_fraction"] - 0.3) < 0.06
    _, opt, calls = run(
        lambda m: AELookSAM(m.parameters(), torch.optim.SGD, total_steps=60, lr=0.05), n=60
    )
    assert 0 < calls == opt.sam_steps < 60


def test_bad_arguments_are_rejected_with_the_parameter_named():
    w = [nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="rho"):
        SAM(w, torch.optim.SGD, rho=-1.0, lr=0.1)
    with pytest.raises(ValueError, match="total_steps"):
        make_optimizer("aesam", w, torch.optim.SGD, lr=0.1)
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("adam", w, torch.optim.SGD, lr=0.1)
    with pytest.raises(ValueError, match="p must"):
        SSSAM(w, torch.optim.SGD, p=1.5, lr=0.1)


def test_works_with_adamw_as_the_base():
    model, opt, calls = run(
        lambda m: AESAM(m.parameters(), torch.optim.AdamW, total_steps=STEPS, lr=1e-2)
    )
    assert calls == opt.sam_steps > 0
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_shifting_the_schedule_up_cuts_sam_steps_as_the_recurrence_predicts():
    """The digits-noisy preset's schedule (2 -> 0) against the paper's (1 -> -1) on one stream of
    gradient norms: each decision equals the recurrence computed here, and the shifted schedule
    takes well under half as many SAM steps."""
    from mltk_plugins.aesam.training import get_preset

    preset = get_preset("digits-noisy")
    g = torch.Generator().manual_seed(0)
    T = 400
    sq_norms = (100.0 + 15.0 * torch.randn(T, generator=g, dtype=torch.float64)).clamp_min(1.0)
    fractions = {}
    for lam2, lam1 in [(1.0, -1.0), (preset.lambda2, preset.lambda1)]:
        w = nn.Parameter(torch.zeros(2, dtype=torch.float64))
        opt = AESAM([w], torch.optim.SGD, total_steps=T, lambda1=lam1, lambda2=lam2, lr=0.0)
        mu = var = 0.0
        for t, s in enumerate(sq_norms.tolist()):
            w.grad = torch.tensor([math.sqrt(s), 0.0], dtype=torch.float64)
            mu = 0.9 * mu + 0.1 * s
            var = 0.9 * var + 0.1 * (s - mu) ** 2
            c = (t / T) * lam1 + (1 - t / T) * lam2
            expected = s >= mu + c * math.sqrt(var)
            assert opt.first_step() is expected, f"step {t}"
            w.grad = torch.tensor([math.sqrt(s), 0.0], dtype=torch.float64)
            opt.second_step()
        fractions[lam2] = opt.stats["sam_fraction"]
    assert preset.lambda2 - preset.lambda1 == 2.0  # the paper's spread, shifted up
    assert 0.3 < fractions[1.0] < 0.6
    assert fractions[preset.lambda2] < min(0.25, 0.5 * fractions[1.0])  # 0.20 vs 0.48 here
