"""Training examples/s of AntNet over a fine-tuned MiniLM (6 layers, 384 wide) on 50,000
generated examples: the check that waits for a GPU.

    python benchmarks/antnet/gpu_speed.py [--minilm DIR] [--size 50000] [--epochs 1]
        [--device cuda] [--precision bf16] [--batch 64] [--tiny]

With --minilm (a local all-MiniLM-L6-v2 folder) the run is the real one and also reports test
and OOD accuracy; without, the encoder is a randomly initialised BertModel of MiniLM's shape
(the same cost per example: the speed is the measurement) over a word-level tokenizer of the
generated text. The loop is `mltk antnet train`'s (plugins/antnet/training.py) with its
defaults, under autocast at --precision. --tiny shrinks the encoder and the data so that the
script runs on a CPU in seconds (its test). Prints a markdown table and writes gpu_speed.json
beside this file (not with --tiny).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

HERE = Path(__file__).parent


def random_minilm(folder: Path, texts: list[str], tiny: bool) -> Path:
    from transformers import BertConfig, BertModel

    from mltk.vl.tokenizers import train_tokenizer

    tokenizer = train_tokenizer(texts, "bert")
    size = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    if not tiny:  # all-MiniLM-L6-v2's shape
        size = dict(
            hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
        )
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512, **size)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minilm", type=Path, default=None)
    p.add_argument("--size", type=int, default=50_000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args(argv)
    from mltk_plugins.antnet import evaluation as E
    from mltk_plugins.antnet import generator as G
    from mltk_plugins.antnet import training as T
    from mltk_plugins.antnet.config import TrainConfig

    from mltk.vl import quiet_transformers

    quiet_transformers()
    size = 200 if args.tiny else args.size
    data = G.generate({"train": size, "dev": 50 if args.tiny else 500})
    device = torch.device(args.device)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]

    def autocast():
        return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.minilm
        if folder is None:
            texts = [
                t for s in data.values() for e in s for t in (e.question, e.answer, *e.options)
            ]
            folder = random_minilm(Path(tmp) / "minilm", texts, args.tiny)
        cfg = TrainConfig(
            encoder=folder,
            finetune=True,
            epochs=args.epochs,
            patience=args.epochs,
            batch=args.batch,
            train_size=size,
        )
        torch.manual_seed(0)
        model = T.build(cfg, data["train"]).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fitted = T.fit(
            model,
            data["train"],
            data["dev"],
            cfg,
            device=device,
            log=lambda s: print(s, flush=True),
            autocast=autocast,
        )
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    row = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": args.precision,
        "encoder": "all-MiniLM-L6-v2" if args.minilm else "random, MiniLM's shape",
        "train_examples": size,
        "epochs": len(fitted["history"]),
        "batch": args.batch,
        "seconds": seconds,  # training and the dev pass of each epoch
        "examples_per_s": size * len(fitted["history"]) / seconds,
    }
    if args.minilm is not None:
        for split in ("test", "ood"):
            row[f"{split}_accuracy"] = E.score(data[split], E.predict(model, data[split]))[
                "accuracy"
            ]
    print("| device | precision | encoder | examples | epochs | batch | s | examples/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {row['device']} | {row['precision']} | {row['encoder']} | {size:,} | "
        f"{row['epochs']} | {args.batch} | {seconds:.0f} | {row['examples_per_s']:.0f} |"
    )
    if not args.tiny:
        (HERE / "gpu_speed.json").write_text(json.dumps({"rows": [row]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
