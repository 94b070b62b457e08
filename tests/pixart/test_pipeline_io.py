"""diffusers layout: a folder written by mltk loads in PixArtAlphaPipeline and vice versa, with
the same images for the same seeds; incomplete folders are clear data errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from mltk_plugins.pixart import model as M
from mltk_plugins.pixart.model import scheduler_config
from mltk_plugins.pixart.training import quiet_libraries, world_text_components

from mltk.errors import DataError
from mltk.t2i.pipeline_io import Bundle, inspect_folder, load_pipeline, save_pipeline
from mltk.t2i.sampling import generate
from tests.pixart.conftest import micro

PROMPTS = ["a red circle above a blue square", "three green triangles"]
SEEDS = [11, 12]


def _components(cfg, seed=0):
    quiet_libraries()
    tok, enc = world_text_components(cfg)
    tr = M.build_pixart(cfg, seed=seed)
    with torch.no_grad():  # random non-zero weights everywhere, so every path matters
        for p in tr.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return tr, enc, tok, M.build_autoencoder(cfg, seed=seed)


def _diffusers_images(pipe, cfg, sampler="dpm"):
    gens = [torch.Generator("cpu").manual_seed(s) for s in SEEDS]
    out = pipe(
        PROMPTS,
        num_inference_steps=4,
        guidance_scale=4.5,
        generator=gens,
        height=cfg.image_size,
        width=cfg.image_size,
        output_type="np",
        clean_caption=False,
        max_sequence_length=cfg.max_length,
        use_resolution_binning=False,
    ).images
    return (out * 255).round().astype(np.uint8)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_folder_saved_by_mltk_loads_in_pixart_alpha_pipeline_with_identical_images(
    tmp_path, prediction
):
    _round_trip(tmp_path, prediction, torch.float32)


def test_identical_images_in_bf16_too(tmp_path):
    """bf16 is where batch shapes and the output mapping's dtype change the rounding."""
    _round_trip(tmp_path, "eps", torch.bfloat16)


