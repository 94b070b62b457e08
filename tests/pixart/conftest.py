"""Shared fixtures for the pixart tests: one thread, a private cache, tiny configurations."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("MLTK_LOAD_PLUGINS", "pixart")
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "pixart-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MLTK_DEBUG", raising=False)


def micro(**changes):
    """The tiny-pixel preset (pixel space, no VAE) cut down to one layer for wiring tests."""
    from mltk_plugins.pixart.config import preset

    base = dict(
        num_layers=1,
        num_heads=2,
        head_dim=16,
        text_dim=32,
        text_layers=1,
        text_heads=2,
        text_ff=64,
        dataset_size=96,
        batch_size=16,
        steps=4,
        log_every=2,
        save_every=2,
        warmup=2,
    )
    base.update(changes)
    return preset(
        changes.pop("preset", "tiny-pixel"), **{k: v for k, v in base.items() if k != "preset"}
    )
