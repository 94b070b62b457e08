"""The bodies of `mltk antnet` verbs. A run folder holds ``model/`` (saved.py), ``eval.json``
(the scores of the last eval, the generated test and OOD sets after training) and
``confusion.png``.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import torch

from mltk import atomic
from mltk.errors import DataError, UsageError

from . import evaluation as E
from . import generator as G
from . import records as R
from . import saved
from . import training as T

EVAL_FILE = "eval.json"
PLOT_FILE = "confusion.png"
DEMO = Path(__file__).parent / "templates" / "en-demo.jsonl"


class Source:
    """A trained model: an antnet run (its ``model/``) or a model folder itself."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(
                f"{path} does not exist"
                if not self.path.exists()
                else f"{path} is a file, not a folder"
            )
        self.folder = self.path / "model" if saved.is_model(self.path / "model") else self.path
        if not saved.is_model(self.folder):
            raise DataError(
                f"{path} is not an antnet run or model folder (no antnet.json and "
                "model.safetensors)"
            )

    def load(self, device):
        try:
            model, meta = saved.load(self.folder)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(
                f"{self.folder} cannot be loaded (saved by another version of antnet?): {first}"
            ) from None
        return model.to(device), meta

    def config(self) -> dict:
        f = self.path / "config.json"
        return json.loads(f.read_text()).get("config", {}) if f.is_file() else {}


def open_source(name) -> Source:
    return Source(Path(name))


# ----------------------------------------------------------------------------- data


