"""`mltk antnet train` under torchrun (two gloo processes), and the GPU speed check's CPU mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .test_cli import FAST

ROOT = Path(__file__).resolve().parents[2]


def test_two_gloo_processes_train_one_model(tmp_path):
    out = tmp_path / "ddp"
    launch = "-m torch.distributed.run --standalone --nproc-per-node 2 -m mltk antnet train"
    cmd = [sys.executable, *launch.split(), *FAST, "--out", str(out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLTK_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)  # rank 0 alone prints
    assert result["run"] == str(out) and result["epochs"] == 2
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # and logs
    from mltk_plugins.antnet import saved

    model, _ = saved.load(out / "model")
    assert sum(p.numel() for p in model.parameters()) > 0


def test_the_gpu_speed_check_runs_in_its_cpu_smoke_mode():
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks/antnet/gpu_speed.py"),
        "--tiny",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--batch",
        "32",
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "examples/s" in proc.stdout and "| cpu | fp32 |" in proc.stdout
