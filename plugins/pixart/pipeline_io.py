"""Checkpoint folders in the diffusers layout, so PixArtAlphaPipeline and mltk read each other's.

A folder holds ``model_index.json`` and one sub-folder per component: ``transformer/``,
``text_encoder/``, ``tokenizer/``, ``scheduler/`` and ``vae/``. Folders written here add
``mltk_pixart.json`` (the plugin config, the prediction type, the autoencoder kind); a
pixel-space model (``identity`` autoencoder) has no ``vae/`` and records ``"vae": [null, null]``.
Nothing is unpickled: weights are safetensors, everything else JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mltk.errors import DataError

from .config import PixArtConfig
from .model import IdentityAutoencoder

REQUIRED = ("transformer", "text_encoder", "tokenizer", "scheduler")
MLTK_FILE = "mltk_pixart.json"


@dataclass
class Bundle:
    """Everything generation needs, loaded."""

    transformer: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    autoencoder: object  # AutoencoderKL or IdentityAutoencoder
    scheduler_config: dict
    max_length: int = 120
    info: dict = field(default_factory=dict)

    @property
    def vae_factor(self) -> int:
        if isinstance(self.autoencoder, IdentityAutoencoder):
            return 1
        return 2 ** (len(self.autoencoder.config.block_out_channels) - 1)

    @property
    def patch_size(self) -> int:
        return int(self.transformer.config.patch_size)

    @property
    def prediction(self) -> str:
        return "v" if self.scheduler_config.get("prediction_type") == "v_prediction" else "eps"


def save_pipeline(
    folder: Path,
    *,
    transformer,
    text_encoder,
    tokenizer,
    autoencoder,
    scheduler_config: dict,
    cfg: PixArtConfig | None = None,
    extra: dict | None = None,
) -> Path:
    """Write the diffusers layout atomically (to a temporary folder, then renamed into place)."""
    from diffusers import DPMSolverMultistepScheduler

    from mltk import atomic

    folder = Path(folder)
    identity = isinstance(autoencoder, IdentityAutoencoder)
    with atomic.build_dir(folder) as tmp:
        transformer.save_pretrained(tmp / "transformer", safe_serialization=True)
        text_encoder.save_pretrained(tmp / "text_encoder", safe_serialization=True)
        tokenizer.save_pretrained(tmp / "tokenizer")
        DPMSolverMultistepScheduler(**scheduler_config).save_pretrained(tmp / "scheduler")
        if not identity:
            autoencoder.save_pretrained(tmp / "vae", safe_serialization=True)
        import diffusers

        index = {
            "_class_name": "PixArtAlphaPipeline",
            "_diffusers_version": diffusers.__version__,
            "scheduler": ["diffusers", "DPMSolverMultistepScheduler"],
            "text_encoder": ["transformers", "T5EncoderModel"],
            "tokenizer": ["transformers", type(tokenizer).__name__],
            "transformer": ["diffusers", "PixArtTransformer2DModel"],
            "vae": [None, None] if identity else ["diffusers", "AutoencoderKL"],
        }
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2))
        for weights in tmp.rglob("*.safetensors"):
            atomic.default_mode(weights)  # safetensors creates them 0600
        from mltk.config import config_to_dict

        meta = {
            "autoencoder": "identity" if identity else "kl",
            "max_length": int(cfg.max_length) if cfg else 120,
            "config": config_to_dict(cfg) if cfg else None,
            **(extra or {}),
        }
        (tmp / MLTK_FILE).write_text(json.dumps(meta, indent=2))
    return folder


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path} does not hold a JSON object")
    return data


def inspect_folder(folder: Path) -> dict:
    """Check a checkpoint folder's layout without loading weights; DataError naming what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file; give a run or pipeline folder" if folder.exists() else "does not exist"
        raise DataError(f"checkpoint folder {folder} {what}")
    if not (folder / "model_index.json").is_file():
        raise DataError(
            f"{folder} is not a diffusers PixArt folder (no model_index.json); "
            "pass a run folder from `mltk pixart train` or a PixArt-alpha checkpoint folder"
        )
    index = _read_json(folder / "model_index.json")
    meta = _read_json(folder / MLTK_FILE) if (folder / MLTK_FILE).is_file() else {}
    identity = meta.get("autoencoder") == "identity"
    needed = list(REQUIRED) + ([] if identity else ["vae"])
    missing = [c for c in needed if not (folder / c).is_dir() or not any((folder / c).iterdir())]
    if missing:
        raise DataError(
            f"checkpoint folder {folder} is missing its {', '.join(m + '/' for m in missing)} "
            f"component{'s' if len(missing) > 1 else ''} (PixArt needs {', '.join(needed)})"
        )
    weights = {
        "transformer": "diffusion_pytorch_model",
        "text_encoder": "model",
        "vae": "diffusion_pytorch_model",
    }
    for comp, stem in weights.items():
        if comp in needed and not list((folder / comp).glob(f"{stem}*.safetensors")):
            raise DataError(
                f"checkpoint folder {folder} has no safetensors weights in {comp}/ "
                "(only .safetensors files are loaded, never pickles)"
            )
    return {"index": index, "meta": meta, "identity": identity}


