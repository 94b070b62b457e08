"""Evaluation: prompt alignment, Fréchet distance, CLIP score.

- Alignment in the spirit of T2I-CompBench on the procedural world: a small CNN trained on real
  world images predicts colour, shape, grid cell, stacking axis and object count; a generated
  image is scored against the scene its prompt describes, per attribute (colour, shape,
  position, count) and for the whole prompt.
- Fréchet distance (the FID formula) between real and generated images in that classifier's
  128-d penultimate feature space.
- CLIP score (100 x cosine of image and text embeddings, floored at 0) for real checkpoints,
  from a CLIP folder the user has (``transformers`` CLIPModel layout); nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mltk.data import world as W
from mltk.errors import DataError

HEADS = {
    "kind": 3,
    "count": 3,
    "colour1": 4,
    "shape1": 3,
    "colour2": 4,
    "shape2": 3,
    "cell": 9,
    "axis": 2,
}
CLASSIFIER_VERSION = 1


class AttributeClassifier(nn.Module):
    def __init__(self, feature_dim: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 16, 16)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 8, 8)
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 4, 4)
            nn.Flatten(), nn.Linear(64 * 16, feature_dim), nn.ReLU(),
        )  # fmt: skip
        self.heads = nn.ModuleDict({k: nn.Linear(feature_dim, n) for k, n in HEADS.items()})

    def features(self, images_uint8: np.ndarray) -> torch.Tensor:
        x = (
            torch.from_numpy(np.ascontiguousarray(images_uint8)).permute(0, 3, 1, 2).float() / 127.5
            - 1
        )
        return self.body(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.body(x)
        return {k: h(f) for k, h in self.heads.items()}


def _train_classifier(seed: int = 0, n: int = 6000, epochs: int = 6) -> AttributeClassifier:
    world = W.make_world(n, seed=10_000 + seed, low_quality_fraction=0.3)
    labels = {k: torch.from_numpy(v) for k, v in world.label_arrays().items()}
    x = torch.from_numpy(world.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AttributeClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, 128):
            b = perm[i : i + 128]
            xb = x[b]
            xb = xb + 0.05 * torch.randn(xb.shape, generator=g)  # robustness to sampler noise
            logits = model(xb)
            loss = sum(
                nn.functional.cross_entropy(logits[k], labels[k][b], ignore_index=-1) for k in HEADS
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


SHIPPED_CLASSIFIER = Path(__file__).parent / "weights" / "classifier.safetensors"


def save_shipped_classifier(model: AttributeClassifier, path: Path = SHIPPED_CLASSIFIER) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"world_version": str(W.WORLD_VERSION), "classifier_version": str(CLASSIFIER_VERSION)}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)


def _shipped_classifier() -> AttributeClassifier | None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not SHIPPED_CLASSIFIER.is_file():
        return None
    with safe_open(str(SHIPPED_CLASSIFIER), "pt") as fh:
        meta = fh.metadata() or {}
    if meta.get("world_version") != str(W.WORLD_VERSION) or meta.get("classifier_version") != str(
        CLASSIFIER_VERSION
    ):
        return None  # stale: the world changed since these weights were trained
    model = AttributeClassifier()
    model.load_state_dict(load_file(str(SHIPPED_CLASSIFIER)))
    return model.eval()


def load_classifier(seed: int = 0) -> AttributeClassifier:
    """The attribute classifier: the shipped weights, else trained once (about a minute on a
    CPU) and kept in the dataset cache."""
    from mltk.cache import cached_arrays

    if seed == 0 and (shipped := _shipped_classifier()) is not None:
        return shipped

    def build():
        m = _train_classifier(seed)
        return {k: v.detach().numpy() for k, v in m.state_dict().items()}

    arrays = cached_arrays(
        "pixart-classifier",
        {"seed": seed, "world": W.WORLD_VERSION},
        build,
        version=CLASSIFIER_VERSION,
    )
    model = AttributeClassifier()
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    return model.eval()


@torch.no_grad()
def predict_attributes(
    clf: AttributeClassifier, images: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    preds, feats = {k: [] for k in HEADS}, []
    for i in range(0, len(images), 256):
        f = clf.features(images[i : i + 256])
        feats.append(f.numpy())
        for k, h in clf.heads.items():
            preds[k].append(h(f).argmax(1).numpy())
    return {k: np.concatenate(v) for k, v in preds.items()}, np.concatenate(feats)


def score_alignment(pred: dict[str, np.ndarray], scenes: list[W.Scene]) -> dict[str, float]:
    """Per-attribute accuracy of generated images against the scenes their prompts describe.

    colour / shape: every object's (pairs: as an unordered pair); position: the grid cell of a
    single object, or the stacking axis and which object comes first for a pair; count: the
    number of objects; all: every applicable attribute right.
    """
    ok = {"colour": [], "shape": [], "position": [], "count": [], "all": []}
    for i, s in enumerate(scenes):
        lab = s.labels()
        p = {k: int(v[i]) for k, v in pred.items()}
        row = {"count": p["count"] == lab["count"]}
        if s.kind == "pair":
            row["colour"] = sorted((p["colour1"], p["colour2"])) == sorted(
                (lab["colour1"], lab["colour2"])
            )
            row["shape"] = sorted((p["shape1"], p["shape2"])) == sorted(
                (lab["shape1"], lab["shape2"])
            )
            first = (p["colour1"], p["shape1"]) == (lab["colour1"], lab["shape1"])
            row["position"] = p["axis"] == lab["axis"] and first
        else:
            row["colour"] = p["colour1"] == lab["colour1"]
            row["shape"] = p["shape1"] == lab["shape1"]
            if s.kind == "single":
                row["position"] = p["cell"] == lab["cell"]
        row["all"] = all(row.values())
        for k, v in row.items():
            ok[k].append(bool(v))
    return {k: float(np.mean(v)) if v else float("nan") for k, v in ok.items()}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets (N, D).

    Tr (S_a S_b)^(1/2) is computed as Tr (S_a^(1/2) S_b S_a^(1/2))^(1/2), a symmetric PSD
    matrix, so eigen-decompositions replace the general matrix square root.
    """
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def eval_scenes(n: int, seed: int = 777) -> tuple[list[W.Scene], list[str], np.ndarray]:
    """Held-out scenes (a seed the training world never uses), their prompts and clean renders."""
    world = W.make_world(n, seed=seed, low_quality_fraction=0.0)
    return world.scenes, [W.eval_caption(s) for s in world.scenes], world.images


