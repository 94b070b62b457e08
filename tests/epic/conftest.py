"""One thread, only the epic plugin, a private cache; a tiny random EPIC model."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("MLTK_LOAD_PLUGINS", "epic")
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MLTK_DEBUG", raising=False)


@pytest.fixture(scope="session")
def tokenizer():
    from mltk.data import world as W
    from mltk.vl.tokenizers import train_tokenizer

    return train_tokenizer(W.corpus(), "bert")


def make_model(tokenizer, queue=64, width=32, seed=0):
    from mltk_plugins.epic import model as M

    torch.manual_seed(seed)
    cfgs = M.configs(
        tokenizer,
        width=width,
        vision_layers=1,
        text_layers=1,
        fusion_layers=1,
        heads=2,
        patch=8,
        image_size=32,
        generator_fraction=0.5,
    )
    return M.EpicModel(*cfgs, embed_dim=16, queue=queue).eval()


@pytest.fixture
def tiny(tokenizer):
    return make_model(tokenizer)


CAPTIONS = [
    "a red circle in the top left",
    "two blue squares in a row",
    "a large green triangle above a small red circle",
    "a yellow square",
]


@pytest.fixture
def batch(tokenizer, tiny):
    from mltk_plugins.epic import training as T

    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 255, (4, 32, 32, 3), generator=g, dtype=torch.uint8).numpy()
    return {
        "pixel_values": tiny.pixels(images),
        **T.tokens(tokenizer, CAPTIONS, 30),
        "same_caption": T.same_captions(CAPTIONS),
    }
