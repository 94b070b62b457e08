"""An autouse fixture for test folders of the core's libraries: one thread, a private cache."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def private_env(monkeypatch, tmp_path):
    torch.set_num_threads(1)
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MLTK_DEBUG", raising=False)
