"""Data: caption selection and dropout, image folders with bad files, the feature caches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mltk_plugins.pixart.data import (
    FeatureStore,
    caption_table,
    choose_captions,
    folder_dataset,
    world_dataset,
)
from PIL import Image

from mltk.errors import DataError, UsageError


def test_caption_dropout_rate_matches_the_setting():
    n, p = 20000, 0.1
    short = np.arange(1, n + 1)
    dense = np.stack([short + n, short + 2 * n], 1)
    picked = choose_captions("dense", short, dense, np.random.default_rng(0), drop=p)
    rate = (picked == 0).mean()
    assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / n)  # within 4 standard errors
    assert (choose_captions("dense", short, dense, np.random.default_rng(0), drop=0.0) != 0).all()


def test_caption_modes_pick_short_dense_or_both():
    n = 4000
    short = np.arange(1, n + 1)
    dense = np.stack([short + n, short + 2 * n, np.full(n, -1)], 1)  # two dense captions, padded
    rng = np.random.default_rng(1)
    assert np.array_equal(choose_captions("short", short, dense, rng, 0.0), short)
    d = choose_captions("dense", short, dense, rng, 0.0)
    assert ((d == short + n) | (d == short + 2 * n)).all() and 0.4 < (d == short + n).mean() < 0.6
    m = choose_captions("mixed", short, dense, rng, 0.0)
    assert 0.45 < (m == short).mean() < 0.55
    with pytest.raises(UsageError, match="caption-mode"):
        choose_captions("long", short, dense, rng, 0.0)


def test_caption_table_puts_the_empty_caption_first_and_dedupes():
    data = world_dataset(60, seed=2)
    texts, short, dense = caption_table(data)
    assert texts[0] == "" and len(set(texts)) == len(texts)
    for i in range(60):
        assert texts[short[i]] == data.short[i]
        assert [texts[j] for j in dense[i] if j >= 0] == data.dense[i]


def test_image_folder_skips_and_counts_unreadable_files(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    for i, sub in enumerate(["cats", "cats", "dogs"]):
        Image.fromarray(np.full((40, 50, 3), 60 * i, np.uint8)).save(tmp_path / sub / f"im{i}.png")
    (tmp_path / "cats" / "im0.txt").write_text("a cat\na grey cat on a sofa\n")
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "dogs" / "empty.jpg").write_bytes(b"")
    warnings = []
    data = folder_dataset(tmp_path, 32, warn=warnings.append)
    assert len(data) == 3 and data.skipped == 2
    assert data.images.shape == (3, 32, 32, 3)
    assert data.short[0] == "a cat" and data.dense[0] == ["a grey cat on a sofa"]
    assert data.short[1] == "im1"  # no caption file: the file name
    assert list(data.classes) == [0, 0, 1]
    assert warnings and "skipped 2 unreadable" in warnings[0]


def test_image_folder_with_only_unreadable_files_is_a_data_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="none of the 1 images"):
        folder_dataset(tmp_path, 32)
    with pytest.raises(DataError, match="holds no images"):
        folder_dataset(_empty_dir(tmp_path), 32)
    with pytest.raises(DataError, match="does not exist"):
        folder_dataset(tmp_path / "missing", 32)


def _empty_dir(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_text_and_latent_features_are_built_once_then_hit(tmp_path):
    calls = {"text": 0, "latent": 0}

    def encode_text(texts):
        calls["text"] += 1
        return torch.ones(len(texts), 3, 2), torch.ones(len(texts), 3, dtype=torch.long)

    def encode_images(images):
        calls["latent"] += 1
        x = torch.from_numpy(images).float()
        return x, torch.zeros_like(x)

    data = world_dataset(40, seed=3)
    texts, _, _ = caption_table(data)
    store = FeatureStore()
    for _epoch in range(2):  # the training loop asks once per epoch
        store.text(texts, "enc-a", encode_text)
        store.latents(data, "identity", encode_images)
    assert calls == {"text": 1, "latent": 1}
    assert store.stats == {"text_hits": 1, "text_builds": 1, "latent_hits": 1, "latent_builds": 1}
    fresh = FeatureStore()  # a new run (new process) reads the cache from disk
    arrays = fresh.text(texts, "enc-a", encode_text)
    assert (
        calls["text"] == 1
        and fresh.stats["text_hits"] == 1
        and arrays["feats"].shape == (len(texts), 3, 2)
    )
    fresh.text(texts, "enc-b", encode_text)  # a different encoder is a different entry
    assert calls["text"] == 2
