"""Evaluation: alignment scoring against known scenes, the Fréchet distance, the CLIP score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mltk.data import world as W
from mltk.errors import DataError
from mltk.t2i.evaluation import (
    clip_score,
    frechet_distance,
    load_classifier,
    predict_attributes,
    score_alignment,
)


def test_shipped_classifier_reads_real_world_images():
    world = W.make_world(200, seed=31337, low_quality_fraction=0.0)
    pred, feats = predict_attributes(load_classifier(), world.images)
    scores = score_alignment(pred, world.scenes)
    assert feats.shape == (200, 128)
    assert scores["colour"] > 0.95 and scores["count"] > 0.95
    assert scores["all"] > 0.8


def test_alignment_scores_penalise_the_wrong_attribute_only():
    scene = W.Scene("single", "red", "circle", "small", cell=0)
    lab = scene.labels()
    right = {k: np.array([v]) for k, v in lab.items()}
    assert score_alignment(right, [scene]) == {
        "colour": 1.0,
        "shape": 1.0,
        "position": 1.0,
        "count": 1.0,
        "all": 1.0,
    }
    wrong_colour = dict(right, colour1=np.array([(lab["colour1"] + 1) % 4]))
    s = score_alignment(wrong_colour, [scene])
    assert s["colour"] == 0.0 and s["shape"] == 1.0 and s["position"] == 1.0 and s["all"] == 0.0


def test_pair_position_requires_the_named_object_first():
    scene = W.Scene("pair", "red", "circle", "small", "blue", "square", "small", axis="vertical")
    lab = scene.labels()
    swapped = {k: np.array([v]) for k, v in lab.items()}
    swapped["colour1"], swapped["colour2"] = np.array([lab["colour2"]]), np.array([lab["colour1"]])
    swapped["shape1"], swapped["shape2"] = np.array([lab["shape2"]]), np.array([lab["shape1"]])
    s = score_alignment(
        swapped, [scene]
    )  # blue square above red circle: right objects, wrong place
    assert s["colour"] == 1.0 and s["shape"] == 1.0 and s["position"] == 0.0


def test_frechet_distance_matches_the_matrix_square_root_formula():
    linalg = pytest.importorskip("scipy.linalg")  # the general matrix square root, as a reference

    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) * 0.5 + 1.0
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(
        s1 + s2 - 2 * np.real(linalg.sqrtm(s1 @ s2))
    )
    assert np.isclose(frechet_distance(a, b), ref, rtol=1e-6)
    assert abs(frechet_distance(a, a)) < 1e-8


def test_clip_score_from_a_local_folder(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    from mltk.vl.tokenizers import train_tokenizer

    tok = train_tokenizer(W.corpus())
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, eos_token_id=1, pad_token_id=0),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(tmp_path / "clip", safe_serialization=True)
    tok.save_pretrained(tmp_path / "clip")
    world = W.make_world(4, seed=2)
    prompts = [W.eval_caption(s) for s in world.scenes]
    score = clip_score(world.images, prompts, tmp_path / "clip")
    assert 0.0 <= score <= 100.0
    assert score != clip_score(world.images[::-1].copy(), prompts, tmp_path / "clip")
    with pytest.raises(DataError, match="not a CLIP model folder"):
        clip_score(world.images, prompts, tmp_path)
