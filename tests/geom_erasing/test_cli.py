"""The command line end to end on the embedded world, and one sentence with the right exit code
for each bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from mltk.cli import run


def call(capsys, *args):
    code = run(["geom-erasing", *args, "--device", "cpu"])
    out, err = capsys.readouterr()
    return code, out, err


def test_make_dataset_detect_erase_generate_eval(tmp_path, capsys):
    data = tmp_path / "qr-world"
    code, out, err = call(
        capsys, "make-dataset", "--concept", "qr", "--size", "48", "--out", str(data), "--json"
    )
    assert code == 0, err
    made = json.loads(out)
    assert made["images"] == 48 and 14 <= made["with_concept"] <= 34
    rows = [json.loads(x) for x in (data / "boxes.jsonl").read_text().splitlines()]
    caps = [json.loads(x) for x in (data / "captions.jsonl").read_text().splitlines()]
    assert [r["image"] for r in rows] == [c["image"] for c in caps]
    assert sum(bool(r["boxes"]) for r in rows) == made["with_concept"]
    assert Image.open(data / "preview.png").size[0] > 256

    # the shipped detector finds the drawn boxes again
    code, out, err = call(capsys, "detect", str(data), "--out", str(tmp_path / "det"), "--json")
    assert code == 0, err
    det = json.loads(out)
    assert det["with_concept"] == made["with_concept"]
    found = [json.loads(x) for x in (tmp_path / "det" / "boxes.jsonl").read_text().splitlines()]
    for truth, got in zip(rows, found):
        for t in truth["boxes"]:
            assert any(np.abs(np.subtract(g["box"], t["box"])).max() <= 2 for g in got["boxes"])
    assert det["detections"][0]["cells"].startswith("<l")

    # erase on that folder (its boxes.jsonl), a few steps
    run_dir = tmp_path / "run"
    code, out, err = call(
        capsys,
        "erase",
        "--data",
        str(data),
        "--concept",
        "qr",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--out",
        str(run_dir),
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["images"] == 48 and summary["steps"] == 3
    assert summary["with_concept"] == pytest.approx(made["with_concept"] / 48, abs=1e-4)
    assert "<l" in summary["negative_prompt"]
    assert (run_dir / "pipeline" / "model_index.json").is_file()

    code, out, err = call(
        capsys,
        "generate",
        "a red circle above a blue square",
        "--model",
        str(run_dir),
        "--num-images",
        "2",
        "--steps",
        "3",
        "--out",
        str(tmp_path / "gen"),
        "--json",
    )
    assert code == 0, err
    gen = json.loads(out)
    assert set(gen) >= {"erased", "without", "grid"}
    assert "qr code" in gen["erased"]["icr"] and len(gen["without"]["images"]) == 2
    erased = np.asarray(Image.open(gen["erased"]["images"][0]))
    plain = np.asarray(Image.open(gen["without"]["images"][0]))
    assert erased.shape == (32, 32, 3) and not np.array_equal(erased, plain)

    code, out, err = call(capsys, "eval", str(run_dir), "--prompts", "8", "--steps", "3", "--json")
    assert code == 0, err
    ev = json.loads(out)["runs"][0]
    assert 0 <= ev["icr_qr"] <= 1 and 0 <= ev["alignment"] <= 1 and ev["frechet"] > 0
    # --concept scores concepts the run did not erase (e.g. on a base model)
    code, out, err = call(
        capsys,
        "eval",
        str(run_dir),
        "--concept",
        "watermark,text",
        "--prompts",
        "4",
        "--steps",
        "3",
        "--json",
    )
    assert code == 0, err
    ev = json.loads(out)["runs"][0]
    assert {k for k in ev if k.startswith("icr")} == {"icr_watermark", "icr_text"}


def test_text_output_reads_at_80_columns(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = call(capsys, "make-dataset", "--size", "8", "--out", "d")
    assert code == 0, err
    assert "with_concept" in out and max(len(x) for x in out.splitlines()) <= 80


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["erase", "--concept", ""], 2, "empty"),
        (["erase", "--concept", " , "], 2, "empty"),
        (["erase", "--concept", "<l3>"], 2, "location token"),
        (["erase", "--grid", "0"], 2, "--grid"),
        (["eval", "--concept", "<l0>"], 2, "location token"),
        (["make-dataset", "--concept", "logo"], 2, "qr, watermark or text"),
        (["generate"], 2, "no prompt"),
        (["erase", "--concept", "logo"], 2, "--boxes or --detector"),
        (["generate", "x", "--model", "/nonexistent/folder"], 5, "does not exist"),
    ],
)
def test_bad_values_get_one_sentence_and_their_exit_code(capsys, args, code, words):
    got, out, err = call(capsys, *args)
    assert got == code, err
    assert words in err and "Traceback" not in err and out == ""
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "lines, words",
    [
        (
            ['{"image": "a.png", "boxes": []}', '{"image": "gone.png", "boxes": [[0, 0, 4, 4]]}'],
            ["gone.png", "not in the data"],
        ),
        (['{"image": "a.png", "boxes": [[0, 0, 40, 4]]}'], ["inside the 32x32 image"]),
        (['{"image": "a.png", "boxes": [[0, 0, 4]]}'], ["[x0, y0, x1, y1]"]),
        (["not json"], ["b.jsonl:1 is not JSON"]),
    ],
)
def test_boxes_naming_missing_images_or_outside_them_are_refused(tmp_path, capsys, lines, words):
    (tmp_path / "d").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "d" / "a.png")
    (tmp_path / "d" / "a.txt").write_text("a red circle")
    boxes = tmp_path / "b.jsonl"
    boxes.write_text("\n".join(lines) + "\n")
    args = ["--data", str(tmp_path / "d"), "--boxes", str(boxes), "--concept", "logo"]
    code, out, err = call(capsys, "erase", *args, "--steps", "1")
    assert code == 5 and all(w in err for w in words), err
    assert len(err.strip().splitlines()) == 1


def test_a_model_folder_lacking_a_component_is_refused(tmp_path, capsys):
    from mltk.t2i import TINY_MODEL

    broken = tmp_path / "broken"
    shutil.copytree(TINY_MODEL, broken)
    shutil.rmtree(broken / "text_encoder")
    code, out, err = call(capsys, "erase", "--base", str(broken), "--steps", "1")
    assert code == 5 and "text_encoder/" in err
    code, out, err = call(capsys, "generate", "x", "--model", str(broken))
    assert code == 5 and "text_encoder/" in err


def test_the_model_setting_detects_in_the_bases_images_and_reuses_them(tmp_path, capsys):
    from mltk_plugins.geom_erasing.commands import SHIPPED

    base = str(SHIPPED)
    for i, method in enumerate(("plain", "mask")):
        code, out, err = call(
            capsys,
            "erase",
            "--setting",
            "model",
            "--base",
            base,
            "--concept",
            "qr",
            "--size",
            "16",
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--method",
            method,
            "--out",
            str(tmp_path / method),
            "--json",
        )
        assert code == 0, err
        assert json.loads(out)["images"] == 16
        # the second method on the same base reads the first one's images from the cache
        assert ("generating 16 images" in err) == (i == 0), err
