"""A verb run in-process for a module-scoped fixture, with only one plugin loaded.

A module fixture outlives the tests' monkeypatch, so the plugin restriction is set for the run
only and the variable is left as it was (a leak would hide plugins from the tests that follow on
the same worker).
"""

from __future__ import annotations

import os

from mltk.cli import run


def run_plugin(plugin: str, *args: str) -> int:
    saved = os.environ.get("MLTK_LOAD_PLUGINS")
    os.environ["MLTK_LOAD_PLUGINS"] = plugin
    try:
        return int(run([plugin, *args]))
    finally:
        if saved is None:
            os.environ.pop("MLTK_LOAD_PLUGINS", None)
        else:
            os.environ["MLTK_LOAD_PLUGINS"] = saved