def splits(cfg) -> dict[str, list[R.Example]]:
    """train and dev, plus test and ood for the generated set."""
    if cfg.data == "generated":
        try:
            data = G.generate({"train": cfg.train_size}, seed=cfg.data_seed, language=cfg.language)
        except FileNotFoundError as e:
            raise DataError(str(e)) from None
        if cfg.dev_data is not None:
            data["dev"] = R.read(cfg.dev_data)
        return data
    if not Path(cfg.data).exists():
        raise DataError(f"--data {cfg.data} does not exist (generated, or a JSONL/CSV file)")
    train = R.read(Path(cfg.data))
    if cfg.dev_data is not None:
        return {"train": train, "dev": R.read(cfg.dev_data)}
    if len(train) < 20:
        raise DataError(f"--data has {len(train)} examples; give at least 20 (or --dev-data)")
    order = list(range(len(train)))
    random.Random(f"antnet-dev-{cfg.data_seed}").shuffle(order)
    cut = max(1, len(train) // 10)  # the authors hold out 10% of training for validation
    return {"train": [train[i] for i in order[cut:]], "dev": [train[i] for i in order[:cut]]}


def generated_tests(config: dict) -> dict[str, list[R.Example]]:
    """The generated test and OOD sets a run's config names (the same for every train size)."""
    data = G.generate(
        {"train": 0, "dev": 0},
        seed=config.get("data_seed", 0),
        language=config.get("language", "en"),
    )
    return {"test": data["test"], "ood": data["ood"]}


# ----------------------------------------------------------------------------- train


def train_model(cfg, rt):
    """Train on --data; save into the run; score test and OOD where generated."""
    log = rt.out.log
    data = splits(cfg)
    log(
        f"training {cfg.architecture} on {len(data['train'])} examples "
        f"({'BiLSTM' if cfg.encoder is None else cfg.encoder}), dev {len(data['dev'])}"
    )
    torch.manual_seed(rt.seed)
    if cfg.init is not None:
        model = start_from(Source(cfg.init), cfg, rt)
    else:
        model = T.build(cfg, data["train"])
    main = rt.dist.is_main

    def on_epoch(row):
        if main:
            rt.run.log_metrics(row["epoch"], **row)

    start = time.perf_counter()
    fitted = T.fit(
        model,
        data["train"],
        data["dev"],
        cfg,
        device=rt.device,
        dist=rt.dist,
        log=log,
        on_epoch=on_epoch,
        autocast=rt.autocast,
        save=rt.run.save_state if main else None,
        restore=(lambda **o: rt.run.restore_state(log=log, **o)) if rt.resumed else None,
    )
    seconds = time.perf_counter() - start
    tests = {k: v for k, v in data.items() if k in ("test", "ood")}
    scores = {k: E.score(v, E.predict(model, v)) for k, v in tests.items()}
    result = {
        "run": str(rt.run.path) if main else None,
        "train_examples": len(data["train"]),
        "epochs": len(fitted["history"]),
        "best_epoch": fitted["best_epoch"],
        "train_seconds": round(seconds, 1),
        "dev_macro_f1": fitted["best_dev_macro_f1"],
        **{f"{k}_accuracy": s["accuracy"] for k, s in scores.items()},
        **{f"{k}_macro_f1": s["macro_f1"] for k, s in scores.items()},
    }
    if main:
        with atomic.build_dir(rt.run.path / "model") as tmp:
            saved.save(model, tmp, {"trained_on": cfg.data, "language": cfg.language})
        if scores:
            _write_eval(rt.run.path, scores, "generated")
            E.plot_confusion(scores, rt.run.path / PLOT_FILE, f"antnet: {rt.run.path.name}")
        rt.record(train_seconds=round(seconds, 1))
    return model, result


def start_from(source: Source, cfg, rt):
    """A saved model to train on: its architecture and encoder win over the options'."""
    from .encoders import HFEncoder

    model, meta = source.load(rt.device)
    mine = {k: getattr(cfg, k) for k in model.settings if k in rt.given}
    differ = [k for k, v in mine.items() if v != model.settings[k]]
    if differ:
        flags = ", ".join("--" + k.replace("_", "-") for k in differ)
        rt.out.warn(f"--init {source.path} keeps its own {flags}")
    if cfg.finetune:
        if not isinstance(model.encoder, HFEncoder):
            raise UsageError(
                f"--init {source.path} has a BiLSTM, which always trains; leave out --finetune"
            )
        model.encoder.set_finetune(True)
    return model


def run_train(cfg, rt) -> dict:
    return train_model(cfg, rt)[1]


def _write_eval(folder: Path, scores: dict, data: str) -> None:
    atomic.write_text(folder / EVAL_FILE, json.dumps({"data": data, "scores": scores}, indent=1))


# ----------------------------------------------------------------------------- eval


def run_eval(cfg, rt) -> dict:
    rows, phenomena, confusion = [], [], []
    for source in rt.sources:
        model, _ = source.load(rt.device)
        if cfg.data is not None:
            tests = {"data": R.read(cfg.data)}
        else:
            tests = generated_tests(source.config())
        scores = {k: E.score(v, E.predict(model, v, cfg.batch)) for k, v in tests.items()}
        name = str(source.path)
        for split, s in scores.items():
            rows.append(
                {
                    "run": name,
                    "split": split,
                    "n": s["n"],
                    "accuracy": s["accuracy"],
                    "macro_f1": s["macro_f1"],
                }
            )
            for k, p in s["phenomena"].items():
                phenomena.append(
                    {
                        "run": name,
                        "split": split,
                        "phenomenon": k,
                        "n": p["n"],
                        "accuracy": p["accuracy"],
                    }
                )
            for true, row in s["confusion"].items():
                if sum(row.values()):  # the predicted classes, with their counts
                    predicted = {k: n for k, n in row.items() if n}
                    confusion.append(
                        {"run": name, "split": split, "true": true, "predicted": predicted}
                    )
        if cfg.plot and atomic.writable(source.path):
            E.plot_confusion(scores, source.path / PLOT_FILE, f"antnet: {source.path.name}")
            _write_eval(source.path, scores, str(cfg.data or "generated"))
    return {"runs": rows, "phenomena": phenomena, "confusion": confusion}


# ----------------------------------------------------------------------------- answer / predict


def _inputs(cfg) -> tuple[list[R.Example], str]:
    if getattr(cfg, "input", None) is not None:
        return R.read(cfg.input, need_label=False), str(cfg.input)
    if getattr(cfg, "answer", None) is not None:
        row = {"question": cfg.question, "options": list(cfg.options), "answer": cfg.answer}
        return [R.example(row, "the given answer", need_label=False)], "command line"
    return R.read(DEMO), "demo"


def _explain(tokens: list, k: int) -> list:
    """The k tokens of highest weight, as [token, weight] pairs in the text's order (the
    command line prints them as "second 0.99, one 0.97")."""
    top = sorted(range(len(tokens)), key=lambda i: -tokens[i][1])[:k]
    return [[tokens[i][0], round(tokens[i][1], 3)] for i in sorted(top)]


def answers(model, examples, cfg, batch: int = 64) -> dict:
    """Per answer: the label, its confidence and the answer words that decided it (the
    relevance weights), the class and option probabilities and the skeleton weights."""
    preds = E.predict(model, examples, batch)
    rows = []
    for e, p in zip(examples, preds):
        conf = p.probabilities[p.label.kind]
        if p.label.kind == "select":
            conf *= min(p.option_probabilities[i] for i in p.label.chosen)
        row = {
            "question": e.question,
            "options": list(e.options),
            "answer": e.answer,
            "label": p.label.text(e.options),
            "confidence": conf,
        }
        if e.label is not None:
            row["truth"] = e.label.text(e.options)
        row["relevant"] = _explain(p.relevance, cfg.explain)
        row["skeleton"] = _explain(p.skeleton, cfg.explain)
        row["probabilities"] = {k: round(v, 4) for k, v in p.probabilities.items()}
        row["option_probabilities"] = {
            o: round(v, 4) for o, v in zip(e.options, p.option_probabilities)
        }
        rows.append(row)
    result = {"answers": rows}
    labelled = [(e, p) for e, p in zip(examples, preds) if e.label is not None]
    if labelled:
        s = E.score([e for e, _ in labelled], [p for _, p in labelled])
        result.update(labelled=s["n"], accuracy=s["accuracy"], macro_f1=s["macro_f1"])
    if cfg.output is not None:
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        atomic.write_text(cfg.output, "\n".join(lines) + "\n")
        result["output"] = str(cfg.output)
    return result


def run_answer(cfg, rt) -> dict:
    examples, where = _inputs(cfg)
    if rt.sources:
        model, _ = rt.sources[0].load(rt.device)
        run = str(rt.sources[0].path)
    else:
        rt.out.log("no RUN given: training a model first (pass a run folder to reuse one)")
        model, trained = train_model(cfg, rt)
        run = trained["run"]
    rt.out.log(f"labelling {len(examples)} answer{'s' if len(examples) != 1 else ''} ({where})")
    result = {"run": run, **answers(model, examples, cfg)}
    if not rt.sources:  # what the model just trained scores on the generated sets
        result.update({k: v for k, v in trained.items() if k.endswith("_accuracy")})
    return result


def run_predict(cfg, rt) -> dict:
    model, _ = rt.source.load(rt.device)
    examples = R.read(cfg.input, need_label=False)
    return {"run": str(rt.source.path), **answers(model, examples, cfg, cfg.batch)}
