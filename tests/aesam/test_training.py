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
