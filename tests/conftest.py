"""Shared fixtures: a third-party-style install of the test-only plugin, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_dist(site: Path, name: str, entry_points: dict[str, str], version: str = "0.1.0") -> None:
    """Declare an installed distribution with entry points in group "mltk" (what pip would write)."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[mltk]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


class Cli:
    """Runs the mltk command line with the test plugin installed beside the built-ins.

    Calls run in this process (through `mltk.cli.run`, the function the console script calls)
    to keep the suite fast; `sub()` and `popen()` run `python -m mltk` in a real subprocess.
    """

    def __init__(self, site: Path, cache: Path, cwd: Path, monkeypatch=None, capsys=None) -> None:
        self.cwd = cwd
        self._mp = monkeypatch
        self._capsys = capsys
        self.env = dict(os.environ)
        paths = [str(site), str(FIXTURES), self.env.get("PYTHONPATH", "")]
        self.env.update(
            PYTHONPATH=os.pathsep.join(p for p in paths if p),
            MLTK_CACHE_DIR=str(cache),
            MLTK_LOAD_PLUGINS="toy",
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("MLTK_DEBUG", None)
        self.env.pop("MLTK_STRICT_PLUGINS", None)

    def __call__(self, *args: str, env: dict | None = None, timeout: float = 120) -> Result:
        if self._mp is None:
            return self.sub(*args, env=env, timeout=timeout)
        import importlib

        from mltk.cli import run

        full = {**self.env, **(env or {})}
        with self._mp.context() as mp:
            for key in ("MLTK_LOAD_PLUGINS", "MLTK_CACHE_DIR", "MLTK_DEBUG", "MLTK_STRICT_PLUGINS"):
                if key in full:
                    mp.setenv(key, full[key])
                else:
                    mp.delenv(key, raising=False)
            mp.syspath_prepend(str(FIXTURES))
            mp.syspath_prepend(full["PYTHONPATH"].split(os.pathsep)[0])
            mp.chdir(self.cwd)
            importlib.invalidate_caches()
            self._capsys.readouterr()
            code = run(list(args))
            captured = self._capsys.readouterr()
        return Result(int(code), captured.out, captured.err)

    def sub(self, *args: str, env: dict | None = None, timeout: float = 120) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "mltk", *args],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str, prefix: list[str] | None = None) -> subprocess.Popen:
        cmd = (prefix or [sys.executable, "-m", "mltk"]) + list(args)
        return subprocess.Popen(
            cmd,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    make_dist(site, "mltk_testplug", {"toy": "mltk_testplug.plugin"})
    return site


@pytest.fixture
def cli(tmp_path: Path, site: Path, monkeypatch, capsys) -> Cli:
    work = tmp_path / "work"
    work.mkdir()
    return Cli(site, tmp_path / "cache", work, monkeypatch, capsys)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """Small trained runs of tensor, timediff, aesam, teach, trace, geom-erasing, growclip, epic
    and antnet (pixart reads its shipped `tiny`), the arguments that keep each verb fast, and
    files of every bad kind, for tests across plugins."""
    import numpy as np

    from mltk.cli import run

    root = tmp_path_factory.mktemp("tiny-runs")
    saved = {k: os.environ.get(k) for k in ("MLTK_CACHE_DIR", "MLTK_LOAD_PLUGINS")}
    os.environ["MLTK_CACHE_DIR"] = str(root / "cache")
    os.environ.pop("MLTK_LOAD_PLUGINS", None)
    try:
        for suffix in (".csv", ".npy", ".npz", ".txt", ".png", ".toml", ".json"):
            (root / f"binary{suffix}").write_bytes(bytes(range(256)) * 8)
            (root / f"empty{suffix}").write_bytes(b"")
        (root / "folder").mkdir()
        (root / "empty-folder").mkdir()
        rows = ["date,a,b"] + [
            f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00:00,{np.sin(i / 4):.4f},{np.cos(i / 5):.4f}"
            for i in range(240)
        ]
        (root / "series.csv").write_text("\n".join(rows) + "\n")
        from sklearn.datasets import load_digits

        np.savez(root / "digits.npz", x=(load_digits().images[:4] / 16).astype(np.float32))
        (root / "micro.toml").write_text(
            "num_layers = 1\nnum_heads = 2\nhead_dim = 16\ntext_dim = 32\ntext_layers = 1\n"
            "text_heads = 2\ntext_ff = 64\ndataset_size = 32\nbatch_size = 8\nsteps = 1\n"
            "log_every = 1\nsave_every = 1\nwarmup = 0\n"
        )
        fast = {
            ("tensor", "complete"): ["--size", "12", "--path-steps", "2", "--stage-iters", "2",
                                     "--max-iter", "3"],
            ("timediff", "train"): ["--preset", "tiny", "--data", str(root / "series.csv"),
                                    "--lookback", "24", "--horizon", "12", "--epochs", "1"],
            ("aesam", "train"): ["--preset", "tiny", "--epochs", "1", "--limit-train", "64"],
            ("pixart", "train"): ["--config", str(root / "micro.toml")],
            ("teach", "train"): ["--max-iter", "50"],
            ("trace", "train"): ["--epochs", "1", "--length", "1"],
            ("geom-erasing", "erase"): ["--steps", "1", "--size", "16", "--batch-size", "8"],
        }  # fmt: skip
        fast[("tensor", "train")] = fast[("tensor", "complete")]
        fast[("timediff", "forecast")] = fast[("timediff", "train")]
        fast[("aesam", "compare")] = fast[("aesam", "train")] + ["--seeds", "1",
                                                                 "--optimizers", "erm"]  # fmt: skip
        fast[("teach", "run")] = ["--max-iter", "50", "--teacher", "gft"]
        fast[("trace", "rules")] = fast[("trace", "search")] = fast[("trace", "train")]
        (root / "queries.csv").write_text("entity,relation\nPerson59,Term15\n")
        fast[("trace", "predict")] = ["--queries", str(root / "queries.csv")]
        fast[("geom-erasing", "train")] = fast[("geom-erasing", "erase")]
        fast[("geom-erasing", "make-dataset")] = ["--size", "4"]
        fast[("geom-erasing", "generate")] = ["--steps", "2", "--num-images", "1"]
        fast[("geom-erasing", "eval")] = ["--prompts", "2", "--steps", "2"]
        fast[("growclip", "train")] = ["--first-chunk", "32", "--steps", "2", "--batch", "16",
                                       "--eval-size", "20"]  # fmt: skip
        fast[("growclip", "grow")] = fast[("growclip", "train")] + ["--proxy-steps", "1"]
        fast[("growclip", "eval")] = ["--eval-size", "20"]
        fast[("epic", "train")] = (
            "--pairs 64 --steps 2 --batch 16 --queue 32 --eval-size 16 --width 32 --heads 2 "
            "--vision-layers 1 --text-layers 1 --fusion-layers 1 --patch 8 --embed-dim 16"
        ).split()
        fast[("epic", "eval")] = ["--eval-size", "16"]
        fast[("antnet", "train")] = (
            "--preset tiny --train-size 200 --epochs 1 --hidden 16 --embed 16 --lstm 16"
        ).split()
        fast[("antnet", "answer")] = fast[("antnet", "train")]
        (root / "replies.jsonl").write_text(
            '{"question": "Tea or coffee?", "options": ["tea", "coffee"], "answer": "tea"}\n'
        )
        from PIL import Image

        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "black.png")
        (root / "pairs.jsonl").write_text('{"image": "black.png", "caption": "a red circle"}\n')
        runs = {"pixart": "tiny"}
        built = "tensor timediff aesam teach trace geom-erasing growclip epic antnet".split()
        for plugin in built:
            out = root / f"run-{plugin}"
            verb = "erase" if plugin == "geom-erasing" else "train"
            args = [plugin, verb, *fast[(plugin, verb)], "--out", str(out), "--quiet"]
            assert run(args) == 0, args
            runs[plugin] = str(out)
        fast[("timediff", "eval")] = ["--no-baselines"]
        fast[("aesam", "predict")] = ["--input", str(root / "digits.npz")]
        fast[("pixart", "eval")] = ["--prompts", "2", "--steps", "2"]
        fast[("pixart", "generate")] = ["--steps", "2"]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    positional = {("pixart", "generate"): ["a red circle"],
                  ("geom-erasing", "generate"): ["a red circle"],
                  ("geom-erasing", "detect"): [str(root / "black.png")],
                  ("growclip", "predict"): [str(root / "black.png")],
                  ("epic", "predict"): [str(root / "pairs.jsonl")],
                  ("epic", "check"): ["world:0", "a red circle"],
                  ("antnet", "predict"): [str(root / "replies.jsonl")]}  # fmt: skip
    return {"root": root, "fast": fast, "runs": runs, "positional": positional}
