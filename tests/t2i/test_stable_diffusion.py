"""A tiny Stable Diffusion folder built from configs: diffusers loads what mltk writes, sampling
with a negative prompt gives the pipeline's pixels, and train_denoiser trains exactly the
parameters it is given (a weight map, only new token rows of the text encoder)."""

from __future__ import annotations

import numpy as np
import torch

from mltk.t2i.objective import Diffusion
from mltk.t2i.pipeline_io import load_pipeline, save_pipeline
from mltk.t2i.sampling import generate
from tests.t2i.tiny import sd_bundle

PROMPTS = ["a red circle above a blue square", "three green triangles"]


def test_a_tiny_sd_folder_loads_in_diffusers_and_samples_its_pixels_with_a_negative_prompt(
    tmp_path,
):
    from diffusers import StableDiffusionPipeline

    save_pipeline(tmp_path / "sd", sd_bundle())
    bundle = load_pipeline(tmp_path / "sd")
    assert bundle.kind == "sd" and bundle.max_length == 77 and bundle.vae_factor == 2
    ours = generate(bundle, PROMPTS, seeds=[1, 2], negative_prompt="yellow", steps=4,
                    guidance=5.0)  # fmt: skip
    assert ours.shape == (2, 32, 32, 3)
    pipe = StableDiffusionPipeline.from_pretrained(str(tmp_path / "sd"))
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(PROMPTS, negative_prompt=["yellow"] * 2, num_inference_steps=4, guidance_scale=5.0,
                  generator=[torch.Generator().manual_seed(s) for s in (1, 2)], height=32,
                  width=32, output_type="np").images  # fmt: skip
    assert np.array_equal(ours, (theirs * 255).round().astype(np.uint8))
    plain = generate(bundle, PROMPTS, seeds=[1, 2], steps=4, guidance=5.0)
    assert not np.array_equal(ours, plain)  # the negative prompt is used


def _run(tmp_path):
    from mltk.runs import RunDir
    from mltk.runtime import setup

    return setup(device="cpu", quiet=True), RunDir.create("t2i-test", out=tmp_path / "run")


def test_train_denoiser_with_a_weight_map_trains_only_the_new_token_rows(tmp_path):
    """The UNet and the rows of two added tokens train; every other weight of the text encoder,
    old token rows included, is bit-identical after two AdamW steps."""
    from mltk.t2i.text import encode_with_grad
    from mltk.t2i.training import Captions, Settings, row_mask, train_denoiser

    b = sd_bundle()
    tok, enc, unet = b.tokenizer, b.text_encoder, b.denoiser
    old_rows = len(tok)
    tok.add_tokens(["<l0>", "<l1>"])
    enc.resize_token_embeddings(len(tok))
    table = enc.get_input_embeddings().weight
    enc.requires_grad_(False)
    table.requires_grad_(True)
    hook = row_mask(table, range(old_rows, len(tok)))
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    unet_before = {k: v.clone() for k, v in unet.state_dict().items()}

    texts = ["", "a red circle <l0>", "two blue squares <l1>"]
    captions = Captions(texts, short=np.array([1, 2, 1, 2]), dense=np.array([[1], [2], [1], [2]]))
    latents = [{"mean": np.random.default_rng(0).normal(size=(4, 4, 16, 16)).astype(np.float32),
                "std": np.zeros((4, 4, 16, 16), np.float32)}]  # fmt: skip
    weights_seen = []

    def weight_map(rows, shape):
        w = torch.ones(shape[0], 1, *shape[2:])
        w[:, :, :8] = 2.0  # more weight on the top half
        weights_seen.append(w)
        return w / w.mean(dim=(1, 2, 3), keepdim=True)

    rt, run = _run(tmp_path)
    result = train_denoiser(
        unet, epoch_data=lambda: (None, latents), offsets=np.array([0, 4]), captions=captions,
        objective=Diffusion.from_config(b.scheduler_config),
        settings=Settings(steps=2, batch_size=2, lr=1e-2, warmup=0, caption_dropout=0.0,
                          log_every=1, save_every=2),
        rt=rt, run=run, factor=2, weight_map=weight_map,
        params=[{"params": list(unet.parameters())}, {"params": [table], "weight_decay": 0.0}],
        live_text=lambda ts: encode_with_grad(tok, enc, ts, b.max_length),
    )  # fmt: skip
    hook.remove()
    assert result.steps == 2 and len(weights_seen) == 2
    after = enc.state_dict()
    for k, v in before.items():
        if k.endswith("token_embedding.weight"):
            assert torch.equal(after[k][:old_rows], v[:old_rows])  # old rows untouched
            assert not torch.equal(after[k][old_rows:], v[old_rows:])  # new rows trained
        else:
            assert torch.equal(after[k], v), k
    assert any(not torch.equal(unet.state_dict()[k], v) for k, v in unet_before.items())
    rows = [r for r in result.history]
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["loss"]) for r in rows)


