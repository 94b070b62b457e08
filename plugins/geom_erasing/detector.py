"""Detectors: where in an image an implicit concept is.

- ``embedded``: a small fully convolutional network giving, per pixel and concept, the
  probability that the pixel lies in the concept's box; a cell's presence is the maximum over
  its pixels, so one network serves any grid, and boxes are the connected regions above 0.5.
  Trained on world images and on images the shipped tiny model generates from world prompts
  (it never saw a concept, so they are clean examples of the domain the detector judges: on
  world images alone it fired on 28% of them for text), with concepts drawn in
  (``concepts.inject``), half of them passed through the shipped tiny VAE. Weights ship with
  mltk (``benchmarks/geom-erasing/build_detector.py``: 16000 images, a quarter generated, 10
  epochs); another ``--detector-seed`` trains one with a shorter run of the same recipe (12000
  images, 4 epochs: about 8 minutes on 2 cores) into the dataset cache, the cross-check of
  the benchmarks.
- ``opencv-qr``: OpenCV's ``QRCodeDetector`` on real images (it finds version-1 QR codes from
  about 1 px per module; it does not read Micro QR).
- ``module:function``: the user's own, called with an (H, W, 3) uint8 array, returning boxes
  ``[[x0, y0, x1, y1], ...]`` (pixels, end-exclusive) or ``[{"concept", "box"}, ...]``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mltk.errors import DataError, UsageError

from .concepts import CONCEPTS, inject

WEIGHTS = Path(__file__).parent / "weights" / "detector.safetensors"
DETECTOR_VERSION = 2
THRESHOLD = 0.5


class Detector(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, len(CONCEPTS), H, W) logits; receptive field 21 px."""

    def __init__(self, width: int = 48):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, len(CONCEPTS), 1),
        )

    def forward(self, x):
        return self.net(x)