def _round_trip(tmp_path, prediction, dtype):
    from diffusers import PixArtAlphaPipeline

    cfg = micro(autoencoder="tiny-kl", patch_size=2, prediction=prediction)
    tr, enc, tok, vae = _components(cfg)
    save_pipeline(tmp_path / "p", Bundle("pixart", tr, enc, tok, vae, scheduler_config(prediction), cfg.max_length))  # fmt: skip
    ours = generate(load_pipeline(tmp_path / "p", dtype=dtype), PROMPTS, seeds=SEEDS, steps=4)
    pipe = PixArtAlphaPipeline.from_pretrained(str(tmp_path / "p"), torch_dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    theirs = _diffusers_images(pipe, cfg)
    assert ours.shape == (2, 32, 32, 3)
    assert np.array_equal(ours, theirs)
    assert not np.array_equal(ours[0], ours[1])


def test_folder_saved_by_diffusers_loads_in_mltk_with_identical_images(tmp_path):
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline

    cfg = micro(autoencoder="tiny-kl", patch_size=2, prediction="eps")
    tr, enc, tok, vae = _components(cfg, seed=3)
    pipe = PixArtAlphaPipeline(tokenizer=tok, text_encoder=enc, vae=vae, transformer=tr,
                               scheduler=DPMSolverMultistepScheduler(**scheduler_config("eps")))  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(str(tmp_path / "d"))
    theirs = _diffusers_images(pipe, cfg)
    bundle = load_pipeline(tmp_path / "d")
    bundle.max_length = cfg.max_length  # diffusers' folder does not record the tiny text length
    ours = generate(bundle, PROMPTS, seeds=SEEDS, steps=4)
    assert np.array_equal(ours, theirs)


def test_ddim_and_negative_prompt_change_the_images(tmp_path):
    cfg = micro(autoencoder="tiny-kl", patch_size=2, prediction="eps")
    tr, enc, tok, vae = _components(cfg)
    save_pipeline(tmp_path / "p", Bundle("pixart", tr, enc, tok, vae, scheduler_config("eps"), cfg.max_length))  # fmt: skip
    b = load_pipeline(tmp_path / "p")
    base = generate(b, PROMPTS, seeds=SEEDS, steps=4)
    assert np.array_equal(base, generate(b, PROMPTS, seeds=SEEDS, steps=4))  # seeds reproduce
    assert not np.array_equal(base, generate(b, PROMPTS, seeds=SEEDS, steps=4, sampler="ddim"))
    assert not np.array_equal(
        base, generate(b, PROMPTS, seeds=SEEDS, steps=4, negative_prompt="red")
    )
    assert not np.array_equal(base, generate(b, PROMPTS, seeds=[1, 2], steps=4))


@pytest.mark.parametrize("component", ["vae", "text_encoder", "transformer", "tokenizer"])
def test_a_folder_missing_a_component_is_a_data_error_naming_it(tmp_path, component):
    cfg = micro(autoencoder="tiny-kl", patch_size=2)
    tr, enc, tok, vae = _components(cfg)
    save_pipeline(tmp_path / "p", Bundle("pixart", tr, enc, tok, vae, scheduler_config("v"), cfg.max_length))  # fmt: skip
    inspect_folder(tmp_path / "p")
    shutil.rmtree(tmp_path / "p" / component)
    with pytest.raises(DataError, match=f"missing its {component}/"):
        load_pipeline(tmp_path / "p")


def test_pixel_space_model_round_trips_without_a_vae(tmp_path):
    cfg = micro()
    tr, enc, tok, ae = _components(cfg)
    save_pipeline(tmp_path / "p", Bundle("pixart", tr, enc, tok, ae, scheduler_config("v"), cfg.max_length))  # fmt: skip
    assert not (tmp_path / "p" / "vae").exists()
    b = load_pipeline(tmp_path / "p")
    assert b.vae_factor == 1 and b.prediction == "v" and b.max_length == cfg.max_length
    for k, v in tr.state_dict().items():
        assert torch.equal(v, b.transformer.state_dict()[k])


def _sentencepiece_tokenizer(folder):
    """A T5 tokenizer folder as published PixArt checkpoints ship it: ``spiece.model`` and JSON
    settings, no ``tokenizer.json`` (trained here on the world's captions)."""
    import json

    import sentencepiece as spm

    from mltk.data import world as W

    folder.mkdir(parents=True)
    (folder.parent / "corpus.txt").write_text("\n".join(W.corpus()[:3000]))
    spm.SentencePieceTrainer.train(input=str(folder.parent / "corpus.txt"), model_prefix=str(folder / "spiece"),
                                   vocab_size=50, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2)  # fmt: skip
    (folder / "spiece.vocab").unlink()
    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special))
    settings = {"tokenizer_class": "T5Tokenizer", "model_max_length": 120, "extra_ids": 0}
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, **special}))
    return spm.SentencePieceProcessor(model_file=str(folder / "spiece.model"))


