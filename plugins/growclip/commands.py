"""The bodies of `mltk growclip` verbs: arrivals (search, grow, inherit, train, score), eval and
predict. A run folder holds ``model/`` (a Hugging Face CLIP folder with its tokenizer and the
shared encoder's ties), ``growth.json`` (one record per arrival) and, for PIM's extrapolation,
``change.safetensors`` (the last arrival's end minus start).
"""

from __future__ import annotations

import copy
import io
import json
import time
from pathlib import Path

import numpy as np
import torch

from mltk import atomic
from mltk.errors import DataError, UsageError
from mltk.vl import quiet_transformers

from . import data as D
from . import growth as G
from . import search as S
from . import training as T
from .config import EMBEDDED, GrowConfig, TrainConfig, momentum
from .ops import check_widths, describe, parse_schedule

HISTORY = "growth.json"
CHANGE = "change.safetensors"


# ----------------------------------------------------------------------------- opening models


class Source:
    """A model to start from or score: a growclip run or a Hugging Face CLIP folder."""

    def __init__(self, path: Path):
        path = Path(path)
        if not path.is_dir():
            raise DataError(
                f"{path} does not exist" if not path.exists() else f"{path} is a file, not a folder"
            )
        self.path = path
        self.history: list[dict] = []
        self.data = None
        self.first = 0  # arrivals the run continued from another (growth.json's "first")
        if (path / "model" / "config.json").is_file() and (path / HISTORY).is_file():
            self.folder = path / "model"
            record = json.loads((path / HISTORY).read_text())
            self.history, self.data = record["arrivals"], record.get("data")
            self.first = int(record.get("first", 0))
        elif _is_clip_folder(path):
            self.folder = path
        else:
            raise DataError(
                f"{path} is neither a growclip run nor a Hugging Face CLIP folder (a config.json "
                "of model_type clip and its weights)"
            )
        if not any((self.folder / n).is_file() for n in ("tokenizer.json", "vocab.json")):
            raise DataError(f"{self.folder} has no tokenizer (tokenizer.json or vocab.json)")

    def load(self, device=None):
        from transformers import AutoTokenizer

        try:
            model = G.load_model(self.folder)
            tokenizer = AutoTokenizer.from_pretrained(self.folder)
        except ValueError as e:
            raise DataError(f"{self.folder}: {e}") from None
        except OSError as e:
            raise DataError(f"{self.folder} cannot be loaded as a CLIP model: {e}") from None
        return model.to(device).eval(), tokenizer