def _to_input(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def box_masks(boxes: list[list[dict]], shape: tuple[int, int]) -> np.ndarray:
    """(N, len(CONCEPTS), H, W) float32: 1 inside each image's boxes of each concept."""
    out = np.zeros((len(boxes), len(CONCEPTS), *shape), np.float32)
    for i, found in enumerate(boxes):
        for f in found:
            x0, y0, x1, y1 = f["box"]
            out[i, CONCEPTS.index(f["concept"]), y0:y1, x0:x1] = 1
    return out


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def generated_images(n: int, seed: int, log=None) -> np.ndarray:
    """``n`` images the shipped tiny model generates from world prompts of world ``seed``
    (20 DPM-Solver++ steps, guidance 4.5, as the benchmarks sample)."""
    from mltk.data import world as W
    from mltk.t2i import TINY_MODEL
    from mltk.t2i.pipeline_io import load_pipeline, quiet_libraries
    from mltk.t2i.sampling import generate

    quiet_libraries()
    if log is not None:
        log(f"generating {n} clean images with the tiny model for the detector")
    world = W.make_world(n, seed=seed, low_quality_fraction=0.0)
    prompts = [W.eval_caption(s) for s in world.scenes]
    bundle = load_pipeline(TINY_MODEL, device="cpu", dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        return generate(
            bundle, prompts, seeds=[seed * 100_000 + i for i in range(n)], batch_size=64
        )


def training_images(n: int, seed: int, *, vae=None, generated: np.ndarray | None = None):
    """World images, then ``generated`` ones (each used twice, once mirrored), with 0, 1 or 2
    concepts drawn in, and their boxes (half VAE round-tripped): ``n`` in all."""
    from mltk.data import world as W

    extra = 0 if generated is None else 2 * len(generated)
    world = W.make_world(n - extra, seed=seed, low_quality_fraction=0.3)
    rng = np.random.default_rng(seed + 1)
    images, boxes = world.images.copy(), []
    if extra:
        images = np.concatenate([images, generated, generated[:, :, ::-1]])
    for i in range(n):
        found = []
        for _ in range(int(rng.choice(3, p=[0.35, 0.5, 0.15]))):
            concept = CONCEPTS[int(rng.integers(len(CONCEPTS)))]
            for _ in range(20):  # a second concept never hides the first
                drawn, box = inject(images[i], concept, rng)
                if not any(_overlap(box, f["box"]) for f in found):
                    images[i] = drawn
                    found.append({"concept": concept, "box": box})
                    break
        boxes.append(found)
    if vae is not None:
        from mltk.t2i.autoencoders import decode, encode_images
        from mltk.t2i.sampling import to_uint8

        half = np.flatnonzero(rng.random(n) < 0.5)
        for lo in range(0, len(half), 256):
            idx = half[lo : lo + 256]
            mean, _ = encode_images(vae, images[idx])
            images[idx] = to_uint8(decode(vae, mean))
    return images, boxes


def train_detector(
    seed: int = 0, n: int = 16000, epochs: int = 10, generated: int | None = None, log=None
) -> Detector:
    """The recipe: ``n`` training images, ``generated`` (default n / 8) of them generated by the
    tiny model and used twice."""
    from mltk.t2i.autoencoders import load_tiny_vae

    gen = generated_images(n // 8 if generated is None else generated, 40_000 + seed, log=log)
    images, boxes = training_images(n, 20_000 + seed, vae=load_tiny_vae(), generated=gen)
    x, y = _to_input(images), torch.from_numpy(box_masks(boxes, images.shape[1:3]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Detector()
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    steps = epochs * (n // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - 63, 64):
            b = perm[i : i + 64]
            xb = x[b] + 0.03 * torch.randn(x[b].shape, generator=g)
            loss = nn.functional.binary_cross_entropy_with_logits(model(xb), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if log is not None:
            log(f"detector epoch {epoch + 1}/{epochs} loss {loss.item():.4f}")
    return model.eval()


def save_detector(model: Detector, path: Path = WEIGHTS) -> None:
    from safetensors.torch import save_file

    from mltk.data import world as W

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "detector_version": str(DETECTOR_VERSION),
        "world_version": str(W.WORLD_VERSION),
        "concepts": ",".join(CONCEPTS),
    }
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)


def load_detector(seed: int = 0, log=None) -> Detector:
    """The embedded detector: the shipped weights for seed 0, else trained once into the cache."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from mltk.cache import cached_arrays
    from mltk.data import world as W

    if seed == 0 and WEIGHTS.is_file():
        with safe_open(str(WEIGHTS), "pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("detector_version") == str(DETECTOR_VERSION) and meta.get(
            "world_version"
        ) == str(W.WORLD_VERSION):
            model = Detector()
            model.load_state_dict(load_file(str(WEIGHTS)))
            return model.eval()

    def build():
        if log is not None:
            log(f"training the embedded detector for seed {seed} (about 8 minutes, once)")
        m = train_detector(seed, n=12000, epochs=4, log=log)
        return {k: v.detach().numpy() for k, v in m.state_dict().items()}

    arrays = cached_arrays(
        "geom-erasing-detector",
        {"seed": seed, "world": W.WORLD_VERSION},
        build,
        version=DETECTOR_VERSION,
    )
    model = Detector()
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    return model.eval()


@torch.no_grad()
def heatmaps(model: Detector, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, len(CONCEPTS), H, W) probabilities."""
    out = [
        torch.sigmoid(model(_to_input(images[i : i + batch]))).numpy()
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(out) if out else np.zeros((0, len(CONCEPTS), *images.shape[1:3]))


def cell_scores(maps: np.ndarray, grid: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, grid * grid): each cell's maximum (cells ``row * grid + col``)."""
    n, c, h, w = maps.shape
    ys = np.minimum((np.arange(h) * grid) // h, grid - 1)
    xs = np.minimum((np.arange(w) * grid) // w, grid - 1)
    out = np.zeros((n, c, grid * grid), np.float32)
    for r in range(grid):
        for col in range(grid):
            block = maps[:, :, ys == r][:, :, :, xs == col]
            out[:, :, r * grid + col] = block.reshape(n, c, -1).max(-1)
    return out


def boxes_from_maps(maps: np.ndarray, threshold: float = THRESHOLD, min_pixels: int = 4):
    """Per image, ``[{"concept", "box", "score"}]``: the bounding box of each connected region
    (8-neighbourhood) above ``threshold`` with at least ``min_pixels`` pixels."""
    from scipy import ndimage

    out = []
    for m in maps:
        found = []
        for ci, concept in enumerate(CONCEPTS):
            labels, k = ndimage.label(m[ci] > threshold, structure=np.ones((3, 3)))
            for sl, idx in zip(ndimage.find_objects(labels), range(1, k + 1)):
                region = labels[sl] == idx
                if region.sum() < min_pixels:
                    continue
                ys, xs = sl
                found.append(
                    {
                        "concept": concept,
                        "box": [int(xs.start), int(ys.start), int(xs.stop), int(ys.stop)],
                        "score": round(float(m[ci][sl][region].max()), 4),
                    }
                )
        out.append(found)
    return out


# ----------------------------------------------------------------------------- other detectors


def opencv_qr(image: np.ndarray) -> list[dict]:
    """OpenCV's QR detector; the box of the four corners it finds (none: [])."""
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - an extra's dependency
        from mltk.errors import DependencyError

        raise DependencyError(
            "the opencv-qr detector needs OpenCV: pip install 'mltk[geom-erasing]'"
        ) from exc
    ok, points = cv2.QRCodeDetector().detect(np.ascontiguousarray(image[..., ::-1]))
    if not ok or points is None:
        return []
    p = np.asarray(points).reshape(-1, 2)
    h, w = image.shape[:2]
    x0, y0 = max(0, int(np.floor(p[:, 0].min()))), max(0, int(np.floor(p[:, 1].min())))
    x1, y1 = min(w, int(np.ceil(p[:, 0].max())) + 1), min(h, int(np.ceil(p[:, 1].max())) + 1)
    return [{"concept": "qr", "box": [x0, y0, x1, y1]}] if x1 > x0 and y1 > y0 else []


def user_detector(spec: str):
    """``module:function`` -> a callable image -> boxes; UsageError if it cannot be imported."""
    mod, _, fn = spec.partition(":")
    if not mod or not fn:
        raise UsageError(f"--detector {spec!r} must be embedded, opencv-qr or module:function")
    try:
        func = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--detector {spec}: cannot import {fn} from {mod} ({exc})") from exc
    if not callable(func):
        raise UsageError(f"--detector {spec} is not a function")
    return func


def detect(
    images: np.ndarray,
    detector: str = "embedded",
    *,
    concept: str | None = None,
    seed: int = 0,
    log=None,
) -> list[list[dict]]:
    """Boxes per image from the named detector (``concept`` names what a plain box list from a
    user's function or OpenCV is of)."""
    if detector == "embedded":
        return boxes_from_maps(heatmaps(load_detector(seed, log=log), images))
    func = opencv_qr if detector == "opencv-qr" else user_detector(detector)
    out = []
    for i, image in enumerate(images):
        try:
            found = func(image)
        except Exception as exc:  # noqa: BLE001 - the user's code: report it as one sentence
            raise DataError(f"--detector {detector} failed on image {i}: {exc}") from exc
        rows = []
        for f in found or []:
            if isinstance(f, dict):
                rows.append(
                    {
                        "concept": str(f.get("concept", concept or "qr")),
                        "box": [int(v) for v in f["box"]],
                    }
                )
            else:
                rows.append({"concept": concept or "qr", "box": [int(v) for v in f]})
        out.append(rows)
    return out
