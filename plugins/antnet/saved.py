"""A saved model folder: ``antnet.json`` (the architecture, the encoder's kind, a BiLSTM's
vocabulary), ``model.safetensors`` (every weight but a Hugging Face encoder's) and, for an
--encoder model, ``encoder/`` (a Hugging Face folder with its tokenizer, so a run does not
depend on the folder it was trained from). Nothing is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import model as M
from .encoders import BiLSTMEncoder, HFEncoder, Vocabulary

META = "antnet.json"
WEIGHTS = "model.safetensors"
FORMAT = 1


def is_model(folder: Path) -> bool:
    return (Path(folder) / META).is_file() and (Path(folder) / WEIGHTS).is_file()


def save(model: M.AnswerModel, folder: Path, extra: dict | None = None) -> None:
    """Write into ``folder`` (use inside ``mltk.atomic.build_dir``)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    enc = model.encoder
    meta = {"format": FORMAT, "settings": model.settings, "encoder": enc.spec, **(extra or {})}
    state = model.state_dict()
    if isinstance(enc, HFEncoder):
        enc.model.save_pretrained(folder / "encoder", safe_serialization=True)
        enc.tokenizer.save_pretrained(folder / "encoder")
        state = {k: v for k, v in state.items() if not k.startswith("encoder.model.")}
    else:
        meta["vocabulary"] = enc.vocab.tokens
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(folder / WEIGHTS))
    (folder / META).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")


def load(folder: Path) -> tuple[M.AnswerModel, dict]:
    """(model in eval mode, antnet.json) of a saved model folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = json.loads((folder / META).read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{folder / META} has format {meta.get('format')}, not {FORMAT}")
    spec = meta["encoder"]
    if spec["kind"] == "hf":
        encoder = HFEncoder.load(folder / "encoder", False, spec["max_length"])  # frozen to read
    else:
        vocab = Vocabulary(meta["vocabulary"], spec["mode"])
        encoder = BiLSTMEncoder(vocab, spec["embed"], spec["hidden"])
    model = M.AnswerModel(encoder, **meta["settings"])
    missing, unexpected = model.load_state_dict(load_file(str(folder / WEIGHTS)), strict=False)
    missing = [k for k in missing if not k.startswith("encoder.model.")]
    if missing or unexpected:
        raise ValueError(
            f"{folder / WEIGHTS} does not fit its antnet.json "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.eval(), meta
