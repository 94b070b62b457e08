"""Named datasets registered by plugins (`mltk_register_datasets`), loaded by name."""

from __future__ import annotations

import importlib
from typing import Any

from mltk.errors import DataError


def load_dataset(name: str, **kwargs: Any) -> Any:
    """Call the loader a plugin registered for `name`."""
    from mltk.plugins import discover

    datasets = discover(warn=False).datasets
    if name not in datasets:
        known = ", ".join(sorted(datasets)) or "none"
        raise DataError(f"unknown dataset {name!r}; registered datasets: {known}")
    module, _, func = datasets[name].loader.partition(":")
    return getattr(importlib.import_module(module), func)(**kwargs)
