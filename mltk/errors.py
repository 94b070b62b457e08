"""Typed errors and the exit codes they map to.

Errors are raised where they are detected, with one sentence a user can act on; the command line
turns them into an exit code in one place (`mltk.cli.main`).
"""

from __future__ import annotations

import importlib
from enum import IntEnum
from types import ModuleType


class ExitCode(IntEnum):
    OK = 0
    RUNTIME = 1
    USAGE = 2
    MISSING_DEPENDENCY = 3
    DEVICE = 4
    DATA = 5
    DIVERGED = 6
    INTERRUPTED = 130


class MltkError(Exception):
    """A failure at run time (exit 1)."""

    exit_code = ExitCode.RUNTIME


class UsageError(MltkError):
    """A bad option value, config key or output path (exit 2)."""

    exit_code = ExitCode.USAGE


class DependencyError(MltkError):
    """An optional dependency of a plugin is not installed (exit 3)."""

    exit_code = ExitCode.MISSING_DEPENDENCY


class DeviceError(MltkError):
    """The device asked for is not available (exit 4)."""

    exit_code = ExitCode.DEVICE


class DataError(MltkError):
    """Data or a checkpoint is missing or invalid (exit 5)."""

    exit_code = ExitCode.DATA


class DivergedError(MltkError):
    """Training produced a non-finite loss or gradient (exit 6); a lower learning rate helps."""

    exit_code = ExitCode.DIVERGED


def require(module: str, *, extra: str) -> ModuleType:
    """Import an optional dependency, or raise DependencyError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise DependencyError(
            f"{top} is needed for this command but could not be imported ({exc}); "
            f"install it with: pip install 'mltk[{extra}]'"
        ) from exc
