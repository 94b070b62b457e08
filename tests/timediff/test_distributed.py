"""`train` runs unchanged under torchrun: two gloo ranks share the batches, rank 0 writes."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import write_series


def test_train_under_torchrun_with_two_ranks_writes_one_run(cli, tmp_path):
    data = write_series(tmp_path / "sines.csv")
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29631",
        "-m",
        "mltk",
        "timediff",
        "train",
        "--data",
        str(data),
        "--preset",
        "tiny",
        "--lookback",
        "24",
        "--horizon",
        "12",
        "--epochs",
        "2",
        "--out",
        str(run),
        "--json",
    ]
    env = {**cli.env, "MLTK_LOAD_PLUGINS": "timediff", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1  # only rank 0 prints
    assert json.loads(results[0])["epochs_run"] == 2
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]  # only rank 0 logs
