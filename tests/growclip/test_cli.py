"""`mltk growclip grow|train|eval|predict`: runs, round trips, continued streams and exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mltk.cli import run
from tests.plugin_run import run_plugin

FAST = ["--first-chunk", "48", "--steps", "6", "--batch", "16", "--eval-size", "40"]


def mltk(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return int(code), out, err


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """Two arrivals of the world with a search at the second, shared by the tests below."""
    folder = tmp_path_factory.mktemp("growclip") / "grow"
    args = ("--arrivals", "2", "--proxy-steps", "2", "--params-per-pair", "2000")
    assert run_plugin("growclip", "grow", *FAST, *args, "--out", str(folder), "--quiet") == 0
    return folder


def test_grow_writes_a_clip_folder_a_history_and_searches_at_the_second_arrival(grown):
    from transformers import CLIPModel

    history = json.loads((grown / "growth.json").read_text())
    a1, a2 = history["arrivals"]
    assert (a1["pairs"], a2["pairs"]) == (48, 144) and a1["growth"] == "none"
    assert len(a2["search"]) == 13  # the whole space fits a budget of 2000 per pair
    best = max(a2["search"], key=lambda r: r["score"])
    assert a2["growth"] == best["growth"]
    assert a2["cumulative_flops"] > a1["cumulative_flops"] > 0
    model = CLIPModel.from_pretrained(grown / "model")  # a plain transformers folder
    assert sum(p.numel() for p in model.parameters()) >= a2["params"]
    assert (grown / "model" / "tokenizer.json").is_file()


def test_json_result_and_eval_agree_with_the_run(capsys, grown):
    code, out, _ = mltk(capsys, "growclip", "eval", str(grown), "--eval-size", "40", "--json")
    assert code == 0
    row = json.loads(out)["runs"][0]
    last = json.loads((grown / "growth.json").read_text())["arrivals"][-1]
    assert row["params"] == last["params"]
    assert row["zero_shot_mean"] == pytest.approx(last["zero_shot_mean"], abs=1e-6)
    for task in ("colour-shape", "position", "count"):
        assert 0.0 <= row[f"zero_shot_{task}"] <= 1.0
    assert {"i2t_r@1", "t2i_r@5"} <= set(row)


def test_grow_from_a_run_continues_its_stream(capsys, grown, tmp_path):
    code, out, _ = mltk(
        capsys,
        "growclip",
        "grow",
        "--init",
        str(grown),
        *FAST,
        "--schedule",
        "depth+1:text",
        "--out",
        str(tmp_path / "next"),
        "--json",
        "--quiet",
    )
    assert code == 0
    res = json.loads(out)
    assert res["arrivals"]["arrival"] == [1, 2, 3]
    assert res["arrivals"]["pairs"][-1] == 432 and res["arrivals"]["growth"][-1] == "depth+1:text"
    before = json.loads((grown / "growth.json").read_text())["arrivals"][-1]
    assert res["cumulative_flops"] > before["cumulative_flops"]


def test_manual_growth_and_a_fixed_architecture(capsys, tmp_path):
    code, out, _ = mltk(
        capsys,
        "growclip",
        "grow",
        *FAST,
        "--arrivals",
        "2",
        "--schedule",
        "width2&shared+1",
        "--out",
        str(tmp_path / "m"),
        "--json",
        "--quiet",
    )
    assert code == 0
    res = json.loads(out)
    assert res["architecture"] == "text 3x64, vision 3x64, 1 shared"
    code, out, _ = mltk(
        capsys,
        "growclip",
        "train",
        *FAST,
        "--arrivals",
        "2",
        "--width",
        "16",
        "--out",
        str(tmp_path / "f"),
        "--json",
        "--quiet",
    )
    assert code == 0
    res = json.loads(out)
    assert res["arrivals"]["growth"] == ["none", "none"]
    assert res["architecture"] == "text 2x16, vision 2x16"


def test_predict_labels_images_and_writes_embeddings(capsys, grown, tmp_path):
    from PIL import Image

    from mltk.data import world as W

    w = W.make_world(3, seed=5)
    for i, img in enumerate(w.images):
        Image.fromarray(img).save(tmp_path / f"im{i}.png")
    code, out, _ = mltk(
        capsys,
        "growclip",
        "predict",
        str(grown),
        str(tmp_path),
        "--embeddings",
        str(tmp_path / "e.npy"),
        "--json",
    )
    assert code == 0
    pred = json.loads(out)["predictions"]
    assert pred["image"] == ["im0.png", "im1.png", "im2.png"]
    assert all(lab in [f"{c} {s}" for c in W.COLOURS for s in W.SHAPES] for lab in pred["label"])
    emb = np.load(tmp_path / "e.npy")
    assert emb.shape == (3, 32)
    code, out, _ = mltk(
        capsys,
        "growclip",
        "predict",
        str(grown),
        str(tmp_path / "im0.png"),
        "--classes",
        "cat,dog",
        "--json",
    )
    assert code == 0 and json.loads(out)["predictions"]["label"][0] in ("cat", "dog")


def test_an_init_from_a_plain_clip_folder_and_user_data(capsys, grown, tmp_path):
    """A Hugging Face CLIP folder (no growclip files) grows on a JSONL shard of the user's."""
    import shutil

    from PIL import Image

    from mltk.data import world as W

    clip = tmp_path / "clip"
    shutil.copytree(grown / "model", clip)
    (clip / "mltk_growclip.json").unlink()
    w = W.make_world(40, seed=9)
    lines = []
    for i, img in enumerate(w.images):
        Image.fromarray(img).save(tmp_path / f"p{i}.png")
        lines.append(json.dumps({"image": f"p{i}.png", "caption": w.dense[i]}))
    (tmp_path / "shard.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = mltk(
        capsys,
        "growclip",
        "grow",
        "--init",
        str(clip),
        "--data",
        str(tmp_path / "shard.jsonl"),
        "--steps",
        "4",
        "--batch",
        "8",
        "--schedule",
        "depth+1",
        "--out",
        str(tmp_path / "g"),
        "--json",
    )
    assert code == 0, err
    res = json.loads(out)
    assert res["arrivals"]["pairs"] == [40] and res["arrivals"]["growth"] == ["depth+1"]


