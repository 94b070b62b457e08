"""Device and precision resolution, seeding, threads, deterministic kernels."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mltk.device import env_dist, resolve_device, resolve_precision
from mltk.errors import DeviceError, UsageError
from mltk.runtime import setup
from mltk.seed import seed_everything


def test_auto_picks_the_best_available_device():
    dev = resolve_device("auto")
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert dev.type == expected


def test_cpu_and_malformed_devices():
    assert resolve_device("CPU") == torch.device("cpu")
    for bad in ("gpu", "cuda:x", "tpu:0"):
        with pytest.raises(UsageError):
            resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_missing_cuda_is_a_device_error_naming_what_exists(spec):
    with pytest.raises(DeviceError, match="available: cpu"):
        resolve_device(spec)


def test_precision_resolution():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == torch.float32
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    assert resolve_precision("fp32", cpu) == torch.float32
    with pytest.raises(UsageError, match="fp16 is not supported on the CPU"):
        resolve_precision("fp16", cpu)
    with pytest.raises(UsageError, match="not one of"):
        resolve_precision("int8", cpu)


def test_seed_everything_makes_all_three_generators_repeat():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
    seed_everything(8)
    assert draw() != first


def test_setup_sets_threads_deterministic_and_autocast():
    before = torch.get_num_threads()
    try:
        rt = setup(device="cpu", precision="bf16", seed=3, threads=1, deterministic=True)
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
        with rt.autocast():
            y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
        assert y.dtype == torch.bfloat16
        with pytest.raises(UsageError, match="--threads 0"):
            setup(device="cpu", threads=0)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(before)


def test_env_dist_reads_torchrun_variables(monkeypatch):
    assert not env_dist().enabled
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    d = env_dist()
    assert d.enabled and not d.is_main and list(d.shard(5)) == [1, 3]
