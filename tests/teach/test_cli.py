"""`mltk teach run|train|eval|predict`: the output contract, round trips and exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mltk.checkpoint import load_checkpoint
from mltk.cli import run
from mltk.errors import ExitCode


def mltk(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return int(code), out, err


def test_run_compares_teachers_and_writes_curves_snapshots_and_sequences(capsys, tmp_path):
    code, out, err = mltk(
        capsys,
        "teach",
        "run",
        "--teacher",
        "gft-1,rft-1,whole",
        "--eps",
        "1e-3",
        "--out",
        str(tmp_path / "r"),
        "--json",
    )
    assert code == 0, err
    res = json.loads(out)
    rows = {r["teacher"]: r for r in res["teachers"]}
    assert rows["GFT-1"]["itd"] < rows["Whole"]["itd"] and rows["GFT-1"]["reached"] == "1/1"
    assert res["rft_over_gft"] == pytest.approx(rows["RFT-1"]["itd"] / rows["GFT-1"]["itd"])
    assert rows["GFT-1"]["loss"] < 1e-3 and rows["RFT-1"]["theory"] is None
    folder = tmp_path / "r"
    for f in ("curves.csv", "curves.png", "snapshots-gft-1.png", "sequence-gft-1.csv"):
        assert (folder / f).is_file(), f
    curves = np.genfromtxt(folder / "curves.csv", delimiter=",", names=True)
    assert curves["gft1seed0"][0] == pytest.approx(0.0075009, rel=1e-4)  # L(f0)
    seq = np.genfromtxt(folder / "sequence-gft-1.csv", delimiter=",", names=True)
    assert seq["x1"][0] == pytest.approx(-10.0) and len(seq) == rows["GFT-1"]["itd"]
    config = json.loads((folder / "config.json").read_text())["config"]
    assert config["eta"] == 0.01 and config["bandwidth"] == 0.5 and config["eps"] == 1e-3


def test_random_teachers_run_once_per_seed_and_report_the_spread(capsys, tmp_path):
    code, out, err = mltk(
        capsys,
        "teach",
        "run",
        "--teacher",
        "gft,rft",
        "--k",
        "14",
        "--seeds",
        "3",
        "--eps",
        "2e-3",
        "--out",
        str(tmp_path / "r"),
        "--json",
    )
    assert code == 0, err
    rows = {r["teacher"]: r for r in json.loads(out)["teachers"]}
    assert rows["RFT-14"]["reached"] == "3/3" and rows["RFT-14"]["itd_std"] > 0
    assert rows["GFT-14"]["reached"] == "1/1"


def test_train_eval_predict_round_trip(capsys, tmp_path):
    run_dir = tmp_path / "toy"
    code, out, err = mltk(
        capsys, "teach", "train", "--eps", "1e-3", "--out", str(run_dir), "--json"
    )
    assert code == 0, err
    trained = json.loads(out)
    tensors, meta = load_checkpoint(run_dir / "checkpoint")
    assert meta["itd"] == trained["itd"] and len(tensors["alphas"]) == trained["examples"]
    # eval: the stored curve, and a replay of the sequence against the same target as a formula
    code, out, err = mltk(capsys, "teach", "eval", str(run_dir), "--json")
    assert code == 0, err
    row = json.loads(out)["runs"][0]
    assert row["itd"] == trained["itd"] and row["loss"] == pytest.approx(trained["final_loss"])
    code, out, err = mltk(
        capsys,
        "teach",
        "eval",
        str(run_dir),
        "--target",
        "normal(x, -2)/3 + 2*normal(x, 2)/3",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["runs"][0]["itd"] == trained["itd"]
    # predict on the pool and off it: f = f0 + sum alpha K(c, x), with f0 = N(-10, 1)
    code, out, err = mltk(
        capsys, "teach", "predict", str(run_dir), "--out", str(tmp_path / "p"), "--json"
    )
    assert code == 0, err
    pool = np.genfromtxt(tmp_path / "p" / "f.csv", delimiter=",", names=True)
    assert np.allclose(pool["f"], tensors["f"].numpy())
    pts = tmp_path / "pts.csv"
    pts.write_text("x1\n-10\n0.05\n2\n")
    code, out, err = mltk(
        capsys,
        "teach",
        "predict",
        str(run_dir),
        "--points",
        str(pts),
        "--output",
        str(tmp_path / "v.csv"),
        "--json",
    )
    assert code == 0, err
    values = np.genfromtxt(tmp_path / "v.csv", delimiter=",", names=True)["f"]
    c, a = tensors["centres"].numpy()[:, 0], tensors["alphas"].numpy()
    x = np.array([-10, 0.05, 2.0])
    by_hand = np.exp(-((x + 10) ** 2) / 2) / np.sqrt(2 * np.pi)
    by_hand += (a[:, None] * np.exp(-((c[:, None] - x[None, :]) ** 2) / 0.25)).sum(0)
    assert np.allclose(values, by_hand, rtol=0, atol=1e-12)
    assert abs(values[2] - pool["f"][160]) < 1e-9  # x = 2.0 is a pool point


def test_an_image_run_writes_the_taught_image(capsys, tmp_path):
    code, out, err = mltk(
        capsys, "teach", "train", "--data", "digits", "--out", str(tmp_path / "d"), "--json"
    )
    assert code == 0, err
    res = json.loads(out)
    assert res["itd"] is not None and (tmp_path / "d" / "f.png").is_file()
    code, out, err = mltk(
        capsys,
        "teach",
        "predict",
        str(tmp_path / "d"),
        "--output",
        str(tmp_path / "d.png"),
        "--out",
        str(tmp_path / "p"),
    )
    assert code == 0, err
    from PIL import Image

    assert Image.open(tmp_path / "d.png").size == (8, 8)


def test_an_eta_above_the_theorys_bound_is_warned(capsys, tmp_path):
    code, _, err = mltk(
        capsys,
        "teach",
        "train",
        "--data",
        "digits",
        "--eta",
        "0.5",
        "--max-iter",
        "5",
        "--out",
        str(tmp_path / "d"),
    )
    assert code == 0 and "--eta 0.5 is above 1/(2 L M_K) = 0.25" in err
    code, _, err = mltk(
        capsys,
        "teach",
        "train",
        "--data",
        "digits",
        "--max-iter",
        "5",
        "--out",
        str(tmp_path / "e"),
    )
    assert code == 0 and "warning" not in err


@pytest.mark.parametrize(
    "args,exit_code,message",
    [
        (["--eps", "0"], ExitCode.USAGE, "--eps"),
        (["--eps", "-1e-3"], ExitCode.USAGE, "--eps"),
        (["--teacher", "gft-281"], ExitCode.USAGE, "the pool has 280"),
        (["--teacher", "greedy"], ExitCode.USAGE, "is not one of"),
        (["--data", "nothing.csv"], ExitCode.DATA, "nor an existing file"),
        (["--f0", "x.real"], ExitCode.USAGE, "not allowed"),
        (["--loss", "hinge"], ExitCode.USAGE, "needs targets of -1 and +1"),
        (["--eps", "1e-3", "--eps-rel", "0.1"], ExitCode.USAGE, "not both"),
        (["--data", "faces", "--teacher", "alt-gft"], ExitCode.USAGE, "give --target-alt"),
    ],
)
def test_bad_values_are_one_sentence_and_a_distinct_exit_code(
    capsys, tmp_path, args, exit_code, message
):
    code, out, err = mltk(capsys, "teach", "train", *args, "--out", str(tmp_path / "x"))
    assert code == exit_code, err
    assert message in err and "Traceback" not in err and out == ""


def test_bad_files_are_data_errors(capsys, tmp_path):
    (tmp_path / "noy.csv").write_text("x1,x2\n0,1\n")
    grid = np.ones((6, 6))
    grid[0, 0] = np.inf
    np.save(tmp_path / "inf.npy", grid)
    np.save(tmp_path / "a.npy", np.ones((6, 6)))
    np.save(tmp_path / "b.npy", np.ones((6, 7)))
    for args, message in [
        (["--data", str(tmp_path / "noy.csv")], "has no y column"),
        (["--data", str(tmp_path / "inf.npy")], "non-finite"),
        (["--data", str(tmp_path / "a.npy"), "--f0", str(tmp_path / "b.npy")], "same shape"),
    ]:
        code, out, err = mltk(capsys, "teach", "run", *args, "--out", str(tmp_path / "x"))
        assert code == ExitCode.DATA and message in err, err


def test_a_hinge_learner_classifies_plus_minus_one_samples(capsys, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, 1.0, -1.0)
    f = tmp_path / "c.csv"
    f.write_text("x1,x2,y\n" + "\n".join(f"{a},{b},{c}" for (a, b), c in zip(x, y)) + "\n")
    for loss in ("hinge", "logistic"):
        code, out, err = mltk(
            capsys,
            "teach",
            "train",
            "--data",
            str(f),
            "--loss",
            loss,
            "--max-iter",
            "400",
            "--out",
            str(tmp_path / loss),
            "--json",
        )
        assert code == 0, err
        tensors, _ = load_checkpoint(tmp_path / loss / "checkpoint")
        assert np.mean(np.sign(tensors["f"].numpy()) == y) > 0.95
