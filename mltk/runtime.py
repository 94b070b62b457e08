"""What a verb's body is handed besides its config: device, precision, DDP, output, run folders.

`setup` resolves the shared options once (device, precision, seed, threads, DDP); the lifecycle
(mltk.lifecycle) then binds the verb's run folders to the Runtime: `rt.run` (created on first
use, or reopened by --resume), `rt.source` (the RUN a verb reads) and `rt.output` (a new folder
for what predict-like verbs write).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partialmethod
from typing import Any

from mltk.device import Dist
from mltk.output import Output


@dataclass
class Runtime:
    device: Any
    dtype: Any
    dist: Dist
    out: Output
    seed: int
    config: Any = None  # the verb's resolved config (what config.json records)
    resumed: bool = False  # rt.run was reopened by --resume: restore its state
    sources: list = field(default_factory=list)  # the opened RUN folders, in order
    given: set = field(default_factory=set)  # config fields set on the command line or in --config
    preset: str | None = None  # the preset the config started from (verbs with presets)
    _make_run: Any = None
    _make_output: Any = None
    _run: Any = None
    _output: Any = None

    def autocast(self):
        """Mixed precision for bf16/fp16; nothing for fp32 (and fp64)."""
        import torch

        if self.dtype in (torch.float32, torch.float64):
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    @property
    def run(self):
        """This verb's run folder (mltk.runs.RunDir), created with its config.json on first use."""
        if self._run is None:
            if self._make_run is None:
                raise RuntimeError("this verb does not write a run folder")
            self._run = self._make_run()
        return self._run

    @property
    def has_run(self) -> bool:
        return self._run is not None

    @property
    def source(self):
        """The run folder (or model folder) given as RUN."""
        if not self.sources:
            raise RuntimeError("this verb was given no RUN")
        return self.sources[0]

    @property
    def output(self):
        """A new folder for the files this verb writes, with its own config.json."""
        if self._output is None:
            if self._make_output is None:
                raise RuntimeError("this verb does not write an output folder")
            self._output = self._make_output()
        return self._output

    def record(self, config: Any = None, **extras: Any) -> None:
        """Rewrite the run's config.json with `config` (values resolved by the body, such as a
        lookback chosen on validation) and `extras` (data fingerprints, scalers, ...)."""
        if config is not None:
            self.config = config
        self.run.update_config(config, **extras)


def setup(
    *,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
    threads: int | None = None,
    deterministic: bool = False,
    json: bool = False,
    quiet: bool = False,
    distributed: bool = False,
    auto_precision: str | None = None,
) -> Runtime:
    """Resolve the shared options. With `distributed`, join a torchrun process group if launched."""
    import torch

    from mltk.device import env_dist, init_distributed, resolve_device, resolve_precision
    from mltk.errors import UsageError
    from mltk.seed import seed_everything

    if not 0 <= seed < 2**63:
        raise UsageError(f"--seed {seed} must be a non-negative integer below 2**63")
    if threads is not None:
        if not 1 <= threads <= 4096:
            raise UsageError(f"--threads {threads} must be between 1 and 4096")
        torch.set_num_threads(threads)
    dist = env_dist()
    dev = resolve_device(device, local_rank=dist.local_rank if dist.enabled else None)
    if precision == "auto" and auto_precision is not None:
        precision = auto_precision
    dtype = resolve_precision(precision, dev)
    if distributed:
        dist = init_distributed(dev)
    elif dist.enabled:
        dist = Dist()  # a command that does not train in parallel runs whole on every rank
        dist.rank = env_dist().rank
    seed_everything(seed, deterministic=deterministic)
    out = Output(json=json, quiet=quiet, is_main=dist.is_main)
    return Runtime(device=dev, dtype=dtype, dist=dist, out=out, seed=seed)


@contextmanager
def third_party_quiet(enabled: bool = True):
    """--quiet also silences the progress bars and notices of tokenizers, transformers,
    diffusers and the hub while a verb runs (and restores them after: a notebook keeps its
    bars)."""
    if not enabled:
        yield
        return
    import os

    env = {
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "DIFFUSERS_VERBOSITY": "error",
        "TOKENIZERS_PARALLELISM": "false",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    patched = None
    try:  # tqdm draws the bars of diffusers, transformers and the hub
        import tqdm

        patched = tqdm.tqdm.__init__
        tqdm.tqdm.__init__ = partialmethod(patched, disable=True)
    except ImportError:
        pass
    try:
        yield
    finally:
        if patched is not None:
            tqdm.tqdm.__init__ = patched
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
