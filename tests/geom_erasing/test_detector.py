"""The shipped detector's per-cell F1 on held-out injected images, the drawn concepts, and
OpenCV's QR detector on codes it can and cannot read."""

from __future__ import annotations

import numpy as np
import pytest
from mltk_plugins.geom_erasing import detector as D
from mltk_plugins.geom_erasing.concepts import CONCEPTS, contaminate, inject
from mltk_plugins.geom_erasing.locations import cells_of_box


def test_concepts_are_drawn_inside_their_boxes():
    rng = np.random.default_rng(0)
    blank = np.zeros((32, 32, 3), np.uint8)
    for concept, size in (("qr", (13, 13)), ("watermark", (14, 5))):
        img, (x0, y0, x1, y1) = inject(blank, concept, rng)
        assert (x1 - x0, y1 - y0) == size
        ink = np.argwhere(img.max(-1) > 0)
        assert ink[:, 0].min() >= y0 and ink[:, 0].max() < y1
        assert ink[:, 1].min() >= x0 and ink[:, 1].max() < x1
        assert img[y0:y1, x0:x1].max() > 0
    # a watermark is faint white: 0.3-0.5 of 255 on black
    assert 70 <= img.max() <= 130
    images = np.zeros((400, 32, 32, 3), np.uint8)
    out, boxes = contaminate(images, ["qr", "text"], 0.5, seed=1)
    has = np.array([bool(b) for b in boxes])
    assert 0.4 < has.mean() < 0.6
    assert np.all(out[~has] == 0) and all(out[i].max() > 0 for i in np.flatnonzero(has))
    assert {b[0]["concept"] for b in boxes if b} == {"qr", "text"}


def test_the_shipped_detector_finds_cells_with_f1_of_at_least_095():
    images, boxes = D.training_images(600, seed=424242)  # a seed training never used
    model = D.load_detector(0)
    scores = D.cell_scores(D.heatmaps(model, images), 4) > D.THRESHOLD
    truth = np.zeros_like(scores)
    for i, found in enumerate(boxes):
        for f in found:
            truth[i, CONCEPTS.index(f["concept"]), cells_of_box(f["box"], 32, 32, 4)] = True
    for ci, concept in enumerate(CONCEPTS):
        p, t = scores[:, ci], truth[:, ci]
        f1 = 2 * (p & t).sum() / (p.sum() + t.sum())
        assert f1 >= 0.95, (concept, f1)
    # boxes from the maps: the QR codes' boxes are found almost exactly
    found = D.boxes_from_maps(D.heatmaps(model, images[:100]))
    errors = [
        min(np.abs(np.subtract(f["box"], g["box"])).max() for f in fs if f["concept"] == "qr")
        for fs, gs in zip(found, boxes[:100])
        for g in gs
        if g["concept"] == "qr"
    ]
    assert len(errors) >= 20
    assert np.median(errors) <= 1 and np.mean(errors) <= 1.5


def test_the_shipped_detector_rarely_fires_on_images_of_the_tiny_model():
    """The tiny model never saw a concept: the detector must stay quiet on what it generates
    (trained on world images alone, it fired on 28% of them for text)."""
    import torch

    from mltk.t2i import TINY_MODEL
    from mltk.t2i.evaluation import eval_scenes
    from mltk.t2i.pipeline_io import load_pipeline
    from mltk.t2i.sampling import generate

    _, prompts, _ = eval_scenes(64)
    bundle = load_pipeline(TINY_MODEL, device="cpu", dtype=torch.float32)
    images = generate(bundle, prompts, seeds=list(range(64)), batch_size=64)
    found = D.boxes_from_maps(D.heatmaps(D.load_detector(0), images))
    for concept in CONCEPTS:
        rate = np.mean([any(f["concept"] == concept for f in fs) for fs in found])
        assert rate <= 0.05, (concept, rate)


def test_cell_scores_take_each_cells_maximum():
    maps = np.zeros((1, len(CONCEPTS), 32, 32), np.float32)
    maps[0, 1, 9, 17] = 0.9  # row 1, column 2 of a 4 x 4 grid
    cells = D.cell_scores(maps, 4)
    assert cells.shape == (1, len(CONCEPTS), 16)
    assert cells[0, 1, 6] == pytest.approx(0.9) and cells[0, 1].sum() == pytest.approx(0.9)
    assert D.cell_scores(maps, 1)[0, 1, 0] == pytest.approx(0.9)


def test_opencv_reads_version_1_codes_but_not_micro_qr():
    import segno

    def render(qr, scale):
        m = np.array([list(r) for r in qr.matrix], np.uint8)
        m = np.pad(1 - m, 4, constant_values=1) * 255
        m = np.kron(m, np.ones((scale, scale), np.uint8))
        return np.repeat(m[..., None], 3, -1)

    image = render(segno.make_qr("12345", version=1), 2)
    found = D.opencv_qr(image)
    assert len(found) == 1
    x0, y0, x1, y1 = found[0]["box"]
    assert abs(x0 - 8) <= 2 and abs(y0 - 8) <= 2 and abs(x1 - 50) <= 3 and abs(y1 - 50) <= 3
    assert D.opencv_qr(render(segno.make_micro("12345", version="M1"), 2)) == []
    assert D.opencv_qr(np.zeros((64, 64, 3), np.uint8)) == []


def test_a_users_detector_function(tmp_path, monkeypatch):
    (tmp_path / "mydet.py").write_text(
        "def find(image):\n    return [[1, 2, 5, 6]] if image.max() > 0 else []\n"
        "def bad(image):\n    raise ValueError('no')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    images = np.zeros((2, 8, 8, 3), np.uint8)
    images[0, 0, 0] = 9
    found = D.detect(images, "mydet:find", concept="logo")
    assert found == [[{"concept": "logo", "box": [1, 2, 5, 6]}], []]
    from mltk.errors import DataError, UsageError

    with pytest.raises(DataError, match="failed on image 0"):
        D.detect(images, "mydet:bad")
    with pytest.raises(UsageError, match="cannot import"):
        D.detect(images, "mydet:missing")
    with pytest.raises(UsageError, match="module:function"):
        D.detect(images, "nothing")
