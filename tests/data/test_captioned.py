"""Captioned image sets: JSONL files of images and captions beside image folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mltk.data.captioned import captioned_dataset, jsonl_dataset
from mltk.errors import DataError


def _images(folder, n, rng):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_jsonl_lists_images_with_one_or_several_captions(tmp_path):
    _images(tmp_path / "img", 3, np.random.default_rng(0))
    (tmp_path / "img" / "broken.png").write_bytes(b"\x89PNG not really")
    rows = [
        {"image": "img/0.png", "caption": "a red circle"},
        {"image": "img/1.png", "caption": ["two squares", "two blue squares side by side"]},
        {"image": "img/2.png", "caption": "a triangle"},
        {"image": "img/broken.png", "caption": "unreadable"},
    ]
    (tmp_path / "set.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    warnings = []
    data = captioned_dataset(tmp_path / "set.jsonl", 32, warn=warnings.append)
    assert len(data) == 3 and data.images.shape == (3, 32, 32, 3) and data.skipped == 1
    assert data.short == ["a red circle", "two squares", "a triangle"]
    assert data.dense[1] == ["two blue squares side by side"] and data.dense[0] == ["a red circle"]
    assert len(warnings) == 1 and "skipped 1 unreadable" in warnings[0]


def test_a_bad_jsonl_line_or_an_empty_caption_is_a_data_error(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"image": "x.png"}\n')
    with pytest.raises(
        DataError, match=r'a.jsonl:1 is not a JSON object with "image" and "caption"'
    ):
        jsonl_dataset(tmp_path / "a.jsonl", 32)
    (tmp_path / "b.jsonl").write_text('{"image": "x.png", "caption": "  "}\n')
    with pytest.raises(DataError, match="the caption of x.png is empty"):
        jsonl_dataset(tmp_path / "b.jsonl", 32)
    (tmp_path / "c.jsonl").write_text("\n")
    with pytest.raises(DataError, match="lists no images"):
        jsonl_dataset(tmp_path / "c.jsonl", 32)
