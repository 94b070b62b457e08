"""The tiny model shipped in the package follows prompts (colour, count) without any training."""

from __future__ import annotations

import pytest

from mltk.t2i import TINY_MODEL as SHIPPED


@pytest.mark.skipif(not (SHIPPED / "model_index.json").is_file(), reason="no shipped tiny model")
def test_shipped_tiny_model_follows_prompts():
    from mltk.t2i.evaluation import eval_scenes, evaluate_images
    from mltk.t2i.pipeline_io import load_pipeline, quiet_libraries
    from mltk.t2i.sampling import generate

    quiet_libraries()
    scenes, prompts, real = eval_scenes(32, seed=4242)
    images = generate(load_pipeline(SHIPPED), prompts, seeds=list(range(32)), steps=10)
    scores = evaluate_images(images, scenes, real)
    # chance: colour 0.25 (singles) to 0.06 (pairs), count 1/3; the shipped model is far above
    assert scores["acc_colour"] > 0.4
    assert scores["acc_count"] > 0.7
