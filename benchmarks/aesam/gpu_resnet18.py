"""ResNet-18 on CIFAR-10-shaped data through the real command line, on a GPU.

    python benchmarks/aesam/gpu_resnet18.py --device cuda --epochs 3

No data can be downloaded, so the script writes a *synthetic* archive in the official CIFAR-10
binary format (10 class templates plus pixel noise, 32x32x3) and trains on it with
`mltk aesam train --preset cifar10 --data cifar10` (bf16 autocast on a GPU). It measures what
the synthetic data can tell: that the GPU path runs, and the wall-time ratio of each optimizer
to SAM on a real network (the cost side of AE-SAM); its accuracies say nothing about CIFAR-10.
It also checks on the device that AE-SAM with lambda = -1e9 matches SAM step for step.
Prints a markdown table and writes gpu_resnet18.json next to this file (or --json-out).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tarfile
import tempfile
import time
from pathlib import Path

import mltk_plugins.aesam.plugin as aesam_plugin
import numpy as np
import torch
from mltk_plugins.aesam.adaptive_switch import AESAM, SAM

from mltk.cli import run


def write_fake_cifar10(path: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(10, 3, 32, 32)).astype(np.float32)

    def batch(n: int) -> bytes:
        labels = rng.integers(0, 10, size=n)
        noise = rng.normal(0, 90, size=(n, 3, 32, 32))
        images = np.clip(0.5 * templates[labels] + 64 + noise, 0, 255).astype(np.uint8)
        return b"".join(bytes([int(lab)]) + img.tobytes() for lab, img in zip(labels, images))

    with tarfile.open(path, "w:gz") as tar:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for name in names:
            blob = batch(n_test if name == "test_batch.bin" else n_train // 5)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def cli(*args: str) -> dict:
    from importlib.metadata import entry_points

    installed = any(ep.name == "aesam" for ep in entry_points(group="mltk"))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):  # without an install, hand the plugin over directly
        code = run(list(args), extra_plugins=None if installed else {"aesam": aesam_plugin})
    if code != 0:
        raise SystemExit(f"mltk {' '.join(args)} exited with {code}")
    return json.loads(buf.getvalue())


def step_for_step(device: str) -> bool:
    """AE-SAM with lambda1 = lambda2 = -1e9 against SAM on the device, 20 steps."""

    def train(make):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
        ).to(device)
        opt = make(model)
        g = torch.Generator().manual_seed(1)
        for _ in range(20):
            x = torch.randn(64, 32, generator=g).to(device)
            y = torch.randint(0, 10, (64,), generator=g).to(device)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step(lambda x=x, y=y: torch.nn.functional.cross_entropy(model(x), y).backward())
            opt.zero_grad()
        return [p.detach().cpu() for p in model.parameters()]

    a = train(lambda m: SAM(m.parameters(), torch.optim.SGD, lr=0.1, momentum=0.9))
    b = train(
        lambda m: AESAM(
            m.parameters(),
            torch.optim.SGD,
            total_steps=20,
            lambda1=-1e9,
            lambda2=-1e9,
            lr=0.1,
            momentum=0.9,
        )
    )
    return all(torch.equal(x, y) for x, y in zip(a, b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--optimizers", default="erm,sam,aesam,aelooksam,sssam")
    ap.add_argument("--json-out", type=Path, default=Path(__file__).with_name("gpu_resnet18.json"))
    args = ap.parse_args()
    same = step_for_step(args.device)
    work = Path(tempfile.mkdtemp(prefix="aesam-gpu-"))
    archive = work / "cifar-10-binary.tar.gz"
    write_fake_cifar10(archive, args.n_train, args.n_train // 5)
    common = [
        "--preset",
        "cifar10",
        "--data",
        "cifar10",
        "--data-path",
        str(archive),
        "--epochs",
        str(args.epochs),
        "--device",
        args.device,
        "--width",
        str(args.width),
        "--json",
        "--quiet",
    ]
    trained = {}
    for name in args.optimizers.split(","):
        extra = ["--p", "0.5"] if name == "sssam" else []
        t0 = time.perf_counter()
        trained[name] = cli(
            "aesam", "train", *common, "--optimizer", name, "--out", str(work / name), *extra
        )
        trained[name]["process_wall_s"] = time.perf_counter() - t0
    evaluated = cli(
        "aesam", "eval", *[str(work / n) for n in trained], "--device", args.device, "--json"
    )
    sam_wall = trained["sam"]["wall_s"] if "sam" in trained else None
    rows = []
    for r in evaluated["runs"]:
        t = trained[r["optimizer"]]
        rows.append(
            {
                **r,
                "wall_vs_sam": t["wall_s"] / sam_wall if sam_wall else None,
                "train_acc": t["train_acc"],
            }
        )
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device
    result = {
        "device": device_name,
        "torch": torch.__version__,
        "epochs": args.epochs,
        "n_train": args.n_train,
        "width": args.width,
        "aesam_minus_1e9_equals_sam": same,
        "runs": rows,
    }
    args.json_out.write_text(json.dumps(result, indent=1))
    print(
        f"{device_name}, ResNet-18 (width {args.width}), synthetic CIFAR-10-format data, "
        f"{args.n_train} training images, {args.epochs} epochs, batch 128, bf16 autocast on GPU"
    )
    print(f"AE-SAM (lambda = -1e9) equals SAM step for step on {args.device}: {same}\n")
    print(
        "| optimizer | SAM fraction | grad evals | grad evals / SAM | train wall s | wall / SAM | test acc (synthetic) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ge = r["grad_evals_vs_sam"]
        print(
            f"| {r['optimizer']} | {r['sam_fraction']:.3f} | {r['grad_evals']} | {ge:.2f} | {r['wall_s']:.1f} | "
            f"{r['wall_vs_sam']:.2f} | {r['test_acc']:.3f} |"
        )


if __name__ == "__main__":
    main()
