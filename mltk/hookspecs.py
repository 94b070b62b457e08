"""The whole plugin API of mltk: two hooks, each given a `register` callback.

A plugin is a module with functions decorated by `hookimpl`, declared as an entry point in the
group "mltk" (see README, "Writing a plugin").
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mltk")
hookimpl = pluggy.HookimplMarker("mltk")


@hookspec
def mltk_register_commands(register):
    """Register commands: `register(name, plugin, summary="...")` adds `mltk <name> ...`, where
    `plugin` is an `mltk.verbs.Plugin` (or a plain Typer app)."""


@hookspec
def mltk_register_datasets(register):
    """Register datasets: `register(name, loader="module:function", description="...", embedded=True)`."""