def test_the_loss_map_averages_as_documented():
    """mse = mean over pixels and channels of weight * (target - prediction)^2."""
    d = Diffusion(prediction="eps")
    g = torch.Generator().manual_seed(0)
    x0, noise, out = (torch.randn(2, 3, 4, 4, generator=g) for _ in range(3))
    t = torch.tensor([10, 600])
    xt = d.q_sample(x0, t, noise)
    plain = d.losses(out, x0, xt, t, noise)["mse"]
    torch.testing.assert_close(
        d.losses(out, x0, xt, t, noise, weight=torch.ones(2, 1, 4, 4))["mse"], plain
    )
    torch.testing.assert_close(
        d.losses(out, x0, xt, t, noise, weight=torch.full((2, 1, 4, 4), 3.0))["mse"], 3 * plain
    )
    w = torch.zeros(2, 1, 4, 4)
    w[:, :, :2] = 1.0  # the top half only
    by_hand = ((noise - out)[:, :, :2] ** 2).flatten(1).sum(1) / (3 * 16)
    torch.testing.assert_close(d.losses(out, x0, xt, t, noise, weight=w)["mse"], by_hand)


def test_a_frozen_teachers_target_trains_the_student_and_leaves_the_teacher(tmp_path):
    """With ``target_fn`` the loss is the squared error to the teacher's target: a student equal
    to its teacher, aimed at the teacher's prediction + 1, starts at a loss of exactly 1."""
    import copy

    from mltk.t2i.training import Captions, Settings, denoise, train_denoiser

    b = sd_bundle()
    student = b.denoiser
    teacher = copy.deepcopy(student).requires_grad_(False)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in student.state_dict().items()}
    feats = torch.randn(3, 77, 32, generator=torch.Generator().manual_seed(0))
    table = {"feats": feats.numpy(), "mask": np.ones((3, 77), np.int64)}
    latents = [{"mean": np.random.default_rng(1).normal(size=(4, 4, 16, 16)).astype(np.float32),
                "std": np.zeros((4, 4, 16, 16), np.float32)}]  # fmt: skip

    def target_fn(teacher, xt, t, x0, noise, cond):
        with torch.no_grad():
            return denoise(teacher, xt, t, text=cond["text"], mask=cond["mask"]) + 1.0

    rt, run = _run(tmp_path)
    result = train_denoiser(
        student, epoch_data=lambda: (table, latents), offsets=np.array([0, 4]),
        captions=Captions(["", "a", "b"], short=np.array([1, 2, 1, 2]),
                          dense=np.array([[1], [2], [1], [2]])),
        objective=Diffusion.from_config(b.scheduler_config),
        settings=Settings(steps=2, batch_size=2, lr=1e-3, warmup=0, caption_dropout=0.0,
                          log_every=1, save_every=2),
        rt=rt, run=run, factor=2, teacher=teacher, target_fn=target_fn,
    )  # fmt: skip
    assert abs(result.history[0]["loss"] - 1.0) < 1e-5
    for k, v in teacher_before.items():
        assert torch.equal(teacher.state_dict()[k], v), k
    assert any(not torch.equal(student.state_dict()[k], v) for k, v in student_before.items())
