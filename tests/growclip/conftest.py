"""One thread, only the growclip plugin, a private cache; a tiny CLIP model and batch."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("MLTK_LOAD_PLUGINS", "growclip")
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MLTK_DEBUG", raising=False)


@pytest.fixture(scope="session")
def tokenizer():
    from mltk.data import world as W
    from mltk.vl.tokenizers import train_tokenizer

    return train_tokenizer(W.corpus(), "clip")


@pytest.fixture
def tiny(tokenizer):
    """A random tiny CLIPModel whose zeroed parts are not zero (a trained model's are not)."""
    from transformers import CLIPModel

    from mltk.vl.towers import clip_config

    torch.manual_seed(0)
    model = CLIPModel(
        clip_config(tokenizer, width=32, layers=2, heads=2, projection=32, max_positions=16)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


@pytest.fixture
def batch(tokenizer):
    g = torch.Generator().manual_seed(1)
    captions = [
        "a red circle in the top",
        "two blue squares in a row",
        "a large green triangle above a small red circle",
        "a yellow square",
    ]
    t = tokenizer(captions, padding="max_length", max_length=16, return_tensors="pt")
    return {
        "pixel_values": torch.randn(4, 3, 32, 32, generator=g),
        "input_ids": t["input_ids"],
        "attention_mask": t["attention_mask"],
    }
