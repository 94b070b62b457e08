"""Image-text sets: world chunks that keep arriving, digits captioned from templates."""

from __future__ import annotations

import numpy as np

from mltk.vl.datasets import DIGIT_HELD_OUT, DIGIT_NAMES, DIGIT_TEMPLATES, digits_sets, world_stream


def test_world_chunks_are_new_data_with_captions_and_labels():
    chunks = list(world_stream(20, 3, seed=1))
    assert [c.name for c in chunks] == ["world-chunk0", "world-chunk1", "world-chunk2"]
    assert not np.array_equal(chunks[0].images, chunks[1].images)
    c = chunks[0]
    assert c.images.shape == (20, 32, 32, 3) and len(c.captions) == 20 and len(c.captions[0]) == 4
    assert c.labels.min() >= 0 and c.labels.max() < 12
    again = next(world_stream(20, 1, seed=1))
    assert np.array_equal(again.images, c.images)  # reproducible from the seed


def test_digits_test_captions_use_only_held_out_templates():
    train, test = digits_sets(size=16)
    assert len(train) + len(test) == 1797 and train.images.shape[1:] == (16, 16, 3)
    held = {t.format(n) for t in DIGIT_HELD_OUT for n in DIGIT_NAMES}
    seen = {t.format(n) for t in DIGIT_TEMPLATES for n in DIGIT_NAMES}
    assert all(c in held for caps in test.captions for c in caps)
    assert all(c in seen for caps in train.captions for c in caps) and not held & seen
    i = 5
    assert all(DIGIT_NAMES[test.labels[i]] in c for c in test.captions[i])
    # every class in both splits, in about the same shares (stratified)
    assert set(np.unique(test.labels)) == set(range(10))
