"""The dataset cache: parsed and preprocessed arrays, built once, shared by every process.

An entry is a folder `<root>/<name>-<key>/` holding `arrays.safetensors` and `entry.json`. Its key
hashes the dataset name, its parameters, a fingerprint of the source and a format version, so a
changed source or parameter never returns stale data. An entry is built in a temporary folder
and renamed into place under a file lock: a crash or two concurrent processes never leave a
half-written entry, and the second process reads what the first built.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltk import atomic
from mltk.errors import DataError

ARRAYS_FILE = "arrays.safetensors"
ENTRY_FILE = "entry.json"


def cache_root() -> Path:
    """`MLTK_CACHE_DIR`, else the platform's user cache folder for mltk."""
    env = os.environ.get("MLTK_CACHE_DIR")
    if env:
        root = Path(env).expanduser()
        if root.exists() and not root.is_dir():
            raise DataError(f"MLTK_CACHE_DIR={env} is a file, not a folder")
        return root
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mltk", appauthor=False))


def entry_key(name: str, params: dict[str, Any], fingerprint: str = "", version: int = 1) -> str:
    blob = json.dumps(
        {"name": name, "params": params, "fingerprint": fingerprint, "version": version},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def file_fingerprint(path: str | os.PathLike) -> str:
    """A content hash of a source file (sha256 of its bytes, read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "entry"


def entry_path(name: str, key: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / f"{_safe_name(name)}-{key}"


def _read(path: Path) -> dict[str, Any] | None:
    """The entry's arrays, or None (and the entry removed) when it cannot be read back."""
    from safetensors.numpy import load_file

    if not (path / ENTRY_FILE).is_file():
        return None
    try:
        return load_file(str(path / ARRAYS_FILE))
    except Exception:  # a truncated or damaged entry: it is only a cache, so rebuild it
        shutil.rmtree(path, ignore_errors=True)
        return None


def cached_arrays(
    name: str,
    params: dict[str, Any],
    build: Callable[[], dict[str, Any]],
    *,
    fingerprint: str = "",
    version: int = 1,
) -> dict[str, Any]:
    """Return the arrays for (name, params, fingerprint, version), building them once if needed."""
    import numpy as np
    from filelock import FileLock
    from safetensors.numpy import save_file

    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the cache folder {root} ({exc.strerror}); set MLTK_CACHE_DIR"
        ) from exc
    key = entry_key(name, params, fingerprint, version)
    path = entry_path(name, key, root)
    found = _read(path)
    if found is not None:
        return found
    with FileLock(str(root / f".{key}.lock")):
        found = _read(path)  # another process may have built it while we waited
        if found is not None:
            return found
        arrays = {k: np.ascontiguousarray(v) for k, v in build().items()}
        info = {
            "name": name,
            "key": key,
            "params": params,
            "fingerprint": fingerprint,
            "version": version,
            "created": time.time(),
            "arrays": {k: [str(v.dtype), list(v.shape)] for k, v in arrays.items()},
        }
        with atomic.build_dir(path) as tmp:
            save_file(arrays, str(tmp / ARRAYS_FILE))
            atomic.default_mode(tmp / ARRAYS_FILE)
            # entry.json is written last: an entry without it is never read.
            (tmp / ENTRY_FILE).write_text(json.dumps(info, default=str, indent=2))
    found = _read(path)
    if found is None:
        raise DataError(f"the cache entry {path} could not be read back after writing it")
    return found


@dataclass
class Entry:
    name: str
    key: str
    path: Path
    size: int
    created: float


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def list_entries(root: Path | None = None) -> list[Entry]:
    root = root or cache_root()
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue
        try:
            info = json.loads((path / ENTRY_FILE).read_text())
            if not isinstance(info, dict):
                raise ValueError
        except (OSError, ValueError):
            # a damaged entry (or one whose build was cut short) is listed, so clear removes it
            prefix, _, key = path.name.rpartition("-")
            info = {"name": prefix or path.name, "key": key, "created": 0.0}
        out.append(
            Entry(
                info.get("name", "?"),
                info.get("key", "?"),
                path,
                _size(path),
                info.get("created", 0.0),
            )
        )
    return out


def total_size(root: Path | None = None) -> int:
    root = root or cache_root()
    return _size(root) if root.is_dir() else 0


def clear(name: str | None = None, root: Path | None = None) -> int:
    """Delete entries (all, or those of one dataset) and stale temporaries; returns bytes freed."""
    root = root or cache_root()
    if not root.is_dir():
        return 0
    freed = 0
    for entry in list_entries(root):
        if name is None or entry.name == name:
            freed += entry.size
            shutil.rmtree(entry.path, ignore_errors=True)
    if name is None:
        for leftover in root.glob(".*"):
            if leftover.is_dir():
                freed += _size(leftover)
                shutil.rmtree(leftover, ignore_errors=True)
    return freed
