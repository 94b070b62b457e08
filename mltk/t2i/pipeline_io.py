"""Text-to-image folders in the diffusers layout: mltk and diffusers read each other's.

Two families, chosen by ``model_index.json``: ``PixArtAlphaPipeline`` (a PixArt transformer, a
T5 text encoder) and ``StableDiffusionPipeline`` (a UNet, a CLIP text encoder). A folder holds
``model_index.json`` and one sub-folder per component; it is written by the pipeline class's own
``save_pretrained``, plus ``mltk.json`` (what mltk needs beyond diffusers: the text length, the
autoencoder kind, the run's config) and a ``README.md`` saying how diffusers loads it. A
pixel-space model (the ``identity`` autoencoder) has no ``vae/`` (``"vae": [null, null]``):
diffusers cannot decode it alone, and its README says so. Nothing is unpickled: weights are
safetensors, everything else JSON.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mltk.errors import DataError

from .autoencoders import IdentityAutoencoder, factor_of

MLTK_FILE = "mltk.json"
OLD_MLTK_FILE = "mltk_pixart.json"  # written by mltk before the t2i library existed
FAMILIES = {
    "PixArtAlphaPipeline": {
        "kind": "pixart", "denoiser": "transformer", "text": "t5",
        "classes": {"transformer": "PixArtTransformer2DModel", "text_encoder": "T5EncoderModel"},
    },
    "StableDiffusionPipeline": {
        "kind": "sd", "denoiser": "unet", "text": "clip",
        "classes": {"unet": "UNet2DConditionModel", "text_encoder": "CLIPTextModel"},
    },
}  # fmt: skip
PIPELINES = {spec["kind"]: name for name, spec in FAMILIES.items()}


@dataclass
class Bundle:
    """Everything generation and training need from a folder, loaded."""

    kind: str  # pixart | sd
    denoiser: torch.nn.Module  # PixArtTransformer2DModel or UNet2DConditionModel
    text_encoder: torch.nn.Module | None
    tokenizer: object
    autoencoder: object  # AutoencoderKL or IdentityAutoencoder
    scheduler_config: dict
    max_length: int = 120
    info: dict = field(default_factory=dict)

    @property
    def transformer(self) -> torch.nn.Module:
        """The denoiser of a PixArt folder (the pipeline's name for it)."""
        return self.denoiser

    @property
    def vae_factor(self) -> int:
        return factor_of(self.autoencoder)

    @property
    def patch_size(self) -> int:
        return int(getattr(self.denoiser.config, "patch_size", None) or 1)

    @property
    def native_size(self) -> int:
        """The side in pixels the model was trained at."""
        return int(self.denoiser.config.sample_size) * self.vae_factor

    @property
    def prediction(self) -> str:
        return {"v_prediction": "v", "sample": "x0"}.get(
            self.scheduler_config.get("prediction_type", "epsilon"), "eps"
        )


def quiet_libraries() -> None:
    """diffusers/transformers print loading bars and advice on stderr; mltk owns stderr."""
    import os
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings(
        "ignore", message=".*torch_dtype.*"
    )  # renamed in diffusers 0.36+; both work
    from diffusers.utils import logging as dlog

    from mltk.vl import quiet_transformers

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    quiet_transformers()


def diffusers_pipeline(bundle: Bundle, scheduler=None, *, text: bool = True):
    """The diffusers pipeline object over the bundle's components (no copies made). Without
    ``text`` the pipeline gets no text encoder: prompts arrive as embeddings, in the denoiser's
    dtype (a pipeline with an encoder would cast them to the encoder's)."""
    import diffusers
    from diffusers import DPMSolverMultistepScheduler

    scheduler = scheduler or DPMSolverMultistepScheduler.from_config(bundle.scheduler_config)
    vae = None if isinstance(bundle.autoencoder, IdentityAutoencoder) else bundle.autoencoder
    encoder = bundle.text_encoder if text else None
    if bundle.kind == "pixart":
        pipe = diffusers.PixArtAlphaPipeline(
            tokenizer=bundle.tokenizer, text_encoder=encoder, vae=vae,
            transformer=bundle.denoiser, scheduler=scheduler,
        )  # fmt: skip
    else:
        pipe = diffusers.StableDiffusionPipeline(
            vae=vae, text_encoder=encoder, tokenizer=bundle.tokenizer,
            unet=bundle.denoiser, scheduler=scheduler, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )  # fmt: skip
    if vae is None:  # pixel space: the pipelines assume a VAE's 8x; latents are the pixels here
        pipe.vae_scale_factor = 1
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_pipeline(folder: Path, bundle: Bundle, *, config: dict | None = None,
                  extra: dict | None = None) -> Path:  # fmt: skip
    """Write the diffusers layout atomically: the pipeline class's ``save_pretrained`` into a
    temporary folder, then renamed into place; plus ``mltk.json`` and ``README.md``."""
    from mltk import atomic

    folder = Path(folder)
    identity = isinstance(bundle.autoencoder, IdentityAutoencoder)
    with atomic.build_dir(folder) as tmp:
        diffusers_pipeline(bundle).save_pretrained(str(tmp), safe_serialization=True)
        for weights in tmp.rglob("*.safetensors"):
            atomic.default_mode(weights)  # safetensors creates them 0600
        meta = {
            "kind": bundle.kind,
            "autoencoder": "identity" if identity else "kl",
            "max_length": int(bundle.max_length),
            "config": config,
            **(extra or {}),
        }
        (tmp / MLTK_FILE).write_text(json.dumps(meta, indent=2))
        (tmp / "README.md").write_text(_readme(bundle, identity))
    return folder


def _readme(bundle: Bundle, identity: bool) -> str:
    """What a user opening the folder needs: the diffusers call that fits it, or why none does."""
    pipe, size = PIPELINES[bundle.kind], bundle.native_size
    if identity:
        how = "`mltk.t2i.sampling.generate` in Python"
        if bundle.kind == "pixart":
            how = f'`mltk pixart generate THIS_FOLDER "a prompt"` or {how}'
        title = f"A pixel-space {pipe} folder written by mltk"
        note = ("It diffuses pixels, not latents, so it has no `vae/`: diffusers alone cannot "
                f"decode its samples. Generate with {how}.")  # fmt: skip
        return f"# {title}\n\n{textwrap.fill(note, 80)}\n"
    args = [f"height={size}", f"width={size}"]
    note = (f"It was trained at {size} px; prompts go to its tokenizer as written (mltk does not "
            "clean captions, which would delete location tokens such as `<l5>`).")  # fmt: skip
    if bundle.kind == "pixart":  # its bucket tables are for 256-2048 px; its T5 length is ours
        args += ["use_resolution_binning=False", f"max_sequence_length={int(bundle.max_length)}",
                 "clean_caption=False"]  # fmt: skip
        note += (" These are the pixels that `mltk pixart generate THIS_FOLDER PROMPT --seed 0` "
                 "writes (20 DPM-Solver++ steps, guidance 4.5: both sides' defaults).")  # fmt: skip
    args.append("generator=torch.Generator().manual_seed(0)")
    call = "".join(f"    {a},\n" for a in args)
    return (
        f"# A {pipe} folder written by mltk\n\n"
        f"```python\nimport torch\nfrom diffusers import {pipe}\n\n"
        f'pipe = {pipe}.from_pretrained("THIS_FOLDER")\n'
        f'image = pipe(\n    "a red circle above a blue square",\n{call}).images[0]\n```\n\n'
        f"{textwrap.fill(note, 80)}\n"
    )


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path} does not hold a JSON object")
    return data


