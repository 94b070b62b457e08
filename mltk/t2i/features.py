"""What a text-to-image training loop reads: caption choice, batches and cached features.

Text-encoder features are the expensive part of training (T5-XXL), so the features of every
distinct caption and the autoencoder latents of every image are computed once and kept in the
core dataset cache (``mltk.cache``); later epochs and later runs read them back.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from mltk.data.captioned import CaptionedImages
from mltk.errors import DataError, UsageError

FEATURE_VERSION = 1


def caption_table(data: CaptionedImages) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Distinct captions (``""`` first: the dropped caption) and per-image indices into them:
    short (N,) and dense (N, K) padded with -1. A :class:`BucketedImages` is read group after
    group."""
    texts = [""]
    index: dict[str, int] = {"": 0}

    def idx(t: str) -> int:
        if t not in index:
            index[t] = len(texts)
            texts.append(t)
        return index[t]

    short = np.array([idx(t) for t in data.short], np.int64)
    k = max(len(d) for d in data.dense)
    dense = np.full((len(data), k), -1, np.int64)
    for i, d in enumerate(data.dense):
        dense[i, : len(d)] = [idx(t) for t in d]
    return texts, short, dense


def choose_captions(
    mode: str, short: np.ndarray, dense: np.ndarray, rng: np.random.Generator, drop: float
) -> np.ndarray:
    """Caption index per image for one batch: ``short``, a random ``dense`` one, or ``mixed``
    (half each); with probability ``drop`` the empty caption (index 0) for guidance."""
    if mode not in ("short", "dense", "mixed"):
        raise UsageError(f"--caption-mode must be short, dense or mixed; got {mode!r}")
    n = len(short)
    counts = (dense >= 0).sum(1)
    pick = dense[np.arange(n), (rng.random(n) * counts).astype(np.int64)]
    if mode == "short":
        out = short.copy()
    elif mode == "dense":
        out = pick
    else:
        out = np.where(rng.random(n) < 0.5, short, pick)
    out[rng.random(n) < drop] = 0
    return out


# ----------------------------------------------------------------------------- feature caches


class FeatureStore:
    """Text features and latents through the core cache; counts hits and builds.

    ``get_*`` is called once per epoch: the first call of a process reads the cache (a *hit*)
    or builds the entry (a *miss*); later calls are served from memory (also a hit).
    """

    def __init__(self):
        self.stats = {"text_hits": 0, "text_builds": 0, "latent_hits": 0, "latent_builds": 0}
        self._memo: dict[str, dict] = {}

    def _get(self, kind: str, name: str, params: dict, build) -> dict:
        from mltk.cache import cached_arrays

        key = json.dumps(params, sort_keys=True)
        if key in self._memo:
            self.stats[f"{kind}_hits"] += 1
            return self._memo[key]
        built = []

        def wrapped():
            built.append(True)
            return build()

        arrays = cached_arrays(name, params, wrapped, version=FEATURE_VERSION)
        self.stats[f"{kind}_builds" if built else f"{kind}_hits"] += 1
        self._memo[key] = arrays
        return arrays

    def text(self, texts: list[str], encoder_id: str, encode_fn) -> dict:
        """{"feats": (U, L, C) float32, "mask": (U, L) int64} for the distinct captions."""
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:20]
        params = {"captions": digest, "count": len(texts), "encoder": encoder_id}

        def build():
            feats, mask = encode_fn(texts)
            return {
                "feats": feats.numpy().astype(np.float32),
                "mask": mask.numpy().astype(np.int64),
            }

        return self._get("text", "t2i-text", params, build)

    def latents(self, data: CaptionedImages, autoencoder_id: str, encode_fn) -> dict:
        """{"mean": (N, C, h, w), "std": ...} of the autoencoder's posterior for every image."""
        params = {"data": data.fingerprint, "n": len(data), "autoencoder": autoencoder_id}

        def build():
            mean, std = encode_fn(data.images)
            return {"mean": mean.numpy().astype(np.float32), "std": std.numpy().astype(np.float32)}

        return self._get("latent", "t2i-latents", params, build)


def module_fingerprint(module, extra: str = "") -> str:
    """A short content hash of a module's weights (keys cache entries to the exact encoder)."""
    h = hashlib.sha256(extra.encode())
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        t = v.detach().float().cpu().contiguous()
        h.update(t.numpy().tobytes()[:4096])  # a prefix of each tensor plus the shape is enough
        h.update(str(tuple(t.shape)).encode())
    return h.hexdigest()[:20]


def epoch_batches(
    offsets: np.ndarray, batch_size: int, rng: np.random.Generator, min_size: int = 1
) -> list:
    """One epoch of batches over groups of rows ``offsets[g]:offsets[g+1]``; a batch never
    mixes groups (aspect-ratio buckets). Each group is shuffled and cut into full batches (a
    group smaller than a batch is one short batch, kept if it has ``min_size`` rows: one per DDP
    rank), and with several groups the batches are shuffled together. With one group this is a
    shuffled pass without the last partial batch."""
    batches = []
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        perm = lo + rng.permutation(hi - lo)
        full = len(perm) // batch_size
        if full:
            batches += [perm[i * batch_size : (i + 1) * batch_size] for i in range(full)]
        elif len(perm) >= min_size:
            batches.append(perm)
    if len(offsets) > 2:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    if not batches:
        raise DataError(f"no bucket holds {min_size} images, one per process; add images")
    return batches
