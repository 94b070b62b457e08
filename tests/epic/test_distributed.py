"""`mltk epic train` under torchrun (two gloo processes), and the GPU speed check's CPU mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from .test_cli import FAST

ROOT = Path(__file__).resolve().parents[2]


def test_two_gloo_processes_train_one_model_and_fill_the_queue_with_both_halves(tmp_path):
    out = tmp_path / "ddp"
    args = [a for a in FAST]
    args[args.index("--steps") + 1] = "2"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "mltk",
            "epic",
            "train",
            *args,
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MLTK_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from mltk_plugins.epic import model as M

    model, _, _ = M.load(out / "model")
    batch = int(args[args.index("--batch") + 1])
    queue = int(args[args.index("--queue") + 1])
    # two steps of the global batch (both ranks' features gathered) went into the queue
    assert int(model.queue_ptr) == (2 * batch) % queue
    written = model.image_queue[:, : 2 * batch]
    assert torch.allclose(written.norm(dim=0), torch.ones(2 * batch), atol=1e-4)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # rank 0 alone logs


def test_the_gpu_speed_check_runs_in_its_cpu_smoke_mode():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/epic/gpu_speed.py"),
            "--tiny",
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--batch",
            "4",
            "--steps",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "EPIC's step takes" in proc.stdout
