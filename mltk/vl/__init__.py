"""Shared image-text pieces on transformers (extra ``vl``: transformers, tokenizers, pillow).

- ``tokenizers``: word-level tokenizers trained on a caption corpus, with the special tokens of
  a model family (T5, BERT, CLIP);
- ``towers``: configs of tiny transformers towers (``CLIPConfig``, ``ViTConfig``,
  ``BertConfig``, BLIP text for fusion): no hand-written ViT or BERT;
- ``contrastive``: symmetric InfoNCE with optional soft targets, gathered across DDP ranks;
- ``retrieval``: recall@k both ways and zero-shot accuracy with prompt ensembles;
- ``datasets``: image-text sets (the shapes world as a stream of chunks, scikit-learn's digits
  with templated captions and held-out templates, folders and JSONL);
- :func:`quiet_transformers`: transformers' loading bars and advice off stderr;
- :func:`check_folder`: a user's Hugging Face folder checked before anything loads from it.

Like ``mltk.t2i``, these modules import torch and transformers at module top: they are imported
only inside command bodies, never by ``mltk --help`` or a plugin's ``plugin.py``.
"""


def quiet_transformers() -> None:
    """transformers prints loading bars and advice on stderr; mltk owns stderr."""
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


def check_folder(
    folder, flag: str, model_types: tuple[str, ...], kind: str, tokenizer: bool = False
) -> dict:
    """A Hugging Face folder of one of ``model_types`` (``kind`` names them to the user), with
    safetensors weights (nothing is unpickled) and, with ``tokenizer``, a tokenizer; its
    config.json, or a DataError naming ``flag`` and what is missing."""
    import json
    from pathlib import Path

    from mltk.errors import DataError

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{flag} {folder} is not a folder")
    try:
        meta = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise DataError(
            f"{flag} {folder} is not a {kind} folder: no readable config.json"
        ) from None
    got = meta.get("model_type") if isinstance(meta, dict) else None
    if got not in model_types:
        raise DataError(
            f"{flag} {folder} is not a {kind} folder: its model_type is {got!r} "
            f"(want {' or '.join(model_types) if len(model_types) < 3 else 'one of ' + ', '.join(model_types)})"
        )
    if not any(folder.glob("*.safetensors")):
        raise DataError(f"{flag} {folder} has no .safetensors weights")
    if tokenizer and not any((folder / n).is_file() for n in ("tokenizer.json", "vocab.txt")):
        raise DataError(f"{flag} {folder} has no tokenizer (tokenizer.json or vocab.txt)")
    return meta
