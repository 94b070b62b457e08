"""`mltk aesam tune`: the validation split only, the same trials for every optimizer, the cost
cap's schedule, and compare taking each optimizer's own choice."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from mltk_plugins.aesam import tune as T
from mltk_plugins.aesam.config import TuneConfig
from mltk_plugins.aesam.data import load_data
from mltk_plugins.aesam.training import get_preset, quick_run

from mltk.cli import run
from mltk.errors import ExitCode

torch.set_num_threads(1)


def test_expected_fraction_matches_sampling_and_schedule_for_inverts_it():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(400_000)
    c = np.linspace(1.0, -1.0, len(z))  # the paper's schedule over training
    assert T.expected_fraction(1.0, -1.0) == pytest.approx(np.mean(z >= c), abs=0.003)
    assert T.expected_fraction(1.0, -1.0) == pytest.approx(0.5)
    c = np.linspace(2.0, 0.0, len(z))
    assert T.expected_fraction(2.0, 0.0) == pytest.approx(np.mean(z >= c), abs=0.003)
    for f in (0.1, 0.2, 0.5):
        hi, lo = T.schedule_for(f)
        assert hi - lo == pytest.approx(2.0) and T.expected_fraction(hi, lo) == pytest.approx(f)


def test_every_optimizer_gets_the_same_number_of_radii_and_the_cap():
    cfg = replace(TuneConfig(), trials=4, rho_min=0.1, rho_max=0.8, max_sam_fraction=0.25)
    got = {n: T.candidates(n, cfg) for n in cfg.optimizers}
    assert got["erm"] == [{}]
    radii = [0.1, 0.2, 0.4, 0.8]
    for name in ("sam", "sssam", "looksam", "aesam", "aelooksam"):
        assert [c["rho"] for c in got[name]] == pytest.approx(radii)
    assert all(c["p"] == 0.25 for c in got["sssam"])
    hi, lo = got["aesam"][0]["lambda2"], got["aesam"][0]["lambda1"]
    assert T.expected_fraction(hi, lo) == pytest.approx(0.25, abs=1e-3)


def test_the_choice_keeps_the_adaptive_optimizers_within_the_cap():
    rows = [
        {"optimizer": "aesam", "rho": 0.1, "val_acc": 0.95, "sam_fraction": 0.40},
        {"optimizer": "aesam", "rho": 0.4, "val_acc": 0.90, "sam_fraction": 0.21},
        {"optimizer": "aesam", "rho": 0.8, "val_acc": 0.85, "sam_fraction": 0.15},
    ]
    assert T.choose(rows, 0.2) == (rows[1], True)  # 0.21 is within the slack, 0.40 is not
    assert T.choose(rows, 0.1) == (rows[2], False)  # none within: the cheapest, flagged
    sam = [{**r, "optimizer": "sam", "sam_fraction": 1.0} for r in rows]
    assert T.choose(sam, 0.2) == (sam[0], True)  # no cap for SAM itself


def test_tuning_never_reads_the_test_split():
    cfg = replace(get_preset("tiny"), epochs=1, noise=0.2, limit_train=200)
    cfg = TuneConfig(**{**cfg.__dict__, "trials": 2, "optimizers": ("sam", "aesam")})
    calls = []

    def run_one(c, data, seed):
        calls.append(len(data.y_test))
        return quick_run(c, data, seed)

    def load(seed, scramble=False):
        data = load_data("digits", noise=0.2, seed=seed, limit_train=200)
        if scramble:  # another test split altogether: random images and labels
            rng = np.random.default_rng(1)
            data = replace(
                data,
                x_test=rng.standard_normal(data.x_test.shape).astype(np.float32),
                y_test=rng.integers(0, 10, len(data.y_test)),
            )
        return data

    a = T.tune(cfg, load, run_one, log=lambda m: None)
    b = T.tune(cfg, lambda s: load(s, scramble=True), run_one, log=lambda m: None)
    assert a == b  # the same choice, the same validation accuracies
    assert set(calls) == {40}  # every trial scored on 20% of the 200 training examples


def test_tune_then_compare_with_each_optimizers_own_settings(capsys, tmp_path):
    base = ["--preset", "tiny", "--epochs", "1", "--noise", "0.2", "--device", "cpu"]
    args = [*base, "--optimizers", "sam,aesam", "--trials", "2", "--rho-max", "0.4"]
    capsys.readouterr()
    assert run(["aesam", "tune", *args, "--out", str(tmp_path / "t"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "t" / "tuned.json").read_text())
    chosen = {r["optimizer"]: r for r in out["chosen"]}
    assert {r["optimizer"] for r in saved["trials"]} == {"sam", "aesam"}
    assert len(saved["trials"]) == 4 and chosen["sam"]["rho"] == saved["chosen"]["sam"]["rho"]

    both = ["--optimizers", "sam,aesam", "--seeds", "1", "--tuned", str(tmp_path / "t")]
    code = run(["aesam", "compare", *base, *both, "--json"])
    assert code == 0
    settings = json.loads(capsys.readouterr().out)["settings"]
    assert settings["sam"] == {"rho": chosen["sam"]["rho"]}
    assert settings["aesam"]["rho"] == chosen["aesam"]["rho"]
    assert settings["aesam"]["lambda2"] == chosen["aesam"]["lambda2"]

    base[base.index("0.2")] = "0.4"
    code = run(["aesam", "compare", *base, "--tuned", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE and "--noise" in err and "Traceback" not in err


def test_compare_gives_a_preset_radius_chosen_for_aesam_to_aesam_only(capsys):
    quick = ["--preset", "digits-noisy", "--epochs", "1", "--limit-train", "200"]
    both = ["--optimizers", "sam,aesam", "--seeds", "1", "--device", "cpu", "--json"]
    capsys.readouterr()
    assert run(["aesam", "compare", *quick, *both]) == 0
    out, err = capsys.readouterr()
    settings = json.loads(out)["settings"]
    assert settings["sam"] == {"rho": 0.05, "lambda1": -1.0, "lambda2": 1.0}
    assert settings["aesam"] == {}  # the preset's rho 1.0, lambda 2 -> 0
    assert "chosen for aesam" in err
    assert run(["aesam", "compare", *quick, *both, "--rho", "0.3"]) == 0
    settings = json.loads(capsys.readouterr().out)["settings"]
    assert settings["sam"] == {"lambda1": -1.0, "lambda2": 1.0}  # the given --rho is kept
