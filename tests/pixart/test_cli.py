"""`mltk pixart train|eval|generate` end to end on a cut-down tiny preset; exit codes of bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from mltk.cli import run
from mltk.errors import ExitCode

MICRO = """
num_layers = 1
num_heads = 2
head_dim = 16
text_dim = 32
text_layers = 1
text_heads = 2
text_ff = 64
dataset_size = 48
batch_size = 16
steps = 4
log_every = 2
save_every = 2
warmup = 2
"""


def mltk(capsys, *args):
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One micro training run shared by the tests that only read it."""
    import os

    root = tmp_path_factory.mktemp("pixart-run")
    (root / "micro.toml").write_text(MICRO)
    env = {
        "MLTK_LOAD_PLUGINS": "pixart",
        "MLTK_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "pixart-cache"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # module scope: monkeypatch is per test, so set and restore by hand
    try:
        code = run(["pixart", "train", "--config", str(root / "micro.toml"), "--out", str(root / "run"),
                    "--device", "cpu", "--threads", "1", "--quiet"])  # fmt: skip
        assert code == 0
        yield root
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_train_writes_a_run_with_metrics_checkpoint_and_pipeline(capsys, trained, tmp_path):
    code, out, _ = mltk(capsys, "pixart", "train", "--config", str(trained / "micro.toml"), "--out",
                        str(tmp_path / "r"), "--device", "cpu", "--json")  # fmt: skip
    assert code == 0
    res = json.loads(out)
    assert res["schema_version"] == 1 and res["steps"] == 4 and res["kind"] == "pixart"
    assert (tmp_path / "r" / "pipeline" / "model_index.json").is_file()
    assert (tmp_path / "r" / "checkpoint").is_dir()
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert all(np.isfinite(r["text_gap"]) and np.isfinite(r["vlb"]) for r in rows)
    # the shared fixture run built the caches; this run (same world, same encoder) hits them
    assert res["cache"]["text_builds"] == 0 and res["cache"]["text_hits"] >= 1


def test_resume_continues_from_the_checkpoint(capsys, trained, tmp_path):
    shutil.copytree(trained / "run", tmp_path / "run")
    code, out, err = mltk(capsys, "pixart", "train", "--resume", str(tmp_path / "run"), "--steps",
                          "6", "--lr", "0.5", "--out", str(tmp_path / "elsewhere"), "--device",
                          "cpu", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["steps"] == 6
    assert "ignoring --lr, --out" in err and not (tmp_path / "elsewhere").exists()
    steps = [
        json.loads(x)["step"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [2, 4, 6]


def test_generate_writes_pngs_for_each_prompt_and_seed(capsys, trained, tmp_path):
    code, out, _ = mltk(capsys, "pixart", "generate", str(trained / "run"), "a red circle above a blue square",
                        "two green squares", "--num-images", "2", "--steps", "3", "--out",
                        str(tmp_path / "img"), "--device", "cpu", "--json")  # fmt: skip
    assert code == 0
    res = json.loads(out)
    assert [f["seed"] for f in res["images"]] == [0, 1, 0, 1]
    for f in res["images"]:
        assert Image.open(f["file"]).size == (32, 32)
    a, b = (np.asarray(Image.open(res["images"][i]["file"])) for i in (0, 1))
    assert not np.array_equal(a, b)  # different seeds, different images


def test_eval_scores_alignment_per_attribute_and_frechet(capsys, trained):
    code, out, _ = mltk(capsys, "pixart", "eval", str(trained / "run"), "--prompts", "6", "--steps", "2",
                        "--device", "cpu", "--json")  # fmt: skip
    assert code == 0
    res = json.loads(out)
    for k in ("acc_colour", "acc_shape", "acc_count", "acc_all"):
        assert 0.0 <= res[k] <= 1.0
    assert np.isfinite(res["frechet"]) and res["frechet"] >= 0


def test_pixel_stage_then_align_from_it(capsys, trained, tmp_path):
    cfg = str(trained / "micro.toml")
    code, out, _ = mltk(capsys, "pixart", "train", "--stage", "pixel", "--config", cfg, "--out",
                        str(tmp_path / "p1"), "--device", "cpu", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["kind"] == "dit"
    code, _, err = mltk(capsys, "pixart", "generate", str(tmp_path / "p1"), "a red circle")
    assert code == ExitCode.DATA and "stage-1" in err
    code, out, _ = mltk(capsys, "pixart", "train", "--stage", "align", "--init", str(tmp_path / "p1"),
                        "--config", cfg, "--out", str(tmp_path / "p2"), "--device", "cpu", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["kind"] == "pixart"
    code, out, _ = mltk(capsys, "pixart", "train", "--stage", "aesthetic", "--init", str(tmp_path / "p2"),
                        "--config", cfg, "--out", str(tmp_path / "p3"), "--device", "cpu", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["images"] < 48  # the high-quality subset only


def test_training_on_a_folder_counts_unreadable_images(capsys, trained, tmp_path):
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
        (tmp_path / f"{i}.txt").write_text("a red circle\na small red circle in the center\n")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    code, out, err = mltk(capsys, "pixart", "train", "--data", str(tmp_path), "--config",
                          str(trained / "micro.toml"), "--out", str(tmp_path / "r"), "--device", "cpu",
                          "--json")  # fmt: skip
    assert code == 0, err
    res = json.loads(out)
    assert res["images"] == 20 and res["skipped_images"] == 1
    assert "skipped 1 unreadable" in err


def test_empty_prompt_file_is_a_data_error(capsys, trained, tmp_path):
    (tmp_path / "p.txt").write_text("\n  \n")
    code, _, err = mltk(capsys, "pixart", "generate", str(trained / "run"), "--prompts-file",
                        str(tmp_path / "p.txt"))  # fmt: skip
    assert code == ExitCode.DATA and "holds no prompts" in err


def test_checkpoint_missing_a_component_is_a_data_error(capsys, trained, tmp_path):
    shutil.copytree(trained / "run" / "pipeline", tmp_path / "p")
    shutil.rmtree(tmp_path / "p" / "text_encoder")
    code, _, err = mltk(capsys, "pixart", "generate", str(tmp_path / "p"), "a red circle")
    assert code == ExitCode.DATA and "missing its text_encoder/" in err


def test_a_diverging_run_exits_6(capsys, trained, tmp_path):
    code, out, err = mltk(capsys, "pixart", "train", "--config", str(trained / "micro.toml"),
                          "--lr", "1e30", "--out", str(tmp_path / "r"), "--json")  # fmt: skip
    assert code == ExitCode.DIVERGED and out == ""
    assert "lower --lr" in err and "Traceback" not in err


def test_wrong_kinds_of_path_are_named_as_such(capsys, tmp_path):
    other = tmp_path / "tensor_run"
    other.mkdir()
    (other / "config.json").write_text('{"plugin": "tensor"}')
    (tmp_path / "w.npy").write_bytes(b"x")
    for args, words in (
        ([str(other), "x"], "is a run folder of mltk tensor"),
        ([str(tmp_path / "w.npy"), "x"], "is a file"),
        (["tiny", "x", "--prompts-file", str(tmp_path)], "is a folder"),
    ):
        code, out, err = mltk(capsys, "pixart", "generate", *args, "--device", "cpu")
        assert code == ExitCode.DATA and words in err and out == "", err


def test_resolution_not_divisible_by_patch_is_a_usage_error(capsys, trained):
    code, _, err = mltk(capsys, "pixart", "generate", str(trained / "run"), "a red circle",
                        "--height", "30")  # fmt: skip
    assert code == ExitCode.USAGE and "not divisible by patch size x VAE factor" in err


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["train", "--preset", "huge"], ExitCode.USAGE, "--preset must be one of"),
        (["train", "--stage", "aesthetic", "--steps", "1"], ExitCode.USAGE, "--init"),
        (["train", "--caption-mode", "long"], ExitCode.USAGE, "--caption-mode"),
        (["generate"], ExitCode.USAGE, "no prompt given"),
        (["train", "--lr", "inf"], ExitCode.USAGE, "--lr inf must be a finite number"),
        (["train", "--ema-decay", "nan"], ExitCode.USAGE, "--ema-decay nan must be a finite"),
        (["train", "--ema-decay", "2"], ExitCode.USAGE, "--ema-decay 2.0 must be in [0, 1)"),
        (["train", "--grad-clip", "-1"], ExitCode.USAGE, "--grad-clip -1.0 must be positive"),
        (["train", "--warmup", "-1"], ExitCode.USAGE, "--warmup -1 must not be negative"),
        (["generate", "x", "--guidance", "inf"], ExitCode.USAGE, "--guidance inf must be"),
        (["generate", "x", "--height", "100000"], ExitCode.USAGE, "--height 100000 must be"),
        (["generate", "x", "--height", "0"], ExitCode.USAGE, "--height 0 must be"),
        (["eval", "--guidance", "nan"], ExitCode.USAGE, "--guidance nan must be"),
        (["generate", "/nonexistent/ckpt", "x"], ExitCode.DATA, "does not exist"),
    ],
)
def test_bad_options_exit_with_a_clear_sentence(capsys, args, code, needle):
    got, _, err = mltk(capsys, "pixart", *args, "--device", "cpu")
    assert got == code and needle in err and "Traceback" not in err


def test_train_under_torchrun_ddp_on_cpu(trained, tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", MLTK_LOAD_PLUGINS="pixart")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "mltk", "pixart", "train",
           "--config", str(trained / "micro.toml"), "--out", str(tmp_path / "ddp"), "--device", "cpu", "--json"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1 and results[0]["steps"] == 4  # only rank 0 prints
    assert (tmp_path / "ddp" / "pipeline" / "model_index.json").is_file()


def test_fine_tune_a_diffusers_folder_on_an_image_folder(capsys, trained, tmp_path):
    import torch
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline
    from mltk_plugins.pixart import model as M
    from mltk_plugins.pixart.config import preset
    from mltk_plugins.pixart.model import scheduler_config
    from mltk_plugins.pixart.training import world_text_components

    cfg = preset("tiny-vae", num_layers=1, num_heads=2, head_dim=16, text_dim=32, text_layers=1, text_heads=2,
                 text_ff=64, prediction="eps")  # fmt: skip
    tok, enc = world_text_components(cfg)
    pipe = PixArtAlphaPipeline(tokenizer=tok, text_encoder=enc, vae=M.build_autoencoder(cfg),
                               transformer=M.build_pixart(cfg),
                               scheduler=DPMSolverMultistepScheduler(**scheduler_config("eps")))  # fmt: skip
    pipe.save_pretrained(str(tmp_path / "pixart-folder"))
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            tmp_path / "imgs" / f"{i}.png"
        )
    code, out, err = mltk(capsys, "pixart", "train", "--init", str(tmp_path / "pixart-folder"), "--data",
                          str(tmp_path / "imgs"), "--steps", "2", "--batch-size", "4", "--log-every", "1",
                          "--out", str(tmp_path / "ft"), "--device", "cpu", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["steps"] == 2
    from safetensors.torch import load_file

    a = load_file(
        str(tmp_path / "pixart-folder" / "transformer" / "diffusion_pytorch_model.safetensors")
    )
    b = load_file(
        str(tmp_path / "ft" / "pipeline" / "transformer" / "diffusion_pytorch_model.safetensors")
    )
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "ft" / "pipeline" / "vae").is_dir()


def test_gradient_checkpointing_gives_the_same_losses(capsys, trained, tmp_path):
    losses = []
    for flag, name in (("--no-gradient-checkpointing", "a"), ("--gradient-checkpointing", "b")):
        code, out, err = mltk(capsys, "pixart", "train", "--config", str(trained / "micro.toml"), flag, "--out",
                              str(tmp_path / name), "--device", "cpu", "--json")  # fmt: skip
        assert code == 0, err
        rows = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        losses.append([r["loss"] for r in rows])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_second_generate_reads_prompt_features_from_the_cache_without_t5(
    capsys, trained, tmp_path, monkeypatch
):
    args = ["pixart", "generate", str(trained / "run"), "a red circle", "three blue squares", "--steps", "3",
            "--num-images", "2", "--device", "cpu", "--json"]  # fmt: skip
    code, out, err = mltk(capsys, *args, "--out", str(tmp_path / "a"))
    assert code == 0, err
    first = json.loads(out)
    assert first["prompt_cache"] == "miss"

    def no_t5(*a, **k):
        raise AssertionError("T5 loaded although the prompt features are cached")

    monkeypatch.setattr("mltk.t2i.text.load_text_encoder", no_t5)
    code, out, err = mltk(capsys, *args, "--out", str(tmp_path / "b"))
    assert code == 0, err
    second = json.loads(out)
    assert second["prompt_cache"] == "hit"
    for fa, fb in zip(first["images"], second["images"]):
        assert np.array_equal(
            np.asarray(Image.open(fa["file"])), np.asarray(Image.open(fb["file"]))
        )


def test_aesthetic_stage_can_raise_the_resolution_on_an_image_folder(capsys, trained, tmp_path):
    rng = np.random.default_rng(1)
    for i in range(16):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
        (tmp_path / f"{i}.txt").write_text("a red circle\na small red circle in the center\n")
    cfg = str(trained / "micro.toml")
    code, out, err = mltk(capsys, "pixart", "train", "--data", str(tmp_path), "--config", cfg, "--out",
                          str(tmp_path / "s2"), "--device", "cpu", "--json")  # fmt: skip
    assert code == 0, err
    code, out, err = mltk(capsys, "pixart", "train", "--stage", "aesthetic", "--init", str(tmp_path / "s2"),
                          "--data", str(tmp_path), "--image-size", "64", "--config", cfg, "--out",
                          str(tmp_path / "s3"), "--device", "cpu", "--json")  # fmt: skip
    assert code == 0, err
    code, out, err = mltk(capsys, "pixart", "generate", str(tmp_path / "s3"), "a red circle", "--steps", "2",
                          "--out", str(tmp_path / "img"), "--device", "cpu", "--json")  # fmt: skip
    assert code == 0, err
    assert Image.open(json.loads(out)["images"][0]["file"]).size == (64, 64)


def test_aspect_ratio_buckets_train_with_matching_micro_conditions(
    capsys, trained, tmp_path, monkeypatch
):
    from diffusers import PixArtTransformer2DModel

    rng = np.random.default_rng(2)
    for i, (h, w) in enumerate([(30, 60)] * 4 + [(64, 64)] * 4 + [(90, 30)] * 3):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        (tmp_path / f"{i}.txt").write_text("a red circle\na small red circle in the center\n")
    seen = []
    forward = PixArtTransformer2DModel.forward

    def spy(self, hidden_states, *a, added_cond_kwargs=None, **k):
        if self.training:
            seen.append((tuple(hidden_states.shape[-2:]), added_cond_kwargs))
        return forward(self, hidden_states, *a, added_cond_kwargs=added_cond_kwargs, **k)

    monkeypatch.setattr(PixArtTransformer2DModel, "forward", spy)
    cfg = tmp_path / "micro.toml"
    small = MICRO.replace("batch_size = 16", "batch_size = 4").replace(
        "head_dim = 16", "head_dim = 24"
    )
    # pixel space, so the shapes the denoiser sees are the buckets' pixel sizes
    small += 'autoencoder = "identity"\npatch_size = 4\n'
    cfg.write_text(small + "micro_conditions = true\n")  # width 48: thirds for the micro-conditions
    bad = tmp_path / "bad.toml"
    bad.write_text(MICRO + "micro_conditions = true\n")  # width 32: not divisible by 3
    code, _, err = mltk(capsys, "pixart", "train", "--config", str(bad), "--device", "cpu")
    assert code == ExitCode.USAGE and "divisible by 3" in err
    code, out, err = mltk(capsys, "pixart", "train", "--data", str(tmp_path), "--config", str(cfg), "--aspect-buckets",
                          "--steps", "6", "--out", str(tmp_path / "run"), "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert "aspect-ratio buckets" in err and "24x48: 4" in err and "56x20: 3" in err
    shapes = {s for s, _ in seen}
    assert shapes <= {(24, 48), (32, 32), (56, 20)} and len(shapes) >= 2
    for (h, w), cond in seen:
        assert cond["resolution"].tolist() == [[float(h), float(w)]] * len(cond["resolution"])
        assert torch.allclose(cond["aspect_ratio"], torch.full_like(cond["aspect_ratio"], h / w))
    code, out, err = mltk(capsys, "pixart", "generate", str(tmp_path / "run"), "a red circle", "--steps", "2",
                          "--height", "24", "--width", "48", "--out", str(tmp_path / "img"), "--device", "cpu",
                          "--json")  # fmt: skip
    assert code == 0, err
    assert Image.open(json.loads(out)["images"][0]["file"]).size == (48, 24)
