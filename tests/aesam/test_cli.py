"""`mltk aesam train|eval|predict|compare`: output contract, round trips, resume, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mltk.checkpoint import load_checkpoint
from mltk.cli import run
from mltk.errors import ExitCode

torch.set_num_threads(1)


def mltk(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return int(code), out, err


TINY = ["--preset", "tiny", "--epochs", "2", "--device", "cpu", "--noise", "0.2"]


def test_help_imports_no_torch():
    code = (
        "import sys; from mltk.cli import run; "
        "rc = run(['aesam', '--help']); "
        "heavy = [m for m in ('torch', 'pandas', 'sklearn') if m in sys.modules]; "
        "print(heavy); sys.exit(rc or 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "MLTK_LOAD_PLUGINS": "aesam"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "train" in proc.stdout and "compare" in proc.stdout


def test_train_eval_predict_round_trip(capsys, tmp_path):
    code, out, _ = mltk(capsys, "aesam", "train", *TINY, "--out", str(tmp_path / "run"), "--json")
    assert code == 0
    result = json.loads(out)  # exactly one JSON object on stdout
    assert result["schema_version"] == 1 and result["optimizer"] == "aesam"
    assert result["grad_evals"] == result["steps"] + round(result["sam_fraction"] * result["steps"])
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2]
    assert json.loads(lines[-1])["sam_fraction"] == result["sam_fraction"]

    code, out, _ = mltk(capsys, "aesam", "eval", str(tmp_path / "run"), "--device", "cpu", "--json")
    assert code == 0
    ev = json.loads(out)
    assert ev["test_acc"] == result["test_acc"]  # the saved weights reproduce the trained model
    assert ev["runs"][0]["grad_evals"] == result["grad_evals"]

    from sklearn.datasets import load_digits

    images = (load_digits().images[:6] / 16).astype(np.float32)
    np.savez(tmp_path / "new.npz", x=images)
    code, out, _ = mltk(
        capsys,
        "aesam",
        "predict",
        str(tmp_path / "run"),
        "--input",
        str(tmp_path / "new.npz"),
        "--device",
        "cpu",
        "--json",
    )
    assert code == 0
    preds = json.loads(out)["predictions"]
    assert len(preds) == 6
    for p in preds:
        probs = [t["probability"] for t in p["top"]]
        assert probs == sorted(probs, reverse=True) and p["label"] == p["top"][0]["label"]
        assert 0.0 < sum(probs) <= 1.0 + 1e-6


def test_resume_after_an_interruption_gives_the_uninterrupted_result(capsys, tmp_path, monkeypatch):
    args = [
        "aesam",
        "train",
        "--preset",
        "tiny",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--optimizer",
        "aelooksam",
        "--noise",
        "0.2",
        "--json",
    ]
    assert mltk(capsys, *args, "--out", str(tmp_path / "full"))[0] == 0

    import mltk_plugins.aesam.commands as commands

    real_train = commands.train

    def interrupted(*a, on_epoch, **kw):
        def stop_after_two(rec, st):
            on_epoch(rec, st)
            if rec.epoch == 2:
                raise KeyboardInterrupt

        return real_train(*a, on_epoch=stop_after_two, **kw)

    monkeypatch.setattr(commands, "train", interrupted)
    assert mltk(capsys, *args, "--out", str(tmp_path / "cut"))[0] == ExitCode.INTERRUPTED
    monkeypatch.setattr(commands, "train", real_train)
    code, out, _ = mltk(
        capsys, "aesam", "train", "--resume", str(tmp_path / "cut"), "--device", "cpu", "--json"
    )
    assert code == 0
    full_t, full_meta = load_checkpoint(tmp_path / "full" / "checkpoint")
    cut_t, cut_meta = load_checkpoint(tmp_path / "cut" / "checkpoint")
    for key in full_t:
        if key.startswith(("model.", "optimizer.")):
            assert torch.equal(full_t[key], cut_t[key]), key
    assert full_meta["optimizer"]["switch"] == cut_meta["optimizer"]["switch"]
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2, 3]


def test_compare_tabulates_every_optimizer(capsys):
    code, out, _ = mltk(
        capsys,
        "aesam",
        "compare",
        "--optimizers",
        "erm,sam,aesam",
        "--seeds",
        "3",
        "--preset",
        "tiny",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--json",
    )
    assert code == 0
    rows = {r["optimizer"]: r for r in json.loads(out)["results"]}
    assert rows["sam"]["grad_evals_vs_sam"] == 1.0 and rows["erm"]["grad_evals_vs_sam"] == 0.5
    assert 0.5 < rows["aesam"]["grad_evals_vs_sam"] < 1.0
    # paired with SAM seed by seed (the statistics themselves: test_stats.py)
    sam = np.array(rows["sam"]["test_acc_seeds"])
    for name in ("erm", "aesam"):
        d = np.array(rows[name]["test_acc_seeds"]) - sam
        assert rows[name]["diff_vs_sam"] == pytest.approx(d.mean())
        assert rows[name]["diff_vs_sam_se"] == pytest.approx(d.std(ddof=1) / np.sqrt(3))
        assert 0 <= rows[name]["t_p"] <= 1 and 0 <= rows[name]["sign_p"] <= 1
    assert "diff_vs_sam" not in rows["sam"]


def test_eval_pairs_each_optimizer_with_sam_on_the_same_seeds(capsys, tmp_path):
    runs = {}
    for name in ("sam", "erm"):
        for seed in (0, 1):
            runs[name, seed] = str(tmp_path / f"{name}{seed}")
            args = [*TINY, "--optimizer", name, "--seed", str(seed), "--out", runs[name, seed]]
            assert mltk(capsys, "aesam", "train", *args)[0] == 0
    code, out, _ = mltk(capsys, "aesam", "eval", *runs.values(), "--device", "cpu", "--json")
    assert code == 0
    res = json.loads(out)
    acc = {(r["optimizer"], r["seed"]): r["test_acc"] for r in res["runs"]}
    (pair,) = res["paired"]
    d = [acc["erm", s] - acc["sam", s] for s in (0, 1)]
    assert pair["optimizer"] == "erm" and pair["seeds"] == 2 and pair["noise"] == 0.2
    assert pair["diff_vs_sam"] == pytest.approx(np.mean(d))
    assert pair["diff_vs_sam_se"] == pytest.approx(np.std(d, ddof=1) / np.sqrt(2))


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["train", "--optimizer", "adam"], ExitCode.USAGE, "--optimizer"),
        (["train", "--noise", "1.2"], ExitCode.USAGE, "--noise"),
        (["train", "--device", "cuda:7"], ExitCode.DEVICE, "cuda:7"),
        (
            ["train", "--data", "npz", "--data-path", "/no/such.npz"],
            ExitCode.DATA,
            "does not exist",
        ),
        (["train", "--data-path", "x.npz"], ExitCode.USAGE, "--data npz"),
        (["train", "--width", "0"], ExitCode.USAGE, "--width"),
        (["train", "--momentum", "5"], ExitCode.USAGE, "--momentum"),
        (["train", "--lr", "inf"], ExitCode.USAGE, "--lr inf must be a finite number"),
        (["train", "--lambda1", "nan"], ExitCode.USAGE, "--lambda1"),
        (["train", "--seed", "-1"], ExitCode.USAGE, "--seed -1"),
        (
            ["train", "--data", "folder", "--data-path", ".", "--image-size", "0"],
            ExitCode.USAGE,
            "--image-size",
        ),
        (["eval", "/no/such/run"], ExitCode.DATA, "does not exist"),
        (["compare", "--optimizers", "sgd"], ExitCode.USAGE, "--optimizers"),
        (["tune", "--rho-min", "0.5", "--rho-max", "0.1"], ExitCode.USAGE, "--rho-min 0.5"),
    ],
)
def test_bad_input_gives_one_sentence_and_a_distinct_exit_code(capsys, tmp_path, args, code, words):
    got, out, err = (
        mltk(capsys, "aesam", *args, "--json")
        if args[0] != "train"
        else mltk(capsys, "aesam", *args, "--out", str(tmp_path / "r"), "--json")
    )
    assert got == code
    assert out == "" and words in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # no empty run folder left behind


def test_images_with_nan_are_a_data_error(capsys, tmp_path):
    x = np.random.default_rng(0).random((20, 1, 4, 4)).astype(np.float32)
    x[3, 0, 1, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 2)
    code, out, err = mltk(
        capsys, "aesam", "train", "--data", "npz", "--data-path", str(tmp_path / "d.npz"),
        "--preset", "tiny", "--out", str(tmp_path / "r"), "--json",
    )  # fmt: skip
    assert code == ExitCode.DATA and "1 NaN or infinite values" in err


def test_run_folders_keep_the_data_path_absolute(capsys, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((40, 1, 4, 4)), y=np.arange(40) % 2)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    code, _, err = mltk(
        capsys, "aesam", "train", "--preset", "tiny", "--data", "npz", "--data-path", "d.npz",
        "--out", str(run), "--json",
    )  # fmt: skip
    assert code == 0, err
    monkeypatch.chdir("/")  # eval from elsewhere still finds the data
    code, out, err = mltk(capsys, "aesam", "eval", str(run), "--json")
    assert code == 0, err
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["data_path"] == str(tmp_path / "d.npz")


def test_a_diverging_run_exits_6_with_one_sentence(capsys, tmp_path):
    code, out, err = mltk(
        capsys, "aesam", "train", "--preset", "tiny", "--lr", "1e30", "--out", str(tmp_path / "r"),
        "--json",
    )  # fmt: skip
    assert code == ExitCode.DIVERGED and out == ""
    assert "training diverged" in err and "Traceback" not in err


def test_predict_refuses_inputs_outside_the_training_range_or_rescales_them(capsys, tmp_path):
    from sklearn.datasets import load_digits

    code, _, _ = mltk(capsys, "aesam", "train", *TINY, "--out", str(tmp_path / "run"), "--json")
    assert code == 0
    meta = json.loads((tmp_path / "run" / "checkpoint" / "meta.json").read_text())
    assert meta["input_range"] == [0.0, 1.0]  # digits divided by 16
    images = load_digits().images[:5]  # 0-16, as scikit-learn ships them
    assert images.min() == 0 and images.max() == 16
    np.savez(tmp_path / "raw.npz", x=images)
    np.savez(tmp_path / "scaled.npz", x=(images / 16).astype(np.float32))

    def predict(name, *extra):
        args = [str(tmp_path / "run"), "--input", str(tmp_path / name), "--device", "cpu"]
        return mltk(capsys, "aesam", "predict", *args, *extra, "--json")

    code, out, err = predict("raw.npz")
    assert code == ExitCode.DATA and out == "" and "Traceback" not in err
    assert "[0, 16]" in err and "[0, 1]" in err and "--rescale" in err
    code, out, err = predict("raw.npz", "--rescale", "--top", "4")
    assert code == 0 and "rescaled" in err
    rescaled = json.loads(out)["predictions"]
    code, out, _ = predict("scaled.npz", "--top", "4")
    assert code == 0 and json.loads(out)["predictions"] == [
        {**p, "input": p["input"].replace("raw", "scaled")} for p in rescaled
    ]
    assert all(len(p["top"]) == 4 for p in rescaled)
    capsys.readouterr()
    args = [str(tmp_path / "run"), "--input", str(tmp_path / "scaled.npz"), "--top", "4"]
    assert run(["aesam", "predict", *args, "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    first = next(ln for ln in table.splitlines() if "scaled.npz[0]" in ln)
    assert first.count(":") >= 2  # the human table lists the top labels too


def test_a_run_stuck_at_chance_warns_and_names_the_radius(capsys, tmp_path):
    rigged = ["--preset", "tiny", "--epochs", "3", "--device", "cpu", "--optimizer", "sam"]
    out5 = ["--out", str(tmp_path / "r5")]
    code, _, err = mltk(capsys, "aesam", "train", *rigged, "--rho", "5", *out5)
    assert code == 0 and "at chance" in err and "--rho 5" in err
    code, _, err = mltk(capsys, "aesam", "train", *rigged, "--out", str(tmp_path / "r"))
    assert code == 0 and "at chance" not in err
    both = ["--optimizers", "erm,sam", "--seeds", "1"]
    code, _, err = mltk(capsys, "aesam", "compare", *both, *rigged[:6], "--rho", "5")
    assert code == 0 and err.count("at chance") == 1 and "sam: training accuracy" in err
