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
