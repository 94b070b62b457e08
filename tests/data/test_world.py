"""The procedural world: captions say what is drawn, short captions say less, scenes round-trip."""

from __future__ import annotations

import numpy as np

from mltk.data import world as W


def test_dense_captions_name_relation_and_short_ones_do_not():
    w = W.make_world(200, seed=3)
    for scene, short, dense in zip(w.scenes, w.short, w.dense):
        assert len(dense) >= 2
        if scene.kind == "pair":
            assert all(
                any(r in d for r in ("above", "below", "left of", "right of")) for d in dense
            )
            assert not any(r in short for r in ("above", "below", "left", "right"))
        if scene.kind == "single":
            assert scene.size1 in dense[0] and scene.size1 not in short


def test_every_dense_caption_parses_back_to_its_scene():
    w = W.make_world(300, seed=4)
    for scene, dense in zip(w.scenes, w.dense):
        for caption in dense:
            assert W.parse_prompt(caption) == scene, caption


def test_labels_round_trip_through_from_labels():
    w = W.make_world(100, seed=5)
    for scene in w.scenes:
        assert W.Scene.from_labels(scene.labels()) == scene


def test_rendering_is_deterministic_and_draws_the_named_colour():
    a, b = W.make_world(20, seed=9), W.make_world(20, seed=9)
    assert np.array_equal(a.images, b.images)
    scene = W.Scene("single", "red", "square", "large", cell=4)
    img = W.render(scene, np.random.default_rng(0)).astype(int)
    centre = img[14:18, 14:18].reshape(-1, 3).mean(0)
    assert centre[0] > 200 and centre[1] < 80 and centre[2] < 80
    assert img[:3, :3].max() == 0  # the corner stays background


def test_low_quality_images_are_noisier():
    w = W.make_world(200, seed=1, low_quality_fraction=0.5)
    dark = (w.images.max(-1) < 30).mean(axis=(1, 2))
    specks = [(im.std(-1) > 40).mean() for im in w.images]
    assert np.mean([s for s, c in zip(specks, w.clean) if not c]) > np.mean(
        [s for s, c in zip(specks, w.clean) if c]
    )
    assert dark.mean() > 0.5


def test_the_options_change_nothing_when_off():
    """Pinned from the world before the options existed (64 scenes, seed 3): off, the same
    draws, images and captions."""
    import hashlib

    w = W.make_world(64, seed=3, kinds=W.KINDS, colour_given_shape=0.0)
    blob = w.images.tobytes() + repr(w.short).encode() + repr(w.dense).encode() + w.clean.tobytes()
    assert hashlib.sha256(blob).hexdigest() == (
        "d913168091fa0aac058a3a10122b0f922622270019ebe485dbe77d30f3b4f6bf"
    )


def test_kinds_keeps_only_those_scene_kinds():
    w = W.make_world(200, seed=0, kinds=("single", "count"))
    assert {s.kind for s in w.scenes} == {"single", "count"}
    assert {s.kind for s in W.make_world(50, seed=0, kinds=("pair",)).scenes} == {"pair"}


def test_colour_given_shape_makes_colour_predictable_from_shape():
    def agreement(world) -> float:
        objs = [(s.colour1, s.shape1) for s in world.scenes]
        return sum(c == W.PREFERRED[sh] for c, sh in objs) / len(objs)

    base = agreement(W.make_world(600, seed=1))
    assert 0.15 < base < 0.35  # 4 colours: about a quarter by chance
    assert agreement(W.make_world(600, seed=1, colour_given_shape=1.0)) == 1.0
    half = agreement(W.make_world(600, seed=1, colour_given_shape=0.5))
    assert 0.55 < half < 0.7  # 0.5 + 0.5 * 0.25
    for s in W.make_world(300, seed=2, colour_given_shape=1.0).scenes:  # still valid scenes
        assert W.parse_prompt(W.dense_captions(s)[0]) == s
