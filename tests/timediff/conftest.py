"""Small synthetic series for the timediff tests (the embedded ETTh1 is used by the example)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def write_series(path: Path, rows: int = 480, channels: int = 2, seed: int = 0) -> Path:
    """An hourly CSV: daily sines with noise, one column per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    dates = np.datetime64("2020-01-01T00:00") + t.astype("timedelta64[h]")
    cols = [
        np.sin(2 * np.pi * t / 24 + c) + 0.1 * rng.standard_normal(rows) + c
        for c in range(channels)
    ]
    lines = ["date," + ",".join(f"ch{c}" for c in range(channels))]
    for i in range(rows):
        stamp = str(dates[i]).replace("T", " ")
        lines.append(stamp + "," + ",".join(f"{cols[c][i]:.5f}" for c in range(channels)))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def series_csv(tmp_path: Path) -> Path:
    return write_series(tmp_path / "sines.csv")
