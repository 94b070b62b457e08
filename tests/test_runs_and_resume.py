"""Run folders, resume after SIGKILL, and DDP training under torchrun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file


def _weights(path: Path):
    return load_file(str(path))


def test_run_folder_layout(cli):
    r = cli("toy", "train", "--steps", "6", "--json")
    assert r.code == 0, r.stderr
    run = cli.cwd / r.json()["run"]
    assert run.parent == cli.cwd / "runs" / "toy"
    config = json.loads((run / "config.json").read_text())
    assert config["plugin"] == "toy" and config["config"]["steps"] == 6 and config["seed"] == 0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == [
        "meta.json",
        "tensors.safetensors",
    ]


def test_a_new_run_into_a_used_folder_replaces_the_old_runs_log(cli, tmp_path):
    out = tmp_path / "run"
    first = cli("toy", "train", "--steps", "6", "--out", str(out), "--json")
    assert first.code == 0, first.stderr
    (out / "checkpoint" / "stale.bin").write_bytes(b"x")  # something only the old run had
    second = cli("toy", "train", "--steps", "3", "--out", str(out), "--json")
    assert second.code == 0, second.stderr
    assert "held an earlier run" in second.stderr
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3]
    assert not (out / "checkpoint" / "stale.bin").exists()
    assert json.loads((out / "config.json").read_text())["config"]["steps"] == 3


def test_sigkill_then_resume_ends_with_the_weights_of_an_uninterrupted_run(cli, tmp_path):
    steps = "40"
    ref = cli(
        "toy",
        "train",
        "--steps",
        steps,
        "--seed",
        "3",
        "--out",
        "ref",
        "--dump-weights",
        str(tmp_path / "ref.st"),
    )
    assert ref.code == 0, ref.stderr

    proc = cli.popen(
        "toy", "train", "--steps", steps, "--seed", "3", "--out", "cut", "--step-delay", "0.05"
    )
    metrics = cli.cwd / "cut" / "metrics.jsonl"
    deadline = time.time() + 90
    while True:  # kill it mid-way: past a checkpoint, between two others
        assert time.time() < deadline, "training never got going"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 17:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(metrics.read_text().splitlines())
    assert 15 <= done < 40
    meta = json.loads((cli.cwd / "cut" / "checkpoint" / "meta.json").read_text())
    assert meta["step"] < done  # the run had moved past its last checkpoint

    res = cli("toy", "train", "--resume", "cut", "--dump-weights", str(tmp_path / "cut.st"))
    assert res.code == 0, res.stderr
    assert f"resumed from step {meta['step']}" in res.stderr
    a, b = _weights(tmp_path / "ref.st"), _weights(tmp_path / "cut.st")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    steps_logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps_logged == list(range(1, 41))  # no step logged twice after the resume


def test_resume_of_a_folder_without_checkpoint_is_a_data_error(cli):
    (cli.cwd / "empty").mkdir()
    r = cli("toy", "train", "--resume", "empty")
    assert r.code == 5 and "not an mltk run folder" in r.stderr


def test_torchrun_two_processes_end_with_identical_weights(cli, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which(
        "torchrun"
    )
    if torchrun is None:
        pytest.skip("torchrun is not installed")
    proc = cli.popen(
        "toy",
        "train",
        "--steps",
        "8",
        "--out",
        "ddp",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--dump-weights",
        str(tmp_path / "w{rank}.st"),
        "--json",
        prefix=[
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "mltk",
        ],
    )
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    result = json.loads(out)  # one JSON object: only rank 0 printed
    assert result["world_size"] == 2
    w0, w1 = _weights(tmp_path / "w0.st"), _weights(tmp_path / "w1.st")
    for k in w0:
        assert (w0[k] == w1[k]).all(), k
    # only rank 0 wrote the run folder: one line per step, not two
    lines = (cli.cwd / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 8


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_torchrun_nodes_end_with_identical_weights_and_one_run_folder(cli, tmp_path):
    """Two launchers as two "nodes" on localhost (c10d rendezvous, one process each, gloo):
    the weights agree on every rank and only global rank 0 writes the shared run folder."""
    port = _free_port()
    procs = []
    for node in (0, 1):
        prefix = [
            sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank",
            str(node), "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
            f"127.0.0.1:{port}", "--rdzv-id", "mltk-test", "-m", "mltk",
        ]  # fmt: skip
        procs.append(
            cli.popen(
                "toy",
                "train",
                "--steps",
                "8",
                "--out",
                "nodes",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--dump-weights",
                str(tmp_path / "w{rank}.st"),
                "--json",
                prefix=prefix,
            )  # fmt: skip
        )
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    results = [json.loads(out) for out, _ in outs if out.strip()]
    assert len(results) == 1 and results[0]["world_size"] == 2  # one launcher printed
    w0, w1 = _weights(tmp_path / "w0.st"), _weights(tmp_path / "w1.st")
    for k in w0:
        assert (w0[k] == w1[k]).all(), k
    lines = (cli.cwd / "nodes" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 8
