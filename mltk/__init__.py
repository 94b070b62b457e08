"""mltk: one command line for ten recent machine-learning research methods."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def run(plugin: str, verb: str, /, **values: Any) -> dict[str, Any]:
    """Run a verb from Python and return what `--json` would print, e.g.
    `mltk.run("tensor", "complete", data="astronaut", observed=0.2)`.

    Values are the verb's config fields by name, the shared keys (seed, device, precision,
    threads, deterministic) and preset, config, out, resume, run (or runs) and quiet. They are
    checked as on the command line; errors are raised as mltk.errors types.
    """
    from mltk.lifecycle import run_verb

    return run_verb(plugin, verb, values)
