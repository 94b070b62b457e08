"""`mltk tensor complete|train|eval|predict`: output contract, round trips and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mltk.cli import run
from mltk.errors import ExitCode

torch.set_num_threads(1)

FAST = [
    "--size",
    "24",
    "--path-steps",
    "6",
    "--stage-iters",
    "10",
    "--max-iter",
    "60",
    "--device",
    "cpu",
]


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("MLTK_LOAD_PLUGINS", "tensor")
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLTK_DEBUG", raising=False)


def zero_fill_rmse(name: str) -> float:
    """RMSE of filling the missing pixels with zeros: the bar any completion must clear."""
    from mltk_plugins.tensor.data import make_problem

    p = make_problem(name, size=24, observed=0.2, seed=0)
    return float(np.sqrt(np.mean(p.test_val**2)))


def mltk(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return int(code), out, err


def test_help_imports_no_torch():
    code = (
        "import sys; from mltk.cli import run; rc = run(['tensor', '--help']); "
        "bad = [m for m in ('torch', 'pandas', 'numpy') if m in sys.modules]; "
        "print(bad); sys.exit(rc)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "MLTK_LOAD_PLUGINS": "tensor"},
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "[]"


def test_complete_on_a_tiny_image_writes_everything(capsys, tmp_path):
    code, out, err = mltk(
        capsys,
        "tensor",
        "complete",
        "--data",
        "chelsea",
        *FAST,
        "--json",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0, err
    res = json.loads(out)
    assert res["schema_version"] == 1 and max(res["shape"][:2]) == 24 and res["shape"][2] == 3
    assert 0 < res["test_rmse"] < 0.5 * zero_fill_rmse("chelsea")
    # lambda was searched: the validation RMSE of the returned solution, and whether the final
    # refinement was kept
    assert res["refined"] in (True, False) and 0 < res["val_rmse"] < 0.5 * zero_fill_rmse("chelsea")
    for f in (
        "completed.npy",
        "completed.png",
        "before_after.png",
        "convergence.csv",
        "convergence.png",
        "config.json",
    ):
        assert (tmp_path / "r" / f).is_file(), f
    X = np.load(tmp_path / "r" / "completed.npy", allow_pickle=False)
    assert list(X.shape) == res["shape"]
    lines = (tmp_path / "r" / "convergence.csv").read_text().splitlines()
    assert lines[0] == "iteration,time_s,objective,test_rmse,ranks,phase"
    # every iteration is named by its phase, the phases in the order they ran; the refit ran
    # to the end (the objective jumps between phases: the plot marks where)
    phases = [line.rsplit(",", 1)[1] for line in lines[1:]]
    runs = [p for k, p in enumerate(phases) if k == 0 or p != phases[k - 1]]
    assert runs == ["lambda path", "near the best", "chosen lambda", "refit"]
    assert len(phases) == res["iterations"]


def test_train_then_eval_reproduces_the_test_rmse_and_predict_matches(capsys, tmp_path):
    code, out, err = mltk(
        capsys, "tensor", "train", "--data", "coffee", *FAST, "--json", "--out", str(tmp_path / "r")
    )
    assert code == 0, err
    trained = json.loads(out)
    code, out, err = mltk(
        capsys, "tensor", "eval", str(tmp_path / "r"), "--json", "--device", "cpu"
    )
    assert code == 0, err
    ev = json.loads(out)
    assert ev["rmse"] == pytest.approx(trained["test_rmse"], rel=1e-5)
    # predict the dense tensor and at coordinates; both agree
    code, out, err = mltk(
        capsys,
        "tensor",
        "predict",
        str(tmp_path / "r"),
        "--output",
        str(tmp_path / "x.npy"),
        "--json",
    )
    assert code == 0, err
    X = np.load(tmp_path / "x.npy", allow_pickle=False)
    (tmp_path / "c.csv").write_text("i,j,k\n0,0,0\n3,4,2\n")
    code, out, err = mltk(
        capsys,
        "tensor",
        "predict",
        str(tmp_path / "r"),
        "--coords",
        str(tmp_path / "c.csv"),
        "--json",
    )
    assert code == 0, err
    vals = json.loads(out)["values"]
    assert vals == pytest.approx([X[0, 0, 0], X[3, 4, 2]], rel=1e-4, abs=1e-6)
    # --output's suffix picks the format: .npy holds the values, .csv coordinates and values
    for name in ("v.npy", "v.csv"):
        code, out, err = mltk(
            capsys,
            "tensor",
            "predict",
            str(tmp_path / "r"),
            "--coords",
            str(tmp_path / "c.csv"),
            "--output",
            str(tmp_path / name),
            "--json",
        )
        assert code == 0, err
    assert np.load(tmp_path / "v.npy", allow_pickle=False) == pytest.approx(vals)
    lines = (tmp_path / "v.csv").read_text().splitlines()
    assert lines[0] == "i0,i1,i2,value" and len(lines) == 3
    assert float(lines[2].split(",")[-1]) == pytest.approx(vals[1])
    # a format we do not write, a dense tensor as CSV, or a folder that is not there: exit 2
    for coords, name in ((True, "v.txt"), (False, "x.csv"), (True, "nowhere/v.csv")):
        extra = ["--coords", str(tmp_path / "c.csv")] if coords else []
        code, out, err = mltk(
            capsys,
            "tensor",
            "predict",
            str(tmp_path / "r"),
            *extra,
            "--output",
            str(tmp_path / name),
        )
        assert code == ExitCode.USAGE and "--output" in err and len(err.strip().splitlines()) == 1


def test_fixed_lambda_with_dense_and_convex_solvers(capsys, tmp_path):
    for solver in ("dense", "convex"):
        code, out, err = mltk(
            capsys,
            "tensor",
            "complete",
            "--data",
            "astronaut",
            *FAST,
            "--solver",
            solver,
            "--lambda",
            "0.5",
            "--json",
            "--out",
            str(tmp_path / solver),
        )
        assert code == 0, err
        assert json.loads(out)["test_rmse"] < 0.6 * zero_fill_rmse("astronaut")


@pytest.mark.parametrize(
    "args,code",
    [
        (["--penalty", "l0"], ExitCode.USAGE),
        (["--observed", "1.5"], ExitCode.USAGE),
        (["--theta", "1.0", "--penalty", "scad"], ExitCode.USAGE),
        (["--data", "nope.npy"], ExitCode.DATA),
        (["--lambda", "0.1", "--lambda-search"], ExitCode.USAGE),
        (["--lambda", "nan"], ExitCode.USAGE),
        (["--tol", "nan"], ExitCode.USAGE),
    ],
)
def test_bad_options_exit_with_the_right_code(capsys, tmp_path, args, code):
    rc, out, err = mltk(capsys, "tensor", "complete", *FAST, *args, "--out", str(tmp_path / "r"))
    assert rc == code, err
    assert out == "" and len(err.strip().splitlines()) == 1


def test_bad_data_exits_5_with_one_sentence(capsys, tmp_path):
    np.save(tmp_path / "m.npy", np.ones((5, 6)))
    rc, out, err = mltk(
        capsys, "tensor", "complete", "--data", str(tmp_path / "m.npy"), "--observed", "0.5"
    )
    assert rc == ExitCode.DATA and "matrix completion" in err
    np.savez(tmp_path / "t.npz", data=np.ones((4, 5, 6)), mask=np.zeros((4, 5, 6), dtype=bool))
    rc, out, err = mltk(capsys, "tensor", "complete", "--data", str(tmp_path / "t.npz"))
    assert rc == ExitCode.DATA and "no observed entries" in err


def test_a_damaged_checkpoint_or_a_folder_as_output_is_one_sentence(capsys, tmp_path):
    from safetensors.torch import load_file, save_file

    code, _, err = mltk(
        capsys, "tensor", "train", "--data", "coffee", *FAST, "--out", str(tmp_path / "r")
    )
    assert code == 0, err
    (tmp_path / "out.npy").mkdir()
    code, out, err = mltk(
        capsys, "tensor", "predict", str(tmp_path / "r"), "--output", str(tmp_path / "out.npy")
    )
    assert code == ExitCode.USAGE and "is a folder" in err and out == ""
    ckpt = tmp_path / "r" / "checkpoint" / "tensors.safetensors"
    good = load_file(str(ckpt))
    for damage, words in (
        ({"U0": good["U0"][:, 0]}, "do not fit the shape"),
        ({"s1": good["s1"] * float("nan")}, "non-finite"),
    ):
        save_file({**good, **damage}, str(ckpt))
        code, out, err = mltk(capsys, "tensor", "eval", str(tmp_path / "r"))
        assert code == ExitCode.DATA and words in err and out == ""
        assert len(err.strip().splitlines()) == 1


def test_eval_of_a_missing_run_folder_exits_5(capsys, tmp_path):
    rc, _, err = mltk(capsys, "tensor", "eval", str(tmp_path / "nothing"))
    assert rc == ExitCode.DATA


def test_eval_finds_the_data_from_any_folder_and_refuses_changed_data(
    capsys, tmp_path, monkeypatch
):
    g = np.random.default_rng(0)
    X = np.einsum("ir,jr,kr->ijk", *(g.normal(size=(n, 2)) for n in (9, 8, 7)))
    X[g.random(X.shape) < 0.6] = np.nan
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "cube.npy", X)
    monkeypatch.chdir(tmp_path / "data")
    args = ["--path-steps", "4", "--stage-iters", "5", "--max-iter", "30", "--device", "cpu"]
    code, out, err = mltk(
        capsys, "tensor", "train", "--data", "cube.npy", *args, "--json", "--out", "../r"
    )
    assert code == 0, err
    trained = json.loads(out)["test_rmse"]
    monkeypatch.chdir(tmp_path)  # a relative path given at training must not matter now
    code, out, err = mltk(capsys, "tensor", "eval", "r", "--json", "--device", "cpu")
    assert code == 0, err
    assert json.loads(out)["rmse"] == pytest.approx(trained, rel=1e-5)
    np.save(tmp_path / "data" / "cube.npy", 10 * X)
    code, out, err = mltk(capsys, "tensor", "eval", "r", "--device", "cpu")
    assert code == ExitCode.DATA and "has changed since this run was trained" in err


def test_a_downscaled_photograph_says_so_and_names_the_flag(capsys, tmp_path):
    code, out, err = mltk(
        capsys, "tensor", "complete", "--data", "chelsea", *FAST, "--out", str(tmp_path / "r")
    )
    assert code == 0, err
    said = "from 300x451 to 16x24 pixels (--size 24; --size 0 keeps 300x451)"
    assert said in out.replace("\n  ", " ")  # the human output may fold the line
    assert "was downscaled" in err
    code, out, err = mltk(
        capsys,
        "tensor",
        "complete",
        "--data",
        "chelsea",
        *FAST,
        "--json",
        "--out",
        str(tmp_path / "j"),
    )
    assert json.loads(out)["downscaled"].startswith("from 300x451 to 16x24 pixels")
