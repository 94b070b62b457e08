"""Each folder mltk writes carries a README whose diffusers call runs as printed (with the
folder's path put in) and, for PixArt, gives the pixels mltk's own sampler gives."""

from __future__ import annotations

import re

import numpy as np

from mltk.t2i.autoencoders import IdentityAutoencoder
from mltk.t2i.pipeline_io import Bundle, load_pipeline, save_pipeline
from mltk.t2i.sampling import generate
from tests.t2i.tiny import pixart_bundle, sd_bundle


def _run_readme(folder):
    readme = (folder / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    code = code.replace("THIS_FOLDER", str(folder))
    scope: dict = {}
    exec(compile(code, str(folder / "README.md"), "exec"), scope)
    return np.asarray(scope["image"]), readme


def test_a_pixart_folders_readme_call_gives_mltks_pixels(tmp_path):
    save_pipeline(tmp_path / "p", pixart_bundle())
    theirs, readme = _run_readme(tmp_path / "p")
    ours = generate(load_pipeline(tmp_path / "p"), ["a red circle above a blue square"], seeds=[0])
    assert theirs.shape == (32, 32, 3) and np.array_equal(theirs, ours[0])
    assert "max_sequence_length=20" in readme and "clean_caption=False" in readme


def test_a_stable_diffusion_folders_readme_call_runs(tmp_path):
    save_pipeline(tmp_path / "sd", sd_bundle())
    theirs, _ = _run_readme(tmp_path / "sd")
    ours = generate(load_pipeline(tmp_path / "sd"), ["a red circle above a blue square"], seeds=[0],
                    steps=50, guidance=7.5)  # fmt: skip  # StableDiffusionPipeline's defaults
    assert theirs.shape == (32, 32, 3) and np.array_equal(theirs, ours[0])


def test_a_pixel_space_folders_readme_says_diffusers_cannot_decode_it(tmp_path):
    b = pixart_bundle()
    pixel = Bundle("pixart", b.denoiser, b.text_encoder, b.tokenizer, IdentityAutoencoder(),
                   b.scheduler_config, b.max_length)  # fmt: skip
    save_pipeline(tmp_path / "p", pixel)
    readme = " ".join((tmp_path / "p" / "README.md").read_text().split())
    assert not (tmp_path / "p" / "vae").exists()
    assert "diffusers alone cannot decode" in readme and "mltk pixart generate" in readme
    assert "```python" not in readme  # no call offered that would fail
