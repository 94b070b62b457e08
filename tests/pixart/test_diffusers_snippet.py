"""The docs' diffusers snippet runs as printed on the shipped model and gives mltk's pixels."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mltk.cli import run
from mltk.t2i import TINY_MODEL

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pixart.md"


def _snippet() -> str:
    section = DOCS.read_text().split("### In diffusers", 1)[1].split("\n### ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.skipif(not (TINY_MODEL / "vae").is_dir(), reason="no shipped tiny model")
def test_the_diffusers_snippet_loads_the_shipped_model_and_matches_mltk(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    exec(compile(_snippet(), "docs/pixart.md", "exec"), {})
    theirs = np.asarray(Image.open(tmp_path / "red-circle.png"))
    code = run(["pixart", "generate", "tiny", "a red circle above a blue square", "--seed", "0",
                "--out", str(tmp_path / "mltk"), "--device", "cpu", "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    ours = np.asarray(Image.open(tmp_path / "mltk" / "000-seed0.png"))
    assert theirs.shape == ours.shape == (32, 32, 3)
    assert np.array_equal(theirs, ours)
    assert theirs.std() > 10  # an image, not a blank