def clip_score(images: np.ndarray, prompts: list[str], folder: Path) -> float:
    """Mean CLIP score of images and prompts with a local CLIP model folder."""
    from PIL import Image
    from transformers import AutoTokenizer, CLIPModel

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise DataError(f"--clip {folder} is not a CLIP model folder (no config.json)")
    try:
        model = CLIPModel.from_pretrained(str(folder), use_safetensors=True).eval()
        tok = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise DataError(f"--clip {folder} could not be loaded: {str(exc).splitlines()[0]}") from exc
    size = model.config.vision_config.image_size
    mean, std = (
        np.array([0.48145466, 0.4578275, 0.40821073]),
        np.array([0.26862954, 0.26130258, 0.27577711]),
    )
    pix = np.stack(
        [
            np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC), np.float32) / 255
            for im in images
        ]
    )
    pix = torch.from_numpy(((pix - mean) / std).astype(np.float32)).permute(0, 3, 1, 2)
    with torch.no_grad():
        text = tok(prompts, padding=True, truncation=True, max_length=77, return_tensors="pt")
        img_e = model.get_image_features(pixel_values=pix)
        txt_e = model.get_text_features(**text)
        img_e = getattr(img_e, "pooler_output", img_e)
        txt_e = getattr(txt_e, "pooler_output", txt_e)
        cos = nn.functional.cosine_similarity(img_e, txt_e)
    return float((100 * cos.clamp(min=0)).mean())


def evaluate_images(
    images: np.ndarray, scenes: list[W.Scene], real: np.ndarray, seed: int = 0
) -> dict:
    clf = load_classifier(seed)
    pred, feats = predict_attributes(clf, images)
    _, real_feats = predict_attributes(clf, real)
    out = {f"acc_{k}": v for k, v in score_alignment(pred, scenes).items()}
    out["frechet"] = frechet_distance(real_feats, feats) if len(images) > 2 else float("nan")
    return out


def alignment_probe(n: int = 48, steps: int = 10, guidance: float = 4.5, seed: int = 0):
    """A ``probe`` for training: generate the ``n`` held-out prompts and score them."""
    from .sampling import generate

    scenes, prompts, real = eval_scenes(n)

    def probe(bundle) -> dict:
        with torch.no_grad():
            images = generate(
                bundle, prompts, seeds=[seed + i for i in range(n)], steps=steps, guidance=guidance
            )
        return evaluate_images(images, scenes, real)

    return probe