def inspect_folder(folder: Path) -> dict:
    """Check a folder's layout without loading weights; DataError naming what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file; give a run or pipeline folder" if folder.exists() else "does not exist"
        raise DataError(f"checkpoint folder {folder} {what}")
    if not (folder / "model_index.json").is_file():
        raise DataError(
            f"{folder} is not a diffusers text-to-image folder (no model_index.json); "
            "pass a run folder from mltk or a PixArt-alpha or Stable Diffusion checkpoint folder"
        )
    index = _read_json(folder / "model_index.json")
    family = FAMILIES.get(index.get("_class_name"))
    if family is None:
        raise DataError(
            f"{folder} holds a {index.get('_class_name')!r}; mltk reads "
            f"{' and '.join(FAMILIES)} folders"
        )
    meta = {}
    for name in (MLTK_FILE, OLD_MLTK_FILE):
        if (folder / name).is_file():
            meta = _read_json(folder / name)
            break
    identity = meta.get("autoencoder") == "identity"
    needed = [family["denoiser"], "text_encoder", "tokenizer", "scheduler"]
    needed += [] if identity else ["vae"]
    missing = [c for c in needed if not (folder / c).is_dir() or not any((folder / c).iterdir())]
    if missing:
        raise DataError(
            f"checkpoint folder {folder} is missing its {', '.join(m + '/' for m in missing)} "
            f"component{'s' if len(missing) > 1 else ''} ({index['_class_name']} needs "
            f"{', '.join(needed)})"
        )
    weights = {family["denoiser"]: "diffusion_pytorch_model", "text_encoder": "model",
               "vae": "diffusion_pytorch_model"}  # fmt: skip
    for comp, stem in weights.items():
        if comp in needed and not list((folder / comp).glob(f"{stem}*.safetensors")):
            raise DataError(
                f"checkpoint folder {folder} has no safetensors weights in {comp}/ "
                "(only .safetensors files are loaded, never pickles)"
            )
    return {"index": index, "meta": meta, "identity": identity, "family": family}


def load_pipeline(
    folder: Path, *, device="cpu", dtype: torch.dtype = torch.float32, text_encoder: bool = True
) -> Bundle:
    """Load a diffusers-layout folder (written by mltk or by diffusers).

    ``text_encoder=False`` leaves the text encoder on disk (``bundle.text_encoder`` is None):
    for prompts whose features are cached; :func:`attach_text_encoder` loads it when needed.
    """
    import diffusers
    from diffusers import AutoencoderKL
    from transformers import AutoTokenizer

    from .text import load_text_encoder, text_dtype

    folder = Path(folder)
    layout = inspect_folder(folder)
    family = layout["family"]
    try:
        cls = getattr(diffusers, family["classes"][family["denoiser"]])
        denoiser = cls.from_pretrained(
            str(folder / family["denoiser"]), torch_dtype=dtype, use_safetensors=True
        )
        encoder = None
        if text_encoder:
            encoder = load_text_encoder(
                folder / "text_encoder", text_dtype(dtype), device, family["text"]
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
    default_length = 120 if family["kind"] == "pixart" else int(tokenizer.model_max_length)
    return Bundle(
        kind=family["kind"],
        denoiser=denoiser.to(device).eval(),
        text_encoder=encoder,
        tokenizer=tokenizer,
        autoencoder=autoencoder,
        scheduler_config=sched,
        max_length=int(layout["meta"].get("max_length", default_length)),
        info={"folder": str(folder), **layout["meta"]},
    )


def attach_text_encoder(
    bundle: Bundle, *, device="cpu", dtype: torch.dtype = torch.float32
) -> None:
    from .text import load_text_encoder, text_dtype

    folder = Path(bundle.info["folder"])
    kind = "t5" if bundle.kind == "pixart" else "clip"
    bundle.text_encoder = load_text_encoder(
        folder / "text_encoder", text_dtype(dtype), device, kind
    )


def folder_fingerprint(folder: Path, subfolders: tuple[str, ...] | None = None) -> str:
    """Identifies a model folder's components (default: every sub-folder) by file names, sizes
    and mtimes (hashing 20 GB of T5-XXL would cost more than the work it keys)."""
    import hashlib

    folder = Path(folder)
    if subfolders is None:
        subfolders = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    h = hashlib.sha256()
    for sub in subfolders:
        for f in sorted((folder / sub).glob("*")):
            st = f.stat()
            h.update(f"{sub}/{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def text_encoder_fingerprint(folder: Path) -> str:
    """The text encoder and tokenizer of a folder (see ``folder_fingerprint``)."""
    return folder_fingerprint(folder, ("text_encoder", "tokenizer"))
