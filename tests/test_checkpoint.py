"""Checkpoints: safetensors + JSON, atomic, restoring model, optimizer, scheduler and RNG state."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from mltk import atomic
from mltk.checkpoint import (
    load_checkpoint,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from mltk.errors import DataError


def _trained(steps=3):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=20)
    for _ in range(steps):
        loss = model(torch.randn(5, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model, opt, sched


def _continue(model, opt, sched, steps=3):
    losses = []
    for _ in range(steps):
        loss = model(torch.randn(5, 4)).pow(2).mean() + random.random() + float(np.random.rand())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return losses


def test_training_state_round_trip_continues_identically(tmp_path):
    model, opt, sched = _trained()
    random.seed(5)
    np.random.seed(5)
    save_training_state(
        tmp_path / "ck", model=model, optimizer=opt, scheduler=sched, step=3, meta={"note": "x"}
    )
    expected = _continue(model, opt, sched)
    final = {k: v.clone() for k, v in model.state_dict().items()}

    model2, opt2, sched2 = _trained(steps=0)
    torch.manual_seed(999)
    random.seed(999)
    np.random.seed(999)
    meta = load_training_state(tmp_path / "ck", model=model2, optimizer=opt2, scheduler=sched2)
    assert meta["step"] == 3 and meta["note"] == "x"
    assert _continue(model2, opt2, sched2) == expected
    for k, v in model2.state_dict().items():
        assert torch.equal(v, final[k])


def test_checkpoint_files_are_safetensors_and_json_only(tmp_path):
    model, opt, sched = _trained()
    save_training_state(tmp_path / "ck", model=model, optimizer=opt, scheduler=sched, step=1)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "meta.json",
        "tensors.safetensors",
    ]
    meta = json.loads((tmp_path / "ck" / "meta.json").read_text())
    assert meta["versions"]["torch"] == torch.__version__
    # both files get the mode a plain open() gives (safetensors alone would create 0600)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "ck").iterdir()}
    assert modes["tensors.safetensors"] == modes["meta.json"]


def test_loading_never_unpickles(tmp_path, monkeypatch):
    import pickle

    save_checkpoint(tmp_path / "ck", {"w": torch.ones(3)}, {"step": 1})

    def forbidden(*a, **k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    tensors, meta = load_checkpoint(tmp_path / "ck")
    assert torch.equal(tensors["w"], torch.ones(3)) and meta["step"] == 1


def test_a_pickle_in_place_of_the_weights_is_rejected(tmp_path):
    import pickle

    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "tensors.safetensors").write_bytes(pickle.dumps({"w": [1, 2]}))
    (tmp_path / "ck" / "meta.json").write_text("{}")
    with pytest.raises(DataError, match="is corrupt"):
        load_checkpoint(tmp_path / "ck")


def test_save_replaces_atomically_and_a_crash_between_renames_is_recovered(tmp_path):
    target = tmp_path / "ck"
    save_checkpoint(target, {"w": torch.zeros(2)}, {"step": 1})
    save_checkpoint(target, {"w": torch.ones(2)}, {"step": 2})
    assert load_checkpoint(target)[1]["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporaries left behind
    # Simulate a crash after the old folder was moved aside but before the new one arrived.
    target.rename(tmp_path / ".ck.old-deadbeef")
    assert atomic.recover_dir(target).name == ".ck.old-deadbeef"
    assert load_checkpoint(target)[1]["step"] == 2


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "ck"
    save_checkpoint(target, {"w": torch.zeros(2)}, {"step": 1})
    import safetensors.torch

    def crash_midway(tensors, path, *a, **k):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, {"w": torch.ones(2)}, {"step": 2})
    assert load_checkpoint(target)[1]["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_weights_of_another_model_are_a_data_error(tmp_path):
    model, _, _ = _trained(0)
    save_training_state(tmp_path / "ck", model=model, step=0)
    with pytest.raises(DataError, match="does not match this model"):
        load_training_state(tmp_path / "ck", model=torch.nn.Linear(3, 3))


def test_a_tensor_of_another_shape_is_named_in_the_error(tmp_path):
    save_training_state(tmp_path / "ck", model=torch.nn.Linear(4, 2), step=0)
    with pytest.raises(DataError, match=r"another version of the model.*size mismatch for weight"):
        load_training_state(tmp_path / "ck", model=torch.nn.Linear(3, 2))


def test_non_finite_numbers_in_meta_are_stored_as_null(tmp_path):
    save_checkpoint(
        tmp_path / "ck", {"w": torch.zeros(1)}, {"loss": float("nan"), "best": float("inf")}
    )
    meta = json.loads((tmp_path / "ck" / "meta.json").read_text())
    assert meta["loss"] is None and meta["best"] is None
