"""Models, augmentation and the configuration of the aesam training loop."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from mltk_plugins.aesam.models import build_model
from mltk_plugins.aesam.training import PRESETS, AESAMConfig, augment_batch, get_preset
from torch.nn import functional as F

from mltk.errors import UsageError

torch.set_num_threads(1)


@pytest.mark.parametrize(
    "name, shape", [("mlp", (1, 8, 8)), ("cnn", (1, 8, 8)), ("resnet18", (3, 32, 32))]
)
def test_models_map_images_to_logits(name, shape):
    model = build_model(name, shape, 7, width=4 if name == "resnet18" else None)
    assert model(torch.randn(3, *shape)).shape == (3, 7)


def test_augment_batch_is_a_per_image_crop_of_the_padded_image_or_its_mirror():
    x = torch.randn(16, 2, 5, 6)
    out = augment_batch(x, torch.Generator().manual_seed(0), pad=2)
    padded = F.pad(x, (2, 2, 2, 2))
    for b in range(16):
        crops = [padded[b, :, i : i + 5, j : j + 6] for i in range(5) for j in range(5)]
        candidates = crops + [c.flip(-1) for c in crops]
        assert any(torch.equal(out[b], c) for c in candidates), b
    assert not torch.equal(out, x)


def test_every_preset_is_valid_and_bad_values_name_the_option():
    for cfg in PRESETS.values():
        replace(cfg, data_path="x" if cfg.data != "digits" else None).validate()
    with pytest.raises(UsageError, match="--lr"):
        AESAMConfig(lr=0.0).validate()
    with pytest.raises(UsageError, match="--optimizer"):
        AESAMConfig(optimizer="adam").validate()
    with pytest.raises(UsageError, match="--data cifar10 needs --data-path"):
        AESAMConfig(data="cifar10").validate()
    with pytest.raises(UsageError, match="--preset"):
        get_preset("huge")


def _records(train_accs):
    from mltk_plugins.aesam.training import EpochRecord

    return [
        EpochRecord(e + 1, 10 * (e + 1), 2.3, a, 2.3, a, 1.0, 20, 0.05, 0.0, 0.0, None, 1.0)
        for e, a in enumerate(train_accs)
    ]


def test_the_chance_warning_reads_the_epoch_asked_and_names_the_settings_to_blame():
    from mltk_plugins.aesam.training import at_chance, left_chance

    # slow start at chance, then learning: warned early, not at the end, and the note says so
    history = _records([0.10, 0.11, 0.12, 0.60, 0.90])
    sam = replace(get_preset("tiny"), optimizer="sam", rho=0.4, epochs=5)
    early = at_chance(sam, history, 10, epoch=3)
    assert "after 3 epochs" in early and "--rho 0.4" in early and "--alpha" not in early
    assert at_chance(sam, history, 10) is None  # the last epoch: 0.90
    assert "left chance" in left_chance(history, 10) and "0.900 after 5 epochs" in left_chance(
        history, 10
    )
    # 1.5x chance is the line: 0.15 for 10 classes, 0.3 for 5
    assert at_chance(sam, _records([0.15]), 10) and not at_chance(sam, _records([0.16]), 10)
    assert at_chance(sam, _records([0.3]), 5) and left_chance(_records([0.3]), 5) is None
    # LookSAM's reuse is a suspect too; ERM's is the learning rate
    look = replace(sam, optimizer="aelooksam", alpha=0.7)
    assert "--rho 0.4 or LookSAM's reuse --alpha 0.7" in at_chance(look, history, 10, epoch=2)
    erm = replace(sam, optimizer="erm", lr=0.5)
    assert "--lr 0.5" in at_chance(erm, history, 10, epoch=1)
    assert at_chance(sam, history, 10, epoch=9) is None and at_chance(sam, [], 10) is None