def _is_clip_folder(path: Path) -> bool:
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    try:
        meta = json.loads(cfg.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
    return isinstance(meta, dict) and meta.get("model_type") == "clip" and has_weights


def open_source(name) -> Source:
    return Source(Path(name))


# ----------------------------------------------------------------------------- data


def _chunk(cfg: TrainConfig, data: str, k: int, warn, size: int | None = None) -> D.Pairs:
    """Arrival ``k``: the embedded stream's, or the user's file read at ``size`` pixels (the
    model's input size; default --image-size)."""
    if data == "world":
        n = D.chunk_sizes(cfg.first_chunk, k + 1)[k]
        return D.world_chunk(k, n, seed=0, curriculum=cfg.curriculum)
    if data == "digits":
        if k >= D.DIGIT_ARRIVALS:
            raise DataError(
                f"digits comes in {D.DIGIT_ARRIVALS} arrivals; arrival {k + 1} was asked for"
            )
        return D.digits_chunk(k, D.DIGIT_ARRIVALS)
    return D.user_chunk(Path(data), size or cfg.image_size, warn=warn)


def _benchmark(data: str, cfg, image_size: int, warn, seed=D.EVAL_SEED) -> D.Benchmark:
    if cfg.eval_images is not None:
        return D.Benchmark(
            [D.folder_task(cfg.eval_images, image_size, cfg.eval_classes, warn)], None
        )
    if data == "world":
        return D.world_benchmark(cfg.eval_size if seed == D.EVAL_SEED else 300, seed)
    if data == "digits":
        return D.digits_benchmark()
    return D.Benchmark([], None)


def _validation(data: str, cfg, new: D.Pairs, image_size: int, warn):
    """What the search scores candidates on, and the new pairs left to train on."""
    if cfg.eval_images is not None or data == "world":
        return _benchmark(data, cfg, image_size, warn, seed=D.VAL_SEED), new
    n = min(200, max(1, len(new) // 10))  # held out of the arrival's own pairs
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(new))
    val = D.Pairs(new.images[idx[:n]], [new.captions[i][:1] for i in idx[:n]], "held-out")
    train = D.Pairs(new.images[idx[n:]], [new.captions[i] for i in idx[n:]], new.name)
    return D.Benchmark([], val), train  # retrieval R@1 on pairs held out of the arrival


def _val_score(metrics: dict) -> float:
    if "zero_shot_mean" in metrics and not np.isnan(metrics["zero_shot_mean"]):
        return metrics["zero_shot_mean"]
    return (metrics.get("i2t_r@1", 0.0) + metrics.get("t2i_r@1", 0.0)) / 2


# ----------------------------------------------------------------------------- arrivals


def _new_model(cfg: TrainConfig, data: str, first: D.Pairs, seed: int):
    from transformers import CLIPModel

    from mltk.vl.tokenizers import train_tokenizer
    from mltk.vl.towers import clip_config

    corpus = D.corpus_for(data) if data in EMBEDDED else [c for cs in first.captions for c in cs]
    tokenizer = train_tokenizer(corpus, "clip")
    config = clip_config(
        tokenizer,
        width=cfg.width,
        layers=cfg.layers,
        heads=cfg.heads,
        image_size=cfg.image_size,
        patch=cfg.patch,
        projection=cfg.width,
        max_positions=T.TEXT_LENGTH,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    return CLIPModel(config), tokenizer


def _settings(cfg: TrainConfig, steps: int | None = None) -> T.TrainSettings:
    return T.TrainSettings(
        steps=steps or cfg.steps,
        batch=cfg.batch,
        lr=cfg.lr,
        warmup=cfg.warmup,
        replay=cfg.replay,
        weight_decay=cfg.weight_decay,
    )


def _inherit(grown, ops, cfg: GrowConfig, change, seed: int):
    if not isinstance(cfg, GrowConfig) or cfg.inherit == "plain":
        return grown
    m = momentum(cfg)
    grown_change = None
    if cfg.pim_rule == "extrapolate" and change is not None:
        grown_change = _grow_change(change, ops, cfg, seed)
    return G.inherit(grown, m, cfg.pim_rule, change=grown_change, seed=seed)


def _grow_change(change, ops, cfg, seed):
    """The previous arrival's change mapped by the same operators (no noise): a linear map."""
    delta = copy.deepcopy(change["model"])
    with torch.no_grad():
        for name, p in delta.named_parameters():
            p.copy_(change["tensors"][name])
    grown = S.apply(delta, ops, depth_init=cfg.depth_init, noise=0.0, seed=seed)
    return {k: v.detach() for k, v in grown.named_parameters()}


class _Growth:
    """One arrival's growth: build (grow and inherit), measure and proxy-train a candidate."""

    def __init__(self, cfg, rt, tokenizer, train_new, old, val, settings, seed, change):
        self.cfg, self.rt, self.tokenizer = cfg, rt, tokenizer
        self.train_new, self.old, self.val = train_new, old, val
        self.settings, self.seed, self.change = settings, seed, change
        self.proxy_steps = min(getattr(cfg, "proxy_steps", cfg.steps), cfg.steps)

    def build(self, model, ops):
        cfg = self.cfg
        try:
            grown = S.apply(
                model,
                ops,
                depth_init=getattr(cfg, "depth_init", "zero"),
                noise=getattr(cfg, "widen_noise", 0.0),
                seed=self.seed,
            )
        except ValueError as e:
            raise UsageError(f"growth {describe(ops)} of {_arch(model)}: {e}") from None
        return _inherit(grown.to(self.rt.device), ops, cfg, self.change, self.seed)

    def measure(self, model):
        return G.parameter_count(model), T.flops_per_pair(model, T.text_length(model)) / 1e9

    def proxy(self, model):
        out = T.train(
            model,
            self.tokenizer,
            self.train_new,
            self.old,
            self.settings,
            rt=self.rt,
            seed=self.seed,
            stop=self.proxy_steps,
        )
        model._mltk_state = out  # the optimizer goes on with the winner
        fwd = T.flops_per_pair(model, T.text_length(model))
        score = _val_score(T.evaluate(model, self.tokenizer, self.val))
        return score, 3 * self.proxy_steps * self.cfg.batch * fwd


def run_arrivals(cfg: TrainConfig, rt, grow: bool) -> dict:
    from safetensors.torch import load_file

    quiet_transformers()
    log, warn = rt.out.log, rt.out.warn
    device = rt.device
    source = Source(cfg.init) if cfg.init is not None else None
    history: list[dict] = []
    model = tokenizer = None
    data = cfg.data
    change = None
    first = 0  # arrivals done before this call (a continued stream)
    if rt.resumed and (rt.run.path / HISTORY).is_file():
        rt.run.restore_state(model=torch.nn.Module(), log=log)  # RNG and metrics
        source = Source(rt.run.path)
        history, first = source.history, source.first
    elif source is not None and source.history:
        history = copy.deepcopy(source.history)
        first = len(history)
        if cfg.data in EMBEDDED and source.data and "data" not in rt.given:
            data = source.data
    if source is not None:
        model, tokenizer = source.load(device)
        if (source.path / CHANGE).is_file():
            change = {"tensors": load_file(str(source.path / CHANGE)), "model": model}
    if data not in EMBEDDED and not Path(data).exists():
        raise DataError(f"--data {data} does not exist (world, digits, a folder or a JSONL file)")
    schedule = None
    if isinstance(cfg, GrowConfig) and cfg.schedule:
        schedule = parse_schedule(cfg.schedule)
        widths = (
            (model.config.text_config.hidden_size, model.config.vision_config.hidden_size)
            if model is not None
            else (cfg.width, cfg.width)
        )
        try:
            check_widths(schedule, *widths)
        except ValueError as e:
            raise UsageError(f"--schedule: {e}") from None
    todo = range(len(history), first + cfg.arrivals)
    seen = sum(h["pairs"] for h in history)
    cumulative = history[-1]["cumulative_flops"] if history else 0.0
    test_bench = None
    t_total = time.perf_counter()
    for k in todo:
        t0 = time.perf_counter()
        image_size = model.config.vision_config.image_size if model is not None else cfg.image_size
        new = _chunk(cfg, data, k, warn, image_size)
        if len(new) < cfg.batch:
            raise DataError(
                f"arrival {k + 1} ({new.name}) has {len(new)} pairs, fewer than --batch {cfg.batch}"
            )
        old = _replay(cfg, data, history, k, warn, image_size)
        seen += len(new)
        if new.images.shape[1] != image_size:
            raise DataError(
                f"--data images are {new.images.shape[1]} px but the model takes {image_size}"
            )
        val, train_new = _validation(data, cfg, new, image_size, warn)
        seed = rt.seed * 1000 + k
        settings = _settings(cfg)
        search_rows: list[dict] = []
        spent = 0.0
        restart = getattr(cfg, "each_arrival", "continue") == "restart"
        if restart and old is not None:  # from scratch on every pair seen, drawn uniformly
            train_new, old = old.concat(train_new), None
        if model is None or restart:
            model, tokenizer = _new_model(cfg, data, new, seed)
            model.to(device)
            ops: list[str] = []
            log(f"arrival {k + 1}: {len(new):,} pairs; a new model ({_arch(model)})")
            state = None
        else:
            if not grow:
                candidates = [[]]
            elif schedule is not None:  # one entry per arrival that starts from a model
                candidates = [schedule.pop(0) if schedule else []]
            else:
                candidates = S.space(_shareable(model))
            budget = int(cfg.params_per_pair * seen) if grow and schedule is None else 1 << 62
            step = _Growth(cfg, rt, tokenizer, train_new, old, val, settings, seed, change)
            if len(candidates) == 1:
                ops = candidates[0]
                model = step.build(model, ops)
                state = None
                log(
                    f"arrival {k + 1}: {len(new):,} pairs; growth {describe(ops)} -> {_arch(model)}"
                )
            else:
                log(
                    f"arrival {k + 1}: {len(new):,} pairs; searching {len(candidates)} growths "
                    f"(budget {budget:,} parameters)"
                )
                best, rows = S.search(
                    model,
                    candidates,
                    budget=budget,
                    grow=step.build,
                    measure=step.measure,
                    proxy=step.proxy,
                    lam=cfg.lam,
                    log=log,
                )
                spent = sum(r.train_flops for r in rows)
                search_rows = [
                    {
                        "growth": describe(r.ops),
                        "params": r.params,
                        "gflops_pair": r.gflops,
                        "zero_shot": r.accuracy,
                        "score": r.score,
                    }
                    for r in rows
                ]
                ops, model = best.ops, best.model
                state = getattr(model, "_mltk_state", None)  # None: taken untrained (alone)
                spent -= best.train_flops  # the winner's proxy steps are its first steps
                log(f"  chosen: {describe(ops)} -> {_arch(model)}")
        start = {k_: v.detach().clone() for k_, v in model.named_parameters()}
        fwd = T.flops_per_pair(model, T.text_length(model))
        out = T.train(
            model,
            tokenizer,
            train_new,
            old,
            settings,
            rt=rt,
            seed=seed,
            state=state,
            log=log,
            log_every=max(1, cfg.steps // 4),
        )
        spent += 3 * cfg.steps * cfg.batch * fwd
        cumulative += spent
        if test_bench is None:
            test_bench = _benchmark(data, cfg, image_size, warn)
        metrics = T.evaluate(
            model, tokenizer, test_bench if test_bench.tasks or test_bench.retrieval else val
        )
        record = {
            "arrival": k + 1,
            "data": new.name,
            "pairs": len(new),
            "growth": describe(ops),
            "arch": _arch(model),
            "params": G.parameter_count(model),
            "gflops_pair": fwd / 1e9,
            "train_flops": spent,
            "cumulative_flops": cumulative,
            "loss": out["loss"],
            "seconds": round(time.perf_counter() - t0, 1),
            **metrics,
            "search": search_rows,
        }
        if data not in EMBEDDED:
            record["source"] = str(Path(data).resolve())
        history.append(record)
        log(
            f"  zero-shot {metrics.get('zero_shot_mean', float('nan')):.3f}, i2t R@1 "
            f"{metrics.get('i2t_r@1', float('nan')):.3f}, {record['params']:,} parameters, "
            f"{cumulative / 1e12:.3g} TFLOPs so far"
        )
        ends = {
            k_: (v.detach() - start[k_]).contiguous().cpu() for k_, v in model.named_parameters()
        }
        if rt.dist.is_main:
            _save(rt.run.path, model, tokenizer, history, data, first, ends)
            # the resume point: RNG and the arrivals done (the weights are model/)
            rt.run.save_state(model=torch.nn.Module(), step=k + 1, meta={"arrivals": k + 1})
            rt.run.log_metrics(
                k + 1,
                **{m: v for m, v in metrics.items()},
                params=record["params"],
                cumulative_flops=cumulative,
            )
        change = {"tensors": ends, "model": model}
    seconds = time.perf_counter() - t_total
    return _result(rt.run.path, history, seconds)


def _replay(cfg, data, history, k, warn, size) -> D.Pairs | None:
    """Every pair of the earlier arrivals (regenerated for the embedded stream, re-read for
    files)."""
    if k == 0 or cfg.replay == 0:
        return None
    parts = []
    if data in EMBEDDED:
        parts = [_chunk(cfg, data, j, warn) for j in range(k)]
    else:
        for h in history:
            src = h.get("source")
            if src and Path(src).exists():
                parts.append(D.user_chunk(Path(src), size, warn=warn))
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out.concat(p)
    return out


def _shareable(model) -> bool:
    try:
        G.check_shareable(model.config)
        return True
    except ValueError:
        return False


def _arch(model) -> str:
    return G.arch_of(model.config, G.shared_count(model)).describe()


def _save(run: Path, model, tokenizer, history, data, first, ends) -> None:
    with atomic.build_dir(run / "model") as tmp:
        G.save_model(model, tmp, tokenizer)
    from safetensors.torch import save as to_bytes

    atomic.write_bytes(run / CHANGE, to_bytes(ends))
    atomic.write_text(
        run / HISTORY,
        json.dumps({"data": data, "first": first, "arrivals": history}, indent=1) + "\n",
    )


def _sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def _result(run: Path, history: list[dict], seconds: float) -> dict:
    table = {
        "arrival": [h["arrival"] for h in history],
        "pairs": [h["pairs"] for h in history],
        "growth": [h["growth"] for h in history],
        "params": [h["params"] for h in history],
        "tflops_total": [_sig(h["cumulative_flops"] / 1e12) for h in history],
        "zero_shot": [round(h.get("zero_shot_mean", float("nan")), 3) for h in history],
    }
    last = history[-1]
    return {
        "run": str(run),
        "arrivals": table,
        "architecture": last["arch"],
        "params": last["params"],
        "zero_shot_mean": last.get("zero_shot_mean"),
        **{k: v for k, v in last.items() if k.startswith("zero_shot_") and k != "zero_shot_mean"},
        "cumulative_flops": last["cumulative_flops"],
        "seconds": round(seconds, 1),
    }


# ----------------------------------------------------------------------------- eval, predict


def run_eval(cfg, rt) -> dict:
    quiet_transformers()
    rows = []
    for src in rt.sources:
        model, tokenizer = src.load(rt.device)
        data = cfg.data if cfg.data != "auto" else (src.data or "world")
        size = model.config.vision_config.image_size
        bench = _benchmark(data, cfg, size, rt.out.warn)
        if not bench.tasks and bench.retrieval is None:
            raise UsageError(f"eval on {data} needs --eval-images (a folder of class folders)")
        t0 = time.perf_counter()
        metrics = T.evaluate(model, tokenizer, bench)
        last = src.history[-1] if src.history else {}
        rows.append(
            {
                "run": str(src.path),
                "architecture": _arch(model),
                "params": G.parameter_count(model),
                "gflops_pair": T.flops_per_pair(model, T.text_length(model)) / 1e9,
                "cumulative_flops": last.get("cumulative_flops"),
                **metrics,
                "seconds": round(time.perf_counter() - t0, 2),
            }
        )
    return {"runs": rows}


def run_predict(cfg, rt) -> dict:
    from mltk.data.captioned import IMAGE_SUFFIXES, _load_image

    quiet_transformers()
    src = rt.source
    model, tokenizer = src.load(rt.device)
    size = model.config.vision_config.image_size
    path = Path(cfg.images)
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    )
    if not files:
        raise DataError(f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images, names = [], []
    for f in files:
        try:
            images.append(_load_image(f, size))
            names.append(f.name)
        except Exception as e:  # noqa: BLE001 - one unreadable file is skipped and named
            rt.out.warn(f"skipped {f.name}: {e}")
    if not images:
        raise DataError(f"no readable image in {path}")
    images = np.stack(images)
    if cfg.classes:
        classes = list(cfg.classes)
        prompts = [[t.format(c) for t in D.USER_TEMPLATES] for c in classes]
    elif (src.data or "world") == "world":
        task = D.world_benchmark(12).tasks[0]
        classes, prompts = task.classes, task.prompts
    elif src.data == "digits":
        task = D.digits_benchmark().tasks[0]
        classes, prompts = task.classes, task.prompts
    else:
        raise UsageError("give --classes: the labels to choose from")
    img = T.encode_images(model, images)
    emb = T.class_texts(model, tokenizer, prompts)
    img_n = img / np.linalg.norm(img, axis=1, keepdims=True)
    scale = float(model.logit_scale.detach().exp().clamp(max=100))
    logits = scale * img_n @ emb.T
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    best = prob.argmax(1)
    if cfg.embeddings is not None:
        buf = io.BytesIO()
        np.save(buf, img.astype(np.float32))
        atomic.write_bytes(cfg.embeddings, buf.getvalue())
    return {
        "predictions": {
            "image": names,
            "label": [classes[i] for i in best],
            "probability": [round(float(prob[i, b]), 4) for i, b in enumerate(best)],
        }
    }