def test_resume_finishes_the_arrivals_of_an_interrupted_run(capsys, tmp_path):
    out_dir = tmp_path / "r"
    code, _, _ = mltk(capsys, "growclip", "train", *FAST, "--out", str(out_dir), "--quiet")
    assert code == 0
    code, out, _ = mltk(
        capsys,
        "growclip",
        "train",
        "--resume",
        str(out_dir),
        "--arrivals",
        "2",
        "--json",
        "--quiet",
    )
    assert code == 0
    assert json.loads(out)["arrivals"]["arrival"] == [1, 2]


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["grow", "--first-chunk", "20", "--batch", "32"], 5, "fewer than --batch 32"),
        (["grow", "--arrivals", "2", "--schedule", "width2:text&shared+1"], 2, "equal width"),
        (["grow", "--schedule", "depth+0"], 2, "at least one layer"),
        (["grow", "--schedule", "taller"], 2, "unknown growth"),
        (["train", "--width", "30", "--heads", "4"], 2, "multiple of --heads"),
        (["grow", "--data", "my.jsonl", "--arrivals", "2"], 2, "one --data per call"),
    ],
)
def test_bad_input_is_one_sentence_and_a_distinct_exit_code(capsys, tmp_path, args, code, words):
    got, out, err = mltk(
        capsys, "growclip", *args, "--steps", "2", "--eval-size", "20", "--out", str(tmp_path / "x")
    )
    assert got == code, err
    assert words in err and "Traceback" not in err and out == ""


def test_an_init_that_is_not_a_clip_folder_and_an_empty_class_folder(capsys, grown, tmp_path):
    (tmp_path / "notclip").mkdir()
    (tmp_path / "notclip" / "config.json").write_text('{"model_type": "bert"}')
    code, _, err = mltk(
        capsys,
        "growclip",
        "grow",
        "--init",
        str(tmp_path / "notclip"),
        "--out",
        str(tmp_path / "x"),
    )
    assert code == 5 and "neither a growclip run nor a Hugging Face CLIP folder" in err
    for name in ("a", "b"):
        (tmp_path / "classes" / name).mkdir(parents=True)
    code, _, err = mltk(
        capsys, "growclip", "eval", str(grown), "--eval-images", str(tmp_path / "classes")
    )
    assert code == 5 and "has no images" in err


def test_a_run_loaded_twice_gives_the_same_embeddings(grown):
    from mltk_plugins.growclip.commands import Source
    from mltk_plugins.growclip.training import encode_images

    from mltk.data import world as W

    imgs = W.make_world(4, seed=3).images
    a = encode_images(Source(grown).load()[0], imgs)
    b = encode_images(Source(grown).load()[0], imgs)
    assert np.array_equal(a, b) and torch.get_num_threads() == 1


def test_user_images_are_read_at_the_size_of_the_model_they_grow(capsys, tmp_path, tokenizer):
    """A CLIP folder that takes 48-pixel images grows on 32-pixel files: they are resized."""
    from mltk_plugins.growclip import growth as G
    from PIL import Image
    from transformers import CLIPModel

    from mltk.data import world as W
    from mltk.vl.towers import clip_config

    config = clip_config(
        tokenizer,
        width=16,
        layers=1,
        heads=2,
        image_size=48,
        patch=8,
        projection=16,
        max_positions=16,
    )
    G.save_model(CLIPModel(config), tmp_path / "clip48", tokenizer)
    w = W.make_world(20, seed=4)
    lines = []
    for i, img in enumerate(w.images):
        Image.fromarray(img).save(tmp_path / f"p{i}.png")
        lines.append(json.dumps({"image": f"p{i}.png", "caption": w.short[i]}))
    (tmp_path / "shard.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = mltk(
        capsys,
        "growclip",
        "train",
        "--init",
        str(tmp_path / "clip48"),
        "--data",
        str(tmp_path / "shard.jsonl"),
        "--steps",
        "2",
        "--batch",
        "8",
        "--out",
        str(tmp_path / "t"),
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["arrivals"]["pairs"] == [20]
