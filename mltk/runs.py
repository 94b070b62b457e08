"""Run folders: `runs/<plugin>/<timestamp>/` with config.json, metrics.jsonl and checkpoint/.

Only rank 0 writes. `train --resume DIR` reopens a folder; `eval` and `predict` open one
read-only with `RunDir.open`.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from mltk import atomic
from mltk.device import env_dist
from mltk.errors import DataError, UsageError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoint"


def _check_writable(path: Path, option: str = "--out") -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".mltk-write-test-{uuid.uuid4().hex[:6]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"{option} {path} is not writable ({reason})") from exc


def _clear_previous_run(path: Path) -> None:
    """A new run in a folder that holds an earlier one: drop that run's metrics log and
    checkpoint, so the folder never mixes the two (its config.json is overwritten anyway)."""
    import shutil

    print(
        f"warning: --out {path} held an earlier run; its metrics and checkpoint are replaced "
        "(use --resume to continue a run instead)",
        file=sys.stderr,
        flush=True,
    )
    (path / METRICS_FILE).unlink(missing_ok=True)
    for old in [path / CHECKPOINT_DIR, *path.glob(f".{CHECKPOINT_DIR}.old-*")]:
        if old.is_dir():
            shutil.rmtree(old)


class RunDir:
    def __init__(self, path: Path, plugin: str, *, writable: bool) -> None:
        self.path = path
        self.plugin = plugin
        self.writable = writable and env_dist().is_main
        self.kept_inputs: dict[str, str] = {}  # fields read from stdin -> the copy kept here

    @classmethod
    def create(
        cls,
        plugin: str,
        *,
        out: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None,
        label: str = "",
    ) -> RunDir:
        """A new run folder (or the one given by --resume, which must hold a checkpoint).

        `label` names an output folder (`runs/<plugin>/<timestamp>-<label>`) rather than a run.
        """
        if resume is not None:
            run = cls.open(resume, plugin=plugin)
            run.writable = env_dist().is_main
            if run.writable:
                _check_writable(run.path, "--resume")
            return run
        if out is not None:
            path = Path(out)
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S") + (f"-{label}" if label else "")
            path = Path("runs") / plugin / stamp
            if path.exists():
                path = path.with_name(f"{stamp}-{uuid.uuid4().hex[:4]}")
        run = cls(path, plugin, writable=True)
        if run.writable:
            _check_writable(path)
            if (path / CONFIG_FILE).is_file():
                if label:
                    print(
                        f"warning: --out {path} held earlier results; files of the same names "
                        "are replaced",
                        file=sys.stderr,
                        flush=True,
                    )
                else:
                    _clear_previous_run(path)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike, *, plugin: str, need_checkpoint: bool = True) -> RunDir:
        path = Path(path)
        try:
            found, is_dir = path.exists(), path.is_dir()
        except OSError as exc:
            raise UsageError(f"run folder {str(path)[:80]}... is not a usable path") from exc
        if not found:
            raise DataError(f"run folder {path} does not exist")
        if not is_dir:
            raise DataError(f"{path} is a file, not a run folder")
        if not (path / CONFIG_FILE).is_file():
            raise DataError(f"{path} is not an mltk run folder (no {CONFIG_FILE})")
        run = cls(path, plugin, writable=False)
        cfg = run.read_config()
        if cfg.get("plugin", plugin) != plugin:
            raise DataError(f"{path} is a run of plugin {cfg.get('plugin')!r}, not {plugin!r}")
        if need_checkpoint and not atomic.recover_dir(run.checkpoint_dir).is_dir():
            raise DataError(
                f"run folder {path} has no checkpoint/ (was training interrupted before the first save?)"
            )
        return run

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def artifact(self, name: str) -> Path:
        return self.path / name

    def write_config(self, config: dict[str, Any]) -> None:
        if self.writable:
            payload = {"plugin": self.plugin, **config}
            atomic.write_text(self.path / CONFIG_FILE, json.dumps(payload, indent=2, default=str))

    def update_config(self, config: Any = None, **extras: Any) -> None:
        """Replace the recorded config (a dataclass) and merge `extras` into config.json."""
        if not self.writable:
            return
        from mltk.config import to_dict

        data = self.read_config() if (self.path / CONFIG_FILE).is_file() else {}
        data.pop("plugin", None)
        if config is not None:
            data["config"] = {**to_dict(config), **self.kept_inputs}
        data.update(extras)
        self.write_config(data)

    def saved_config(self, cls: type) -> Any:
        """The config this run was trained with, as an instance of `cls` (checked again)."""
        from mltk.config import from_dict

        data = self.read_config()
        if not isinstance(data.get("config"), dict):
            raise DataError(f"{self.path / CONFIG_FILE} holds no configuration")
        known = {f for f in getattr(cls, "__dataclass_fields__", {})}
        values = {k: v for k, v in data["config"].items() if k in known}
        return from_dict(cls, values, source=str(self.path / CONFIG_FILE))

    def load(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(tensors, meta) of the checkpoint; DataError when it is missing or damaged."""
        from mltk.checkpoint import load_checkpoint

        return load_checkpoint(self.checkpoint_dir)

    def save_state(self, **state: Any) -> None:
        """Model, optimizer, scheduler, RNG and extras, atomically (rank 0 only): see
        mltk.checkpoint.save_training_state for the arguments."""
        if self.writable:
            from mltk.checkpoint import save_training_state

            save_training_state(self.checkpoint_dir, **state)

    def restore_state(self, *, log=None, **objects: Any) -> dict[str, Any]:
        """Load what `save_state` wrote into `objects` (model=, optimizer=, scheduler=), drop
        the metrics logged after that checkpoint, and return its meta (with "step")."""
        from mltk.checkpoint import load_training_state

        meta = load_training_state(self.checkpoint_dir, **objects)
        self.truncate_metrics(int(meta["step"]))
        if log is not None:
            log(f"resumed from step {meta['step']} of {self.path}")
        return meta

    def read_config(self) -> dict[str, Any]:
        try:
            data = json.loads((self.path / CONFIG_FILE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{self.path / CONFIG_FILE} cannot be read ({exc})") from exc
        if not isinstance(data, dict):
            raise DataError(f"{self.path / CONFIG_FILE} does not hold a JSON object")
        return data

    def log_metrics(self, step: int, **values: Any) -> None:
        if not self.writable:
            return
        from mltk.output import _jsonable

        line = json.dumps({"step": int(step), "time": time.time(), **_jsonable(values)})
        with open(self.path / METRICS_FILE, "a") as fh:
            fh.write(line + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / METRICS_FILE
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a crash ends the log
        return rows

    def truncate_metrics(self, after_step: int) -> None:
        """Drop lines logged after the checkpoint a resumed run continues from."""
        if not self.writable:
            return
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        atomic.write_text(self.path / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept))
