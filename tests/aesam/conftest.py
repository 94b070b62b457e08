"""Only the aesam plugin, a private cache, no debug tracebacks."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("MLTK_LOAD_PLUGINS", "aesam")
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLTK_DEBUG", raising=False)