def load_pipeline(
    folder: Path, *, device="cpu", dtype: torch.dtype = torch.float32, text_encoder: bool = True
) -> Bundle:
    """Load a diffusers-layout PixArt folder (written by mltk or by diffusers) for generation.

    ``text_encoder=False`` leaves T5 on disk (``bundle.text_encoder`` is None): for prompts whose
    features are already cached; :func:`attach_text_encoder` loads it when needed.
    """
    from diffusers import AutoencoderKL, PixArtTransformer2DModel
    from transformers import AutoTokenizer

    from .text import load_text_encoder, text_dtype

    folder = Path(folder)
    layout = inspect_folder(folder)
    try:
        transformer = PixArtTransformer2DModel.from_pretrained(
            str(folder / "transformer"), torch_dtype=dtype, use_safetensors=True
        )
        encoder = (
            load_text_encoder(folder / "text_encoder", text_dtype(dtype), device)
            if text_encoder
            else None
        )
        tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        if layout["identity"]:
            autoencoder = IdentityAutoencoder()
        else:
            autoencoder = AutoencoderKL.from_pretrained(
                str(folder / "vae"), torch_dtype=dtype, use_safetensors=True
            )
            autoencoder = autoencoder.to(device).eval()
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"checkpoint folder {folder} could not be loaded: {str(exc).splitlines()[0]}"
        ) from exc
    sched = _read_json(folder / "scheduler" / "scheduler_config.json")
    sched = {k: v for k, v in sched.items() if not k.startswith("_")}
    return Bundle(
        transformer=transformer.to(device).eval(),
        text_encoder=encoder,
        tokenizer=tokenizer,
        autoencoder=autoencoder,
        scheduler_config=sched,
        max_length=int(layout["meta"].get("max_length", 120)),
        info={"folder": str(folder), **layout["meta"]},
    )


def attach_text_encoder(
    bundle: Bundle, *, device="cpu", dtype: torch.dtype = torch.float32
) -> None:
    from .text import load_text_encoder, text_dtype

    folder = Path(bundle.info["folder"])
    bundle.text_encoder = load_text_encoder(folder / "text_encoder", text_dtype(dtype), device)


def text_encoder_fingerprint(folder: Path) -> str:
    """Identifies the T5 weights and tokenizer of a folder by file names, sizes and mtimes
    (hashing 20 GB of T5-XXL would cost more than encoding the prompts)."""
    import hashlib

    h = hashlib.sha256()
    for sub in ("text_encoder", "tokenizer"):
        for f in sorted((Path(folder) / sub).glob("*")):
            st = f.stat()
            h.update(f"{sub}/{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]
