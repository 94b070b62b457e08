"""The bodies of `mltk epic` verbs. A run folder holds ``model/`` (see model.py: Hugging Face
folders for the towers and the generator, the heads, the tokenizer, ``epic.json``),
``eval.json`` (the scores after training) and the training checkpoint of ``--resume``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from mltk import atomic
from mltk.data import world as W
from mltk.errors import DataError, UsageError
from mltk.vl import check_folder, quiet_transformers

from . import data as D
from . import evaluation as E
from . import model as M
from . import training as T
from .config import OBJECTIVES

SHIPPED = Path(__file__).parent / "weights" / "tiny"
EVAL_FILE = "eval.json"


# ----------------------------------------------------------------------------- opening models


class Source:
    """A trained model: an epic run (its ``model/``) or a model folder itself."""

    def __init__(self, path: Path):
        path = Path(path)
        if not path.is_dir():
            raise DataError(
                f"{path} does not exist" if not path.exists() else f"{path} is a file, not a folder"
            )
        self.path = path
        self.folder = path / "model" if M.is_model(path / "model") else path
        if not M.is_model(self.folder):
            raise DataError(
                f"{path} is not an epic run or model folder (epic.json and vision/, text/, "
                "fusion/ Hugging Face folders)"
            )

    def load(self, device=None):
        quiet_transformers()
        try:
            model, tokenizer, meta = M.load(self.folder)
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{self.folder} cannot be loaded: {e}") from None
        return model.to(device).eval(), tokenizer, meta


def open_source(name) -> Source:
    return Source(Path(name))


def scorer_of(meta: dict) -> str:
    """The per-token scorer of a model: its consistency head when training taught it one."""
    extra = OBJECTIVES.get(meta.get("objective", "albef"))
    return "head" if extra is not None and extra[2] == "consistency" else "mlm"


# ----------------------------------------------------------------------------- data


def _data(cfg, warn) -> tuple[D.Pairs, D.Pairs]:
    if cfg.data == "world":
        train = D.world_train(cfg.pairs, cfg.bias)
        test = D.user_pairs(cfg.eval_data, cfg.image_size, warn) if cfg.eval_data else None
        return train, test or D.world_test(cfg.eval_size)
    train = D.user_pairs(Path(cfg.data), cfg.image_size, warn)
    if cfg.eval_data is not None:
        return train, D.user_pairs(cfg.eval_data, cfg.image_size, warn)
    return D.split(train)


def _tokenizer(cfg, train: D.Pairs):
    from transformers import AutoTokenizer

    from mltk.vl.tokenizers import train_tokenizer

    if cfg.text_init is not None:
        check_folder(cfg.text_init, "--text-init", ("bert",), "BERT", tokenizer=True)
        try:
            tok = AutoTokenizer.from_pretrained(cfg.text_init)
        except (OSError, ValueError) as e:
            raise DataError(f"--text-init {cfg.text_init} has no usable tokenizer: {e}") from None
        names = ("pad", "cls", "sep", "mask", "unk")
        missing = [n for n in names if getattr(tok, f"{n}_token_id") is None]
        if missing:
            raise DataError(f"--text-init {cfg.text_init}: its tokenizer has no {missing[0]} token")
        return tok
    corpus = W.corpus() if cfg.data == "world" else [c for cs in train.captions for c in cs]
    return train_tokenizer(corpus, "bert")


def _new_model(cfg, tokenizer, seed: int) -> M.EpicModel:
    from transformers import BertConfig, ViTConfig

    torch.manual_seed(seed)
    vision, text, fusion, generator = M.configs(
        tokenizer,
        width=cfg.width,
        vision_layers=cfg.vision_layers,
        text_layers=cfg.text_layers,
        fusion_layers=cfg.fusion_layers,
        heads=cfg.heads,
        patch=cfg.patch,
        image_size=cfg.image_size,
        generator_fraction=cfg.generator_fraction,
    )
    mean, std = M.CLIP_MEAN, M.CLIP_STD
    if cfg.vision_init is not None:
        check_folder(cfg.vision_init, "--vision-init", ("vit",), "ViT")
        vision = _config(ViTConfig, cfg.vision_init, "ViT")
        mean, std = _normalisation(cfg.vision_init, mean, std)
    if cfg.text_init is not None:
        text = _config(BertConfig, cfg.text_init, "BERT")
        text.num_hidden_layers = cfg.text_layers
        fusion = M.fusion_like(text, vision, cfg.fusion_layers, tokenizer)
        generator = M.generator_like(text, cfg.generator_fraction, len(tokenizer))
    elif cfg.vision_init is not None:
        fusion.encoder_hidden_size = vision.hidden_size
    model = M.EpicModel(
        vision,
        text,
        fusion,
        generator,
        embed_dim=cfg.embed_dim,
        queue=cfg.queue,
        momentum=cfg.momentum,
        mean=mean,
        std=std,
    )
    try:
        if cfg.vision_init is not None:
            M.load_vision(model, cfg.vision_init)
        if cfg.text_init is not None:
            M.load_text(model, cfg.text_init)
    except (OSError, ValueError, RuntimeError) as e:
        raise DataError(f"the towers cannot start from the given folders: {e}") from None
    model.make_momentum()
    return model


def _config(cls, folder: Path, what: str):
    try:
        return cls.from_pretrained(folder)
    except (OSError, ValueError) as e:
        raise DataError(f"{folder} is not a Hugging Face {what} folder: {e}") from None


def _normalisation(folder: Path, mean, std):
    f = Path(folder) / "preprocessor_config.json"
    if f.is_file():
        meta = json.loads(f.read_text())
        return tuple(meta.get("image_mean", mean)), tuple(meta.get("image_std", std))
    return mean, std


# ----------------------------------------------------------------------------- train


def run_train(cfg, rt) -> dict:
    quiet_transformers()
    log, warn = rt.out.log, rt.out.warn
    if cfg.data != "world" and not Path(cfg.data).exists():
        raise DataError(f"--data {cfg.data} does not exist (world, a JSONL file or a folder)")
    source = Source(cfg.init) if cfg.init is not None else None
    train, test = _data(cfg, warn)
    if len(train) < cfg.batch:
        raise DataError(f"--data has {len(train)} pairs, fewer than --batch {cfg.batch}")
    if source is not None:
        model, tokenizer, _ = source.load()
        model.momentum = cfg.momentum
        if cfg.queue != model.queue_size:
            model.reset_queues(cfg.queue)
    else:
        if rt.resumed and (rt.run.path / "tokenizer.json").is_file():
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(rt.run.path)
        else:
            tokenizer = _tokenizer(cfg, train)
        model = _new_model(cfg, tokenizer, rt.seed)
    size = model.vision.config.image_size
    if train.images.shape[1] != size:
        raise DataError(f"--data images are {train.images.shape[1]} px; the model takes {size}")
    model.to(rt.device)
    if rt.dist.is_main:
        tokenizer.save_pretrained(rt.run.path)  # what --resume rebuilds the model with
    opt = None
    start = 0
    if rt.resumed:
        T.trainable(model, T.step_of(cfg, tokenizer))
        opt = T.make_optimizer(model, cfg)
        meta = rt.run.restore_state(model=model, optimizer=opt, log=log)
        start = int(meta["step"])
    log(
        f"EPIC ({cfg.objective}) on {train.name}: {len(train):,} pairs, "
        f"{M.parameter_count(model):,} parameters, {cfg.steps} steps"
    )
    every = max(1, cfg.steps // 10)
    save_every = max(1, cfg.steps // 4)
    t0 = time.perf_counter()
    with rt.out.progress(cfg.steps - start, "training") as bar:

        def on_step(step, opt, row):
            bar.advance(1, loss=round(row["loss"], 3))
            if step % every == 0 or step == cfg.steps:
                log(
                    f"step {step}/{cfg.steps}: "
                    + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "loss")
                )
                rt.run.log_metrics(step, **row)
            if rt.dist.is_main and (step % save_every == 0 or step == cfg.steps):
                rt.run.save_state(model=model, optimizer=opt, step=step)

        out = T.train(
            model,
            tokenizer,
            train,
            cfg,
            rt=rt,
            seed=rt.seed,
            start=start,
            optimizer=opt,
            on_step=on_step,
        )
    seconds = time.perf_counter() - t0
    meta = {
        "objective": cfg.objective,
        "saliency": cfg.saliency,
        "mask_ratio": cfg.mask_ratio,
        "data": train.name,
    }
    result = {
        "run": str(rt.run.path),
        "objective": cfg.objective,
        **{f"train_{k}": round(v, 4) for k, v in out["last"].items()},
    }
    metrics = E.evaluate(model, tokenizer, test, scorer=scorer_of(meta))
    if rt.dist.is_main:
        with atomic.build_dir(rt.run.path / "model") as tmp:
            M.save(model, tmp, tokenizer, meta)
        atomic.write_text(
            rt.run.path / EVAL_FILE,
            json.dumps({"data": test.name, **metrics}, indent=1) + "\n",
        )
    result.update({k: _round(v) for k, v in metrics.items()})
    result["seconds"] = round(seconds, 1)
    return result


def _round(v):
    return round(v, 4) if isinstance(v, float) else v


# ----------------------------------------------------------------------------- eval


def run_eval(cfg, rt) -> dict:
    rows = []
    for src in rt.sources:
        model, tokenizer, meta = src.load(rt.device)
        size = model.vision.config.image_size
        if cfg.eval_data is not None:
            pairs = D.user_pairs(cfg.eval_data, size, rt.out.warn)
        else:
            if size != 32:
                raise UsageError(
                    f"the world's images are 32 px; this model takes {size}: give --eval-data"
                )
            pairs = D.world_test(cfg.eval_size)
        t0 = time.perf_counter()
        metrics = E.evaluate(model, tokenizer, pairs, scorer=scorer_of(meta))
        rows.append(
            {
                "run": str(src.path),
                "objective": meta.get("objective", "?"),
                **{k: _round(v) for k, v in metrics.items()},
                "seconds": round(time.perf_counter() - t0, 2),
            }
        )
    return {"runs": rows}


# ----------------------------------------------------------------------------- check


def _image_spec(spec: str) -> int | Path:
    """world:N as N, or an image file's path (checked before any model is loaded)."""
    if spec.startswith("world:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise UsageError(f"IMAGE {spec!r}: world:N takes a whole number N") from None
        if not 0 <= n < 10_000:
            raise UsageError(f"IMAGE {spec!r}: N must be in [0, 9999]")
        return n
    path = Path(spec)
    if not path.is_file():
        raise DataError(f"IMAGE {spec} does not exist (an image file, or world:N)")
    return path


def _image(spec: int | Path, size: int) -> np.ndarray:
    if isinstance(spec, int):
        if size != 32:
            raise UsageError(f"world images are 32 px; this model takes {size}")
        return D.world_test(spec + 1).images[spec]
    from mltk.data.captioned import _load_image

    try:
        return _load_image(spec, size)
    except Exception as e:  # noqa: BLE001 - any decoder error is the user's file
        raise DataError(f"IMAGE {spec} cannot be read as an image: {e}") from None


def _score(model, tokenizer, images: np.ndarray, captions: list[str], scorer: str, device):
    """(ITM probabilities, per-caption [(word, consistency)]) of aligned images and captions."""
    with torch.no_grad():
        enc = T.tokens(tokenizer, captions, T.text_length(model), device)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        i_states, _ = E.image_states(model, images)
        t_states, _ = model.encode_text(ids, mask)
        itm = E.match_probability(model, t_states, mask, i_states).cpu().numpy()
        bad = E.token_scores(model, tokenizer, ids, mask, i_states, scorer).cpu().numpy()
    special = set(tokenizer.all_special_tokens)
    words = []
    for i in range(len(captions)):
        toks = tokenizer.convert_ids_to_tokens(ids[i].tolist())
        words.append(
            [
                (t, 1 - float(bad[i, j]))
                for j, t in enumerate(toks)
                if mask[i, j] and t not in special
            ]
        )
    return itm, words


def run_check(cfg, rt) -> dict:
    if not cfg.caption.strip():
        raise UsageError("CAPTION is empty")
    spec = _image_spec(cfg.image)
    src = Source(cfg.model) if cfg.model is not None else Source(SHIPPED)
    model, tokenizer, meta = src.load(rt.device)
    image = _image(spec, model.vision.config.image_size)[None]
    scorer = scorer_of(meta)
    itm, words = _score(model, tokenizer, image, [cfg.caption], scorer, rt.device)
    return {
        "tokens": {
            "token": [w for w, _ in words[0]],
            "consistent": [round(c, 3) for _, c in words[0]],
        },
        "itm": round(float(itm[0]), 4),
        "scorer": scorer,
    }


def run_predict(cfg, rt) -> dict:
    model, tokenizer, meta = rt.source.load(rt.device)
    size = model.vision.config.image_size
    pairs = D.user_pairs(cfg.pairs, size, rt.out.warn)
    images = np.repeat(pairs.images, [len(cs) for cs in pairs.captions], axis=0)
    captions = [c for cs in pairs.captions for c in cs]
    owner = [i for i, cs in enumerate(pairs.captions) for _ in cs]
    scorer = scorer_of(meta)
    itm, words = [], []
    for a in range(0, len(captions), 256):
        p, w = _score(
            model, tokenizer, images[a : a + 256], captions[a : a + 256], scorer, rt.device
        )
        itm += [float(x) for x in p]
        words += w
    flagged = [", ".join(f"{t} {c:.2f}" for t, c in ws if c < cfg.threshold) or "-" for ws in words]
    return {
        "predictions": {
            "pair": [owner[i] + 1 for i in range(len(captions))],
            "caption": captions,
            "itm": [round(x, 4) for x in itm],
            "inconsistent": flagged,
        },
        "scorer": scorer,
    }
