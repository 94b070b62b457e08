"""Photographs as arrays: scikit-image's embedded ones or image files (numpy and scikit-image).

Shared by the plugins that treat an image as data (tensor completion, machine teaching): the
reading, the errors a user sees for a bad file, and the downscaling are the same for all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mltk.errors import DataError

# scikit-image's photographs (no download needed), with their shapes
EMBEDDED_PHOTOS = {
    "astronaut": (512, 512, 3),
    "camera": (512, 512),
    "coffee": (400, 600, 3),
    "chelsea": (300, 451, 3),
    "rocket": (427, 640, 3),
    "hubble_deep_field": (872, 1000, 3),
    "retina": (1411, 1411, 3),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def read_image(source: str) -> np.ndarray:
    """An embedded photograph or an image file as float64 in [0, 1]: (H, W) or (H, W, C), alpha
    dropped. DataError for a missing or unreadable file."""
    if source in EMBEDDED_PHOTOS:
        from skimage import data as skdata

        img = getattr(skdata, source)()
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"image file {source} does not exist")
        try:
            from skimage import io

            img = io.imread(str(path))
        except Exception as exc:  # any decoder failure is a data problem
            # decoders explain at length (which plugins to install); the first line says it all
            reason = (str(exc).strip().splitlines() or ["not a readable image"])[0].rstrip(".")
            raise DataError(f"could not read the image {source}: {reason}") from exc
    img = np.asarray(img)
    if img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
        raise DataError(f"{source} has an unexpected image shape {img.shape}")
    if img.ndim == 3 and img.shape[2] == 4:  # drop alpha
        img = img[:, :, :3]
    scale = 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else 1.0
    return img.astype(np.float64) / scale


def downscale(img: np.ndarray, size: int | None) -> np.ndarray:
    """Shrink (never enlarge) so that the longest side is ``size`` pixels, anti-aliased."""
    if not size or max(img.shape[:2]) <= size:
        return img
    from skimage.transform import resize

    f = size / max(img.shape[:2])
    new = (max(1, round(img.shape[0] * f)), max(1, round(img.shape[1] * f)), *img.shape[2:])
    return resize(img, new, anti_aliasing=True)
