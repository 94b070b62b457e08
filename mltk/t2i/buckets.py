"""Aspect-ratio buckets: the multi-aspect training and sampling of PixArt's 1024 px model.

The buckets are diffusers' ``ASPECT_RATIO_1024_BIN`` table scaled to the training size and
snapped to multiples of patch size x VAE factor; at 256, 512 and 1024 px that is exactly
diffusers' own tables. diffusers has no table for other sizes (its pipelines refuse them), which
is why the scaling is ours; the nearest bucket is diffusers' ``classify_height_width_bin``.
"""

from __future__ import annotations


def aspect_buckets(size: int, multiple: int) -> dict[float, tuple[int, int]]:
    """Height/width ratio -> (height, width) of each bucket for training at ``size`` px."""
    from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import ASPECT_RATIO_1024_BIN

    out: dict[float, tuple[int, int]] = {}
    for h, w in ASPECT_RATIO_1024_BIN.values():
        hw = tuple(max(multiple, int(v * size / 1024 / multiple + 0.5) * multiple) for v in (h, w))
        out.setdefault(hw[0] / hw[1], hw)
    return dict(sorted(out.items()))


def bucket_multiple(size: int, step: int) -> int:
    """Bucket sides are multiples of size/16 (PixArt's tables: 64 at 1024 px, 32 at 512 px,
    16 at 256 px), and always of patch size x VAE factor (``step``)."""
    return step * max(1, size // (16 * step))


def buckets_for(size: int, step: int) -> dict[float, tuple[int, int]]:
    """The buckets of a model trained at ``size`` px with patch size x VAE factor ``step``."""
    return aspect_buckets(size, bucket_multiple(size, step))


def classify(height: int, width: int, buckets: dict[float, tuple[int, int]]) -> tuple[int, int]:
    """The bucket nearest ``height / width``, by diffusers' ``classify_height_width_bin``."""
    from diffusers.image_processor import PixArtImageProcessor

    table = {str(ratio): list(hw) for ratio, hw in buckets.items()}
    h, w = PixArtImageProcessor.classify_height_width_bin(height, width, ratios=table)
    return int(h), int(w)