def test_a_folder_in_the_published_pixart_layout_loads_with_identical_images(tmp_path):
    """The layout of the released PixArt-XL-2 folders: the transformer saved as diffusers'
    generic ``Transformer2DModel``, T5 weights in shards with an index, a sentencepiece
    tokenizer without ``tokenizer.json``. Loaded by mltk and by PixArtAlphaPipeline alike."""
    import json

    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline

    cfg = micro(autoencoder="tiny-kl", patch_size=2, prediction="eps")
    from mltk.t2i import text as T

    tr, _, _, vae = _components(cfg, seed=5)
    root = tmp_path / "PixArt-XL-2-like"
    sp = _sentencepiece_tokenizer(root / "tokenizer")
    t5 = T.t5_config(
        sp.get_piece_size(), cfg.text_dim, cfg.text_layers, cfg.text_heads, cfg.text_ff
    )
    enc = T.build_text_encoder(t5, seed=5)
    tr.save_pretrained(str(root / "transformer"))
    conf = json.loads((root / "transformer" / "config.json").read_text())
    conf.update(_class_name="Transformer2DModel", _diffusers_version="0.22.0.dev0",
                num_vector_embeds=None, only_cross_attention=False, double_self_attention=False,
                use_linear_projection=False)  # fmt: skip
    (root / "transformer" / "config.json").write_text(json.dumps(conf))
    enc.save_pretrained(str(root / "text_encoder"), max_shard_size="40KB")
    assert (root / "text_encoder" / "model.safetensors.index.json").is_file()
    vae.save_pretrained(str(root / "vae"))
    DPMSolverMultistepScheduler(**scheduler_config("eps")).save_pretrained(str(root / "scheduler"))
    (root / "model_index.json").write_text(json.dumps({
        "_class_name": "PixArtAlphaPipeline", "_diffusers_version": "0.22.0.dev0",
        "scheduler": ["diffusers", "DPMSolverMultistepScheduler"],
        "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"],
        "transformer": ["diffusers", "Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"],
    }))  # fmt: skip
    assert not (root / "tokenizer" / "tokenizer.json").exists()

    bundle = load_pipeline(root)
    ids = bundle.tokenizer(PROMPTS[0]).input_ids
    assert ids == sp.encode(PROMPTS[0]) + [sp.eos_id()]  # the tokenizer is the sentencepiece model
    for k, v in tr.state_dict().items():
        assert torch.equal(v, bundle.transformer.state_dict()[k])
    bundle.max_length = cfg.max_length
    ours = generate(bundle, PROMPTS, seeds=SEEDS, steps=4)
    pipe = PixArtAlphaPipeline.from_pretrained(str(root))
    pipe.set_progress_bar_config(disable=True)
    assert np.array_equal(ours, _diffusers_images(pipe, cfg))


def test_resolution_binning_gives_diffusers_images_at_any_size(tmp_path):
    """A 256 px latent model (8x VAE, sample size 32): a 200 x 360 request is denoised at the
    nearest bucket of diffusers' 256 table (192 x 336) and resized, exactly as the pipeline's
    ``use_resolution_binning`` does; without binning the size is refused."""
    from diffusers import AutoencoderKL, PixArtAlphaPipeline

    from mltk.errors import UsageError
    from mltk.t2i.sampling import bucket_for

    cfg = micro(autoencoder="sd", patch_size=2, image_size=256, prediction="eps")
    tr, enc, tok, _ = _components(cfg, seed=6)
    torch.manual_seed(0)
    vae = AutoencoderKL(down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                        block_out_channels=[8, 8, 8, 8], layers_per_block=1, latent_channels=4,
                        norm_num_groups=4, sample_size=256).eval()  # fmt: skip
    save_pipeline(tmp_path / "p", Bundle("pixart", tr, enc, tok, vae, scheduler_config("eps"), cfg.max_length))  # fmt: skip
    bundle = load_pipeline(tmp_path / "p")
    assert bundle.vae_factor == 8 and bucket_for(bundle, 200, 360) == (192, 336)
    with pytest.raises(UsageError, match="--resolution-binning"):
        generate(bundle, PROMPTS, seeds=SEEDS, steps=2, height=200, width=360)
    ours = generate(
        bundle, PROMPTS, seeds=SEEDS, steps=2, height=200, width=360, resolution_binning=True
    )
    pipe = PixArtAlphaPipeline.from_pretrained(str(tmp_path / "p"))
    pipe.set_progress_bar_config(disable=True)
    gens = [torch.Generator("cpu").manual_seed(s) for s in SEEDS]
    theirs = pipe(PROMPTS, num_inference_steps=2, guidance_scale=4.5, generator=gens, height=200, width=360,
                  output_type="np", clean_caption=False, max_sequence_length=cfg.max_length,
                  use_resolution_binning=True).images  # fmt: skip
    assert ours.shape == (2, 200, 360, 3)
    assert np.array_equal(ours, (theirs * 255).round().astype(np.uint8))
