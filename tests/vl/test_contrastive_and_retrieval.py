"""InfoNCE against a hand computation; recall@k and zero-shot accuracy on hand-made matrices."""

from __future__ import annotations

import math

import numpy as np
import torch

from mltk.vl.contrastive import info_nce
from mltk.vl.retrieval import class_embeddings, recall_at_k, zero_shot_accuracy


def test_info_nce_is_the_mean_of_both_cross_entropies_by_hand():
    img = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    txt = torch.tensor([[2.0, 0.1], [0.0, 1.0], [-1.0, 1.0]])
    scale = 2.0
    a = [[c / math.hypot(*v) for c in v] for v in img.tolist()]
    b = [[c / math.hypot(*v) for c in v] for v in txt.tolist()]
    logits = [[scale * (x[0] * y[0] + x[1] * y[1]) for y in b] for x in a]

    def ce(row, k):
        return -(row[k] - math.log(sum(math.exp(v) for v in row)))

    i2t = sum(ce(logits[i], i) for i in range(3)) / 3
    t2i = sum(ce([logits[i][j] for i in range(3)], j) for j in range(3)) / 3
    got = info_nce(img, txt, log_scale=math.log(scale)).item()
    assert math.isclose(got, (i2t + t2i) / 2, rel_tol=1e-6)
    # soft targets equal to the identity give the same loss; uniform ones a different one
    eye = info_nce(img, txt, math.log(scale), soft_targets=torch.eye(3)).item()
    assert math.isclose(eye, got, rel_tol=1e-6)
    uniform = torch.full((3, 3), 1 / 3)
    by_hand = -sum(sum(math.log(math.exp(logits[i][j]) / sum(math.exp(v) for v in logits[i]))
                       for j in range(3)) / 3 for i in range(3)) / 3  # fmt: skip
    by_hand_t = -sum(sum(math.log(math.exp(logits[i][j]) / sum(math.exp(logits[k][j]) for k in range(3)))
                         for i in range(3)) / 3 for j in range(3)) / 3  # fmt: skip
    soft = info_nce(img, txt, math.log(scale), soft_targets=uniform).item()
    assert math.isclose(soft, (by_hand + by_hand_t) / 2, rel_tol=1e-6)


def test_the_logit_scale_is_clamped_at_100():
    img, txt = torch.eye(2), torch.eye(2)
    assert torch.isclose(
        info_nce(img, txt, log_scale=10.0), info_nce(img, txt, log_scale=math.log(100))
    )


def test_recall_at_k_both_ways_on_a_hand_made_matrix():
    # 3 images; texts 0,1 describe image 0, text 2 image 1, text 3 image 2
    sim = np.array([
        [0.1, 0.9, 0.2, 0.0],   # image 0: best text 1 (its own)
        [0.8, 0.1, 0.3, 0.2],   # image 1: best text 0 (wrong), its text 2 is 2nd
        [0.0, 0.2, 0.1, 0.5],   # image 2: best text 3 (its own)
    ])  # fmt: skip
    r = recall_at_k(sim, np.array([0, 0, 1, 2]), ks=(1, 2))
    assert r["i2t_r@1"] == 2 / 3 and r["i2t_r@2"] == 1.0
    # text 0: best image 1 (wrong), image 0 second; text 1: image 0; text 2: image 1; text 3: image 2
    assert r["t2i_r@1"] == 3 / 4 and r["t2i_r@2"] == 1.0


def test_zero_shot_accuracy_uses_the_prompt_ensemble():
    # class 0's two prompts point along x and y: their mean points along the diagonal
    prompts = np.array([[[1.0, 0.0], [0.0, 1.0]], [[-1.0, 0.2], [-1.0, -0.2]]])
    np.testing.assert_allclose(class_embeddings(prompts)[0], [2**-0.5, 2**-0.5])
    images = np.array([[1.0, 1.0], [-2.0, 0.0], [0.1, 3.0], [-1.0, -0.9]])
    assert zero_shot_accuracy(images, prompts, np.array([0, 1, 0, 1])) == 1.0
    assert zero_shot_accuracy(images, prompts, np.array([1, 1, 0, 1])) == 0.75
