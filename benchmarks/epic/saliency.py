"""Which saliency measure ranks the words that describe the image above the words that do not.

    OMP_NUM_THREADS=1 python benchmarks/epic/saliency.py [RUN ...] [--captions 200]

For each model (epic runs or model folders; default: the shipped tiny model) and each measure
of `--saliency` (attention, gradient, occlusion, random), on the first dense caption of each
counterfactual test image of the world: the share of captions whose most salient attribute word
(colour, shape, position, count) outranks every "a" and "the", and the seconds per caption.
Prints a markdown table and writes saliency.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HERE = Path(__file__).parent
METHODS = ("attention", "gradient", "occlusion", "random")


def measure(path: Path | None, captions: int) -> list[dict]:
    import torch
    from mltk_plugins.epic import commands as C
    from mltk_plugins.epic import data as D
    from mltk_plugins.epic import objectives as O
    from mltk_plugins.epic import training as T

    src = C.Source(path or C.SHIPPED)
    model, tok, meta = src.load()
    test = D.world_test(captions)
    texts = [cs[0] for cs in test.captions]
    enc = T.tokens(tok, texts, 30)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    with torch.no_grad():
        img, _ = model.encode_image(model.pixels(test.images), momentum=True)
    attribute = {tok.convert_tokens_to_ids(w) for ws in D.ATTRIBUTE_WORDS.values() for w in ws}
    function = {tok.convert_tokens_to_ids(w) for w in ("a", "the")}
    rows = []
    for method in METHODS:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        sal = O.saliency(model, ids, mask, img, O.Tokens.of(tok), method)
        seconds = time.perf_counter() - t0
        wins = []
        for i in range(len(texts)):
            row = ids[i].tolist()
            a = [float(sal[i, j]) for j, t in enumerate(row) if t in attribute]
            f = [float(sal[i, j]) for j, t in enumerate(row) if t in function]
            if a and f:
                wins.append(max(a) > max(f))
        rows.append(
            {
                "model": "shipped" if path is None else str(path),
                "objective": meta.get("objective"),
                "method": method,
                "captions": len(wins),
                "attribute_first": sum(wins) / len(wins),
                "ms_per_caption": 1000 * seconds / len(texts),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--captions", type=int, default=200)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    for path in args.runs or [None]:
        rows += measure(path, args.captions)
    print("| model | objective | measure | captions | attribute word first | ms per caption |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['model']} | {r['objective']} | {r['method']} | {r['captions']} | "
            f"{r['attribute_first']:.3f} | {r['ms_per_caption']:.1f} |"
        )
    from mltk import atomic

    atomic.write_text(HERE / "saliency.json", json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
