"""Data: caption selection and dropout, image folders with bad files, the feature caches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mltk.data.captioned import folder_dataset, nearest_bucket, world_dataset
from mltk.errors import DataError, UsageError
from mltk.t2i.buckets import aspect_buckets
from mltk.t2i.features import FeatureStore, caption_table, choose_captions


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


# ----------------------------------------------------------------------------- aspect-ratio buckets


@pytest.mark.parametrize("size", [256, 512, 1024])
def test_aspect_buckets_are_diffusers_pixart_tables_at_their_sizes(size):
    from diffusers.pipelines.pixart_alpha import pipeline_pixart_alpha as P

    from mltk.t2i.buckets import bucket_multiple

    table = getattr(P, f"ASPECT_RATIO_{size}_BIN")
    ours = aspect_buckets(size, bucket_multiple(size, 16))  # patch 2 x SD VAE 8
    assert sorted(ours.values()) == sorted((int(h), int(w)) for h, w in table.values())


def test_aspect_buckets_at_toy_size_are_valid_resolutions():
    from mltk.t2i.buckets import bucket_multiple
    from mltk.t2i.sampling import check_resolution

    buckets = aspect_buckets(32, bucket_multiple(32, 4))
    assert (32, 32) in buckets.values()
    assert min(buckets) == pytest.approx(0.25) and max(buckets) == pytest.approx(4.0)
    for ratio, (h, w) in buckets.items():
        check_resolution(h, w, 4, 1)
        assert ratio == h / w and 0.8 < h * w / 32**2 < 1.2  # snapped to 4 px
    assert nearest_bucket(300, 600, buckets) == (24, 48)  # ratio 0.5 exactly
    assert nearest_bucket(500, 500, buckets) == (32, 32)


def test_bucketed_folder_groups_images_by_aspect_ratio_and_crops_to_the_centre(tmp_path):
    from mltk.data.captioned import BucketedImages

    wide = np.zeros((30, 60, 3), np.uint8)  # ratio 0.5: left half red, right half blue
    wide[:, :30, 0] = 255
    wide[:, 30:, 2] = 255
    Image.fromarray(wide).save(tmp_path / "wide.png")
    tall = np.zeros((90, 30, 3), np.uint8)  # ratio 3, a bucket of its own; a green middle band
    tall[40:50, :, 1] = 255
    Image.fromarray(tall).save(tmp_path / "tall.png")
    for i in range(3):
        Image.fromarray(np.full((50, 52, 3), 40 * i, np.uint8)).save(tmp_path / f"sq{i}.png")
    (tmp_path / "bad.jpg").write_bytes(b"junk")
    buckets = aspect_buckets(32, 4)
    data = folder_dataset(tmp_path, 32, buckets=buckets)
    assert isinstance(data, BucketedImages) and len(data) == 5 and data.skipped == 1
    sizes = dict(zip(data.sizes, data.groups))
    assert set(sizes) == {(24, 48), (32, 32), (56, 20)}
    assert len(sizes[(32, 32)]) == 3
    w = sizes[(24, 48)].images[0]
    assert (w[:, :20, 0] > 200).all() and (w[:, -20:, 2] > 200).all() and (w[:, :20, 2] < 50).all()
    t = sizes[(56, 20)].images[0]  # 90x30 covers 56x20 at 60x20, 2 rows cropped each side
    assert t.shape == (56, 20, 3) and t[28, 10, 1] > 200 and t[5, 10, 1] < 50
    assert data.subset(np.array([True, False, False, False, True])).sizes == [(24, 48), (56, 20)]
    texts, short, _ = caption_table(data)
    assert [texts[i] for i in short] == [t for g in data.groups for t in g.short]


def test_epoch_batches_never_mix_buckets_and_match_the_plain_shuffle_with_one():
    from mltk.t2i.features import epoch_batches

    offsets = np.array([0, 10, 13, 40])  # buckets of 10, 3 and 27 images, batch 4
    batches = epoch_batches(offsets, 4, np.random.default_rng(0))
    group = lambda i: int(np.searchsorted(offsets, i, side="right") - 1)  # noqa: E731
    assert all(len({group(i) for i in b}) == 1 for b in batches)
    assert sorted(len(b) for b in batches) == [3] + [4] * (2 + 6)  # full batches + short bucket
    assert len({int(i) for b in batches for i in b}) == sum(len(b) for b in batches)
    assert len(epoch_batches(offsets, 4, np.random.default_rng(0), min_size=4)) == 8
    one = epoch_batches(np.array([0, 10]), 4, np.random.default_rng(3))
    perm = np.random.default_rng(3).permutation(10)
    assert [list(b) for b in one] == [list(perm[:4]), list(perm[4:8])]
    with pytest.raises(DataError, match="no bucket"):
        epoch_batches(np.array([0, 1, 2]), 4, np.random.default_rng(0), min_size=2)
