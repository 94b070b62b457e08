"""One thread, only the teach plugin, a private cache; a toy problem built by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("MLTK_LOAD_PLUGINS", "teach")
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLTK_DEBUG", raising=False)


def npdf(x, mu):
    """The N(mu, 1) density, written out independently of the plugin's expressions."""
    return np.exp(-((x - mu) ** 2) / 2) / np.sqrt(2 * np.pi)


def toy():
    """The paper's 1-D problem: pool, target and start."""
    x = np.arange(-14, 14, 0.1)
    return x, npdf(x, -2) / 3 + 2 * npdf(x, 2) / 3, npdf(x, -10)
