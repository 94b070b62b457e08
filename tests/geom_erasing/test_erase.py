"""Erase runs on tiny PixArt and Stable Diffusion folders built from configs: what trains, the
ESD target, and diffusers' pipelines giving mltk's pixels for the run's negative prompt."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mltk.cli import run
from mltk.t2i.pipeline_io import load_pipeline, save_pipeline
from tests.t2i.tiny import pixart_bundle, sd_bundle

PROMPT = "a red circle above a blue square"


def _erase(tmp_path, base, name, *args):
    out = tmp_path / name
    code = run(
        [
            "geom-erasing",
            "erase",
            "--base",
            str(base),
            "--size",
            "64",
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--warmup",
            "0",
            "--lr",
            "1e-2",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--quiet",
            "--json",
            *args,
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def tiny_pixart(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pixart") / "base"
    save_pipeline(folder, pixart_bundle())
    return folder


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sd") / "base"
    save_pipeline(folder, sd_bundle())
    return folder


def _weights(folder, comp):
    name = "model" if comp == "text_encoder" else "diffusion_pytorch_model"
    return load_file(str(folder / comp / f"{name}.safetensors"))


def test_geom_trains_the_denoiser_and_only_the_new_token_rows(tmp_path, tiny_pixart, capsys):
    out = _erase(tmp_path, tiny_pixart, "geom", "--method", "geom")
    summary = json.loads(capsys.readouterr().out)
    pipe = out / "pipeline"
    meta = json.loads((pipe / "mltk.json").read_text())["erase"]
    assert meta["method"] == "geom" and meta["concepts"] == ["qr code"] and meta["grid"] == 4
    assert meta["negative_prompt"] == "qr code " + " ".join(f"<l{i}>" for i in range(16))
    tok = load_pipeline(pipe).tokenizer
    assert summary["max_length"] >= len(tok(meta["negative_prompt"]).input_ids)
    from mltk_plugins.geom_erasing.erase import text_length

    long = "a red circle, qr code " + " ".join(f"<l{i}>" for i in range(16))  # 22 and </s>
    assert text_length(tok, [long, "x"], 20, "pixart") == 23
    assert text_length(tok, ["x"], 20, "pixart") == 20
    assert text_length(tok, [long], 77, "sd") == 77

    base_enc, new_enc = _weights(tiny_pixart, "text_encoder"), _weights(pipe, "text_encoder")
    table_key = "shared.weight"
    old, new = base_enc[table_key], new_enc[table_key]
    n_old = old.shape[0]
    assert torch.equal(new[:n_old], old)  # every old row bit-identical
    added = new.shape[0] - n_old
    assert added == 3 + 16  # qr, code, the comma; 16 cells
    for k, v in base_enc.items():
        if k != table_key and "embed_tokens" not in k:
            assert torch.equal(new_enc[k], v), k  # the rest of T5 is frozen
    # the new rows moved from their initial values (sin-cos at the mean norm, for the cells)
    from mltk_plugins.geom_erasing.locations import sincos_2d

    init = torch.from_numpy(sincos_2d(4, new.shape[1])).float()
    init = init * (old.norm(dim=1).mean() / init.norm(dim=1, keepdim=True))
    loc = tok.convert_tokens_to_ids([f"<l{i}>" for i in range(16)])
    moved = (new[loc] - init).norm(dim=1)
    assert (moved > 1e-4).sum() >= 1  # the cells of the batch's boxes trained
    before, after = _weights(tiny_pixart, "transformer"), _weights(pipe, "transformer")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(
        torch.equal(a, b)
        for a, b in zip(_weights(tiny_pixart, "vae").values(), _weights(pipe, "vae").values())
    )


def test_train_embeddings_none_and_plain_leave_the_table_at_its_initial_rows(tmp_path, tiny_pixart):
    for method, extra in (("geom", ["--train-embeddings", "none"]), ("plain", [])):
        out = _erase(tmp_path, tiny_pixart, method + "-none", "--method", method, *extra)
        enc = _weights(out / "pipeline", "text_encoder")
        table = enc["shared.weight"]
        first = _weights(tiny_pixart, "text_encoder")["shared.weight"]
        assert torch.equal(table[: first.shape[0]], first)
        tok = load_pipeline(out / "pipeline").tokenizer
        n_loc = sum(t.startswith("<l") for t in tok.get_added_vocab())
        assert n_loc == (16 if method == "geom" else 0)
        if method == "geom":  # the cells keep their sin-cos start exactly
            from mltk_plugins.geom_erasing.locations import sincos_2d

            loc = tok.convert_tokens_to_ids([f"<l{i}>" for i in range(16)])
            rows = torch.from_numpy(sincos_2d(4, table.shape[1])).float()
            cos = torch.nn.functional.cosine_similarity(table[loc], rows)
            torch.testing.assert_close(cos, torch.ones(16))


def test_esd_target_and_steps_on_a_toy_denoiser():
    from mltk_plugins.geom_erasing.erase import cross_attention_parameters, esd, esd_target

    from mltk.runtime import setup

    cond, uncond = torch.tensor([3.0, -1.0]), torch.tensor([1.0, 1.0])
    # eps0(x) - eta (eps0(x, c) - eps0(x)): eta 1 reflects the conditional through the
    # unconditional prediction; eta 0 is the unconditional one
    torch.testing.assert_close(esd_target(cond, uncond, 1.0), torch.tensor([-1.0, 3.0]))
    torch.testing.assert_close(esd_target(cond, uncond, 0.0), uncond)
    torch.testing.assert_close(esd_target(cond, uncond, 2.0), torch.tensor([-3.0, 5.0]))

    b = pixart_bundle()
    from mltk_plugins.geom_erasing.locations import add_tokens

    add_tokens(b.tokenizer, b.text_encoder, ["qr code"], None)
    before = {k: v.clone() for k, v in b.denoiser.state_dict().items()}

    class Cfg:
        esd_steps, esd_lr, esd_eta, esd_ddim_steps, batch_size, log_every = 30, 3e-3, 1.0, 4, 4, 100

    rt = setup(device="cpu", quiet=True, seed=0)
    # the gap between the model's conditional prediction and the target, at fixed x_t
    from mltk.t2i import text as T
    from mltk.t2i.training import denoise

    feats, mask = T.encode(b.tokenizer, b.text_encoder, ["qr code", ""], b.max_length)
    x = torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(5))
    t = torch.full((4,), 500)

    def gap(model, frozen):
        with torch.no_grad():
            pc = denoise(
                model, x, t, text=feats[:1].expand(4, -1, -1), mask=mask[:1].expand(4, -1)
            )[:, :4]
            fc = denoise(
                frozen, x, t, text=feats[:1].expand(4, -1, -1), mask=mask[:1].expand(4, -1)
            )[:, :4]
            fu = denoise(
                frozen, x, t, text=feats[1:].expand(4, -1, -1), mask=mask[1:].expand(4, -1)
            )[:, :4]
        return float(((pc - esd_target(fc, fu, 1.0)) ** 2).mean())

    import copy

    frozen = copy.deepcopy(b.denoiser)
    start = gap(b.denoiser, frozen)
    summary = esd(b, ["qr code"], Cfg, rt)
    assert summary["steps"] == 30
    assert gap(b.denoiser, frozen) < 0.7 * start
    names = {n for n, p in b.denoiser.named_parameters()}
    trained = {n for n in names if ".attn2." in n}
    assert trained and len(cross_attention_parameters(b.denoiser)) == len(trained)
    after = b.denoiser.state_dict()
    for k, v in before.items():
        if ".attn2." not in k:
            assert torch.equal(after[k], v), k  # only cross-attention moves


@pytest.mark.parametrize("family", ["pixart", "sd"])
def test_erase_runs_load_in_diffusers_and_give_mltks_images(
    tmp_path, tiny_pixart, tiny_sd, family, capsys
):
    from PIL import Image

    base = tiny_pixart if family == "pixart" else tiny_sd
    out = _erase(tmp_path, base, family, "--method", "geom")
    capsys.readouterr()
    pipe_dir = out / "pipeline"
    negative = json.loads((pipe_dir / "mltk.json").read_text())["erase"]["negative_prompt"]
    code = run(
        [
            "geom-erasing",
            "generate",
            PROMPT,
            "--model",
            str(out),
            "--num-images",
            "2",
            "--steps",
            "4",
            "--no-compare",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "gen"),
            "--device",
            "cpu",
            "--quiet",
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["erased"]["negative_prompt"] == negative
    ours = np.stack([np.asarray(Image.open(f)) for f in result["erased"]["images"]])
    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    if family == "pixart":
        from diffusers import PixArtAlphaPipeline

        pipe = PixArtAlphaPipeline.from_pretrained(str(pipe_dir))
        max_length = json.loads((pipe_dir / "mltk.json").read_text())["max_length"]
        extra = {
            "use_resolution_binning": False,
            "clean_caption": False,
            "max_sequence_length": max_length,
        }
    else:
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline.from_pretrained(str(pipe_dir))
        extra = {}
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(
        [PROMPT] * 2,
        negative_prompt=[negative] * 2,
        num_inference_steps=4,
        guidance_scale=4.5,
        generator=gens,
        height=32,
        width=32,
        output_type="np",
        **extra,
    ).images
    assert np.array_equal(ours, (theirs * 255).round().astype(np.uint8))
