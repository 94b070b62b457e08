"""Shared fixtures for the geom-erasing tests: one thread, a private cache."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("MLTK_LOAD_PLUGINS", "geom-erasing")
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "ge-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MLTK_DEBUG", raising=False)
