"""The options every plugin command shares, spelled the same everywhere.

Use them as parameter annotations in a Typer command::

    def train(device: options.Device = "auto", json_out: options.Json = False, ...): ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

_PANEL = "Common options"

Device = Annotated[
    str,
    typer.Option(
        "--device",
        help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.",
        rich_help_panel=_PANEL,
    ),
]
Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="auto (bf16 on a GPU that supports it, else fp32), fp32, bf16 or fp16.",
        rich_help_panel=_PANEL,
    ),
]
Seed = Annotated[
    int, typer.Option("--seed", help="Seed for python, numpy and torch.", rich_help_panel=_PANEL)
]
Threads = Annotated[
    Optional[int],
    typer.Option(
        "--threads", help="CPU threads for torch (default: torch's choice).", rich_help_panel=_PANEL
    ),
]
Deterministic = Annotated[
    bool,
    typer.Option(
        "--deterministic", help="Use deterministic kernels (slower).", rich_help_panel=_PANEL
    ),
]
Out = Annotated[
    Optional[Path],
    typer.Option(
        "--out",
        help="Output folder (default: runs/<plugin>/<timestamp>).",
        rich_help_panel=_PANEL,
    ),
]
Config = Annotated[
    Optional[Path],
    typer.Option(
        "--config",
        help="TOML file of configuration values; options given on the command line win.",
        rich_help_panel=_PANEL,
    ),
]
Resume = Annotated[
    Optional[Path],
    typer.Option(
        "--resume", help="Continue the interrupted run in this folder.", rich_help_panel=_PANEL
    ),
]
Json = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print exactly one JSON object on stdout (no progress bars).",
        rich_help_panel=_PANEL,
    ),
]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No logs on stderr.", rich_help_panel=_PANEL)
]
