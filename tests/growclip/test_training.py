"""FLOPs against a hand count, the search against a rigged score, the loss against a hand
computation, and two gloo processes against one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mltk_plugins.growclip import search as S
from mltk_plugins.growclip import training as T


def test_flop_counter_matches_a_hand_count_for_one_layer(tiny):
    from torch.utils.flop_counter import FlopCounterMode

    layer = tiny.vision_model.encoder.layers[0]
    L, d = 17, 32  # tokens, width (MLP 4d)
    counted = {}
    for impl in ("eager", "sdpa"):
        layer.self_attn.config._attn_implementation = impl
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            layer(torch.randn(1, L, d), attention_mask=None)
        counted[impl] = counter.get_total_flops()
    # q, k, v, out: 4 x 2 L d^2; scores and weighted sum: 2 x 2 L^2 d; MLP: 2 x 2 L d (4d)
    assert counted["eager"] == 8 * L * d * d + 4 * L * L * d + 16 * L * d * d
    # why flops_per_pair counts with eager attention: the CPU SDPA kernel is not counted
    assert counted["sdpa"] == 24 * L * d * d


def test_flops_per_pair_grow_as_the_architecture_says(tiny):
    base = T.flops_per_pair(tiny, 16)
    deeper = T.flops_per_pair(S.apply(tiny, ["depth+1:vision"]), 16)
    L, d = 65, 32  # 8x8 patches + the class token
    assert deeper - base == 24 * L * d * d + 4 * L * L * d


def test_search_picks_the_winner_of_a_rigged_score_within_the_budget():
    scores = {"none": 0.1, "depth+1": 0.5, "width2": 0.9, "shared+1": 0.4}
    params = {"none": 10, "depth+1": 20, "width2": 1000, "shared+1": 15}
    flops = {"none": 1.0, "depth+1": 2.0, "width2": 4.0, "shared+1": 1.0}

    def key(m):
        return S.describe(m)

    run = dict(
        grow=lambda model, ops: ops,
        measure=lambda m: (params[key(m)], flops[key(m)]),
        proxy=lambda m: (scores[key(m)], 7.0),
    )
    cands = [[], ["depth+1"], ["width2"], ["shared+1"]]
    best, rows = S.search(None, cands, budget=10_000, lam=0.0, **run)
    assert best.ops == ["width2"] and len(rows) == 4
    best, rows = S.search(None, cands, budget=100, lam=0.0, **run)  # width2 is over budget
    assert best.ops == ["depth+1"] and [r.ops for r in rows] == [[], ["depth+1"], ["shared+1"]]
    best, _ = S.search(None, cands, budget=100, lam=0.2, **run)  # 0.5 - 0.4 < 0.4 - 0.2
    assert best.ops == ["shared+1"] and best.score == pytest.approx(0.2)
    assert best.model == ["shared+1"]


def test_space_has_no_duplicate_architectures_and_respects_shareability():
    full, unshared = S.space(True), S.space(False)
    assert [] in full and ["width2", "shared+1"] in full
    assert all("shared+1" not in c for c in unshared)
    assert ["depth+1:text", "depth+1:vision"] not in full  # that is depth+1
    assert len({S.describe(c) for c in full}) == len(full) == 13


def test_contrastive_loss_equals_a_hand_computation(tiny, batch):
    loss = T.contrastive_loss(tiny, batch).item()
    with torch.no_grad():
        img = tiny.get_image_features(pixel_values=batch["pixel_values"]).pooler_output.numpy()
        txt = tiny.get_text_features(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).pooler_output.numpy()
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    s = np.exp(tiny.logit_scale.item()) * img @ txt.T

    def xent(z):  # mean over rows of -log softmax at the diagonal
        z = z - z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - np.diag(z)))

    assert loss == pytest.approx((xent(s) + xent(s.T)) / 2, rel=1e-5)


def test_learning_rate_warms_up_then_follows_a_cosine():
    s = T.TrainSettings(steps=100, batch=8, lr=1.0, warmup=0.1)
    assert T.lr_at(0, s) == pytest.approx(0.1) and T.lr_at(9, s) == pytest.approx(1.0)
    assert T.lr_at(55, s) == pytest.approx(0.5 * (1 + np.cos(np.pi * 45 / 90)))


def test_batches_mix_new_and_replayed_pairs_at_the_replay_share():
    from mltk_plugins.growclip.data import Pairs

    new = Pairs(np.zeros((10, 2, 2, 3), np.uint8), [["new"]] * 10)
    old = Pairs(np.ones((10, 2, 2, 3), np.uint8), [["old"]] * 10)
    s = T.TrainSettings(steps=3, batch=8, lr=1.0, replay=0.25)
    for imgs, caps in T.batches(new, old, s, np.random.default_rng(0)):
        assert caps.count("old") == 2 and imgs[caps.index("old")].max() == 1


DDP = textwrap.dedent(
    """
    import json, sys, torch
    import torch.distributed as td
    from mltk.device import init_distributed
    from mltk.data import world as W
    from mltk.vl.tokenizers import train_tokenizer
    from mltk.vl.towers import clip_config
    from transformers import CLIPModel
    from mltk_plugins.growclip import training as T
    torch.set_num_threads(1)
    dist = init_distributed(torch.device("cpu"))
    tok = train_tokenizer(W.corpus(), "clip")
    torch.manual_seed(0)
    model = CLIPModel(clip_config(tok, width=32, layers=1, heads=2, projection=32, max_positions=16))
    g = torch.Generator().manual_seed(1)
    px = torch.randn(8, 3, 32, 32, generator=g)
    t = tok(["a red circle", "two blue squares", "a green triangle", "a yellow square",
             "a red square", "three green circles", "a blue circle", "a large red triangle"],
            padding="max_length", max_length=16, return_tensors="pt")
    mine = slice(4 * dist.rank, 4 * dist.rank + 4)
    batch = {"pixel_values": px[mine], "input_ids": t["input_ids"][mine],
             "attention_mask": t["attention_mask"][mine]}
    wrapped = dist.wrap(model)
    loss = T.contrastive_loss(wrapped, batch, dist)
    loss.backward()
    grad = model.text_projection.weight.grad.flatten()[:50].tolist()
    out = {"loss": loss.item(), "grad": grad}
    open(sys.argv[1] + f"/rank{dist.rank}.json", "w").write(json.dumps(out))
    del wrapped  # as mltk's run lifecycle does: DDP gone and every rank done before teardown
    td.barrier()  # (without it, gloo's teardown aborted one run in six here)
    td.destroy_process_group()
    """
)


def test_two_gloo_processes_give_the_loss_and_gradient_of_one_global_batch(tmp_path, tokenizer):
    from transformers import CLIPModel

    from mltk.vl.towers import clip_config

    script = tmp_path / "ddp.py"
    script.write_text(DDP)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(script),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    outs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    torch.manual_seed(0)
    model = CLIPModel(
        clip_config(tokenizer, width=32, layers=1, heads=2, projection=32, max_positions=16)
    )
    g = torch.Generator().manual_seed(1)
    px = torch.randn(8, 3, 32, 32, generator=g)
    t = tokenizer(
        [
            "a red circle",
            "two blue squares",
            "a green triangle",
            "a yellow square",
            "a red square",
            "three green circles",
            "a blue circle",
            "a large red triangle",
        ],
        padding="max_length",
        max_length=16,
        return_tensors="pt",
    )
    loss = T.contrastive_loss(model, {"pixel_values": px, **t})
    loss.backward()
    # each rank's loss covers its half of the rows against every column: their mean is the
    # global loss; DDP averages the gradients, which gives the global batch's
    assert np.mean([o["loss"] for o in outs]) == pytest.approx(loss.item(), abs=1e-5)
    want = model.text_projection.weight.grad.flatten()[:50]
    for o in outs:
        torch.testing.assert_close(torch.tensor(o["grad"]), want, atol=1e-6, rtol=1e-4)


def test_the_gpu_speed_check_runs_in_its_cpu_smoke_mode(tmp_path):
    """benchmarks/growclip/gpu_speed.py waits for a GPU; --tiny proves it runs."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "benchmarks/growclip/gpu_speed.py"),
            "--tiny",
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--batch",
            "4",
            "--steps",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ViT") or "width x2" in ln]
    small, big = (int(r.split("|")[2].replace(",", "")) for r in rows)
    assert big > 3 * small
