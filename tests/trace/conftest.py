"""One thread, only the trace plugin, a private cache."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("MLTK_LOAD_PLUGINS", "trace")
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLTK_DEBUG", raising=False)
