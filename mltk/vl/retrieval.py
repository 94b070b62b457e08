"""Retrieval recall@k both ways, and zero-shot classification with prompt ensembles.

``sim`` is an (images x texts) similarity matrix; ``text_image[j]`` the image text j describes
(several texts may describe one image, as in COCO's five captions). Image-to-text recall@k:
the share of images with at least one of their texts among their k most similar; text-to-image:
the share of texts whose image is among their k most similar. Zero-shot accuracy: each class's
text embedding is the mean of its prompts' normalised embeddings (CLIP's prompt ensemble),
normalised again; an image takes the class of highest cosine similarity.
"""

from __future__ import annotations

import numpy as np


def recall_at_k(sim: np.ndarray, text_image: np.ndarray, ks=(1, 5, 10)) -> dict[str, float]:
    sim = np.asarray(sim, dtype=np.float64)
    text_image = np.asarray(text_image)
    n_img, n_txt = sim.shape
    if text_image.shape != (n_txt,):
        raise ValueError(f"text_image must name an image for each of the {n_txt} texts")
    out = {}
    order_i2t = np.argsort(-sim, axis=1, kind="stable")  # texts by similarity, per image
    order_t2i = np.argsort(-sim.T, axis=1, kind="stable")  # images by similarity, per text
    for k in ks:
        hit_i = [
            np.isin(order_i2t[i, :k], np.flatnonzero(text_image == i)).any() for i in range(n_img)
        ]
        hit_t = [text_image[j] in order_t2i[j, :k] for j in range(n_txt)]
        out[f"i2t_r@{k}"] = float(np.mean(hit_i))
        out[f"t2i_r@{k}"] = float(np.mean(hit_t))
    return out


def class_embeddings(prompt_embeddings: np.ndarray) -> np.ndarray:
    """(C, P, D) embeddings of P prompts per class -> (C, D) ensembled, unit norm."""
    e = np.asarray(prompt_embeddings, dtype=np.float64)
    e = e / np.linalg.norm(e, axis=-1, keepdims=True)
    mean = e.mean(axis=1)
    return mean / np.linalg.norm(mean, axis=-1, keepdims=True)


def zero_shot_accuracy(image_embeddings: np.ndarray, prompt_embeddings: np.ndarray,
                       labels: np.ndarray) -> float:  # fmt: skip
    img = np.asarray(image_embeddings, dtype=np.float64)
    img = img / np.linalg.norm(img, axis=-1, keepdims=True)
    pred = (img @ class_embeddings(prompt_embeddings).T).argmax(1)
    return float(np.mean(pred == np.asarray(labels)))
