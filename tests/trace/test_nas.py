"""Cell search: the CIFAR-10 binary reader, the supernet against discrete cells, the score-function
estimator against exact enumeration, and a small search + retrain on digits."""

from __future__ import annotations

import itertools
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mltk_plugins.trace import cifar, nas
from mltk_plugins.trace.tensornet import ChainDistribution, log_prob

from mltk.errors import DataError, UsageError

PER_BATCH = 3
NAMES = [*cifar.TRAIN, *cifar.TEST]


def _record(label: int, rgb: tuple[int, int, int], marker: int) -> bytes:
    """One record of the official layout: label byte, then the R, G and B planes (32 x 32,
    row-major). The G plane holds ``marker`` at row 2, column 5."""
    body = bytearray(b"".join(bytes([v]) * 1024 for v in rgb))
    body[1024 + 2 * 32 + 5] = marker
    return bytes([label]) + bytes(body)


def _batches(folder: Path) -> dict[str, list[tuple[int, tuple, int]]]:
    """Writes cifar-10-batches-bin/ with PER_BATCH records per batch; returns what it wrote."""
    folder.mkdir(parents=True)
    written = {}
    for b, name in enumerate(NAMES):
        rows = [
            ((b * PER_BATCH + i) % 10, (b, 100 + i, 200 + b), 7 + b * 10 + i)
            for i in range(PER_BATCH)
        ]
        (folder / name).write_bytes(b"".join(_record(*r) for r in rows))
        written[name] = rows
    (folder / "batches.meta.txt").write_text("\n".join(cifar.CLASSES) + "\n")
    return written


def _tar(folder: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return out


@pytest.mark.parametrize("form", ["tar.gz", "folder", "parent"])
def test_the_cifar_reader_reads_the_official_binary_layout(tmp_path, form):
    folder = tmp_path / "x" / "cifar-10-batches-bin"
    written = _batches(folder)
    path = {
        "tar.gz": lambda: _tar(folder, tmp_path / "cifar-10-binary.tar.gz"),
        "folder": lambda: folder,
        "parent": lambda: folder.parent,
    }[form]()
    got = cifar.load(path)
    for split, names in (("train", cifar.TRAIN), ("test", cifar.TEST)):
        x, y = got[split]
        rows = [r for name in names for r in written[name]]
        assert x.dtype == np.uint8 and x.shape == (len(rows), 3, 32, 32)
        assert y.dtype == np.int64 and y.tolist() == [r[0] for r in rows]
        for i, (_, rgb, marker) in enumerate(rows):
            assert x[i, 0].min() == x[i, 0].max() == rgb[0]  # the R plane comes first
            assert x[i, 2].min() == x[i, 2].max() == rgb[2]  # then G, then B
            assert x[i, 1, 2, 5] == marker and x[i, 1, 5, 2] == rgb[1]  # row-major within planes
            assert (x[i, 1] == rgb[1]).sum() == 1023


def test_load_data_normalises_cifar_with_its_channel_statistics(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    written = _batches(folder)
    d = nas.load_data(str(_tar(folder, tmp_path / "c.tar.gz")), seed=1)
    assert d["name"] == "cifar10" and d["in_channels"] == 3 and d["augment"]
    assert len(d["train"][1]) + len(d["val"][1]) == 5 * PER_BATCH
    x, y = d["test"]
    _, rgb, _ = written["test_batch.bin"][0]
    for c in range(3):
        want = (rgb[c] / 255 - cifar.MEAN[c]) / cifar.STD[c]
        assert abs(float(x[0, c, 0, 0]) - want) < 1e-5
    assert x.dtype == torch.float32 and y.dtype == torch.int64


@pytest.mark.parametrize("form", ["tar.gz", "folder"])
def test_a_truncated_batch_a_missing_batch_and_bad_labels_are_refused(tmp_path, form):
    def build(name, edit):
        folder = tmp_path / name / "cifar-10-batches-bin"
        _batches(folder)
        edit(folder)
        return _tar(folder, tmp_path / f"{name}.tar.gz") if form == "tar.gz" else folder

    def truncate(f):
        f.joinpath("data_batch_3.bin").write_bytes(f.joinpath("data_batch_3.bin").read_bytes()[:-1])

    def relabel(f):
        raw = bytearray(f.joinpath("test_batch.bin").read_bytes())
        raw[cifar.RECORD] = 10  # the second record's label
        f.joinpath("test_batch.bin").write_bytes(bytes(raw))

    with pytest.raises(DataError, match="truncated"):
        cifar.load(build("short", truncate))
    with pytest.raises(DataError, match="data_batch_4.bin is missing"):
        cifar.load(build("gap", lambda f: f.joinpath("data_batch_4.bin").unlink()))
    with pytest.raises(DataError, match="label 10"):
        cifar.load(build("labels", relabel))


class _Touch:
    """A pickle that creates a file when loaded: loading it would show."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_the_pickle_version_is_refused_without_loading_it(tmp_path):
    trap = tmp_path / "loaded"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "data_batch_2", "test_batch", "batches.meta"):
        (folder / name).write_bytes(pickle.dumps(_Touch(trap)))
    archive = _tar(folder, tmp_path / "cifar-10-python.tar.gz")
    for path in (archive, folder, tmp_path):
        with pytest.raises(DataError, match="pickle.*cifar-10-binary.tar.gz"):
            cifar.load(path)
    assert not trap.exists()
    with pytest.raises(DataError, match="neither 'digits' nor an existing path"):
        nas.load_data(str(tmp_path / "nowhere"))
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(DataError, match="neither a tar archive nor a folder"):
        cifar.load(tmp_path / "notes.txt")


# --- the supernet ----------------------------------------------------------------------------


def _arch(seed):
    g = torch.Generator().manual_seed(seed)
    arch = torch.randint(0, len(nas.OPS), (len(nas.EDGES),), generator=g).tolist()
    arch[0] = arch[1] = 0  # node n2 receives nothing: a zero state
    arch[2] = nas.OPS.index("conv_3x3")
    return arch


def test_the_edges_are_the_dag_in_topological_order():
    assert len(nas.EDGES) == 14 and len(nas.OPS) == 5
    assert nas.EDGES[:5] == ((0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert all(src < dst for src, dst in nas.EDGES)
    arch = [0] * 14
    arch[:5] = [2, 1, 0, 3, 4]
    assert nas.arch_text(arch) == (
        "n2: conv_3x3(x0) + skip_connect(x1); n3: max_pool_3x3(x1) + avg_pool_3x3(n2); n4: 0; n5: 0"
    )
    with pytest.raises(UsageError):
        nas.arch_text([0] * 13)


@pytest.mark.parametrize("seed", [0, 1])
def test_one_hot_weights_give_the_discrete_cell_of_the_architecture(seed):
    torch.manual_seed(seed)
    cell = nas.Cell(4).double()
    s0, s1 = torch.randn(2, 3, 4, 5, 5, dtype=torch.float64)  # (N, C, H, W) each
    arch = _arch(seed)
    one_hot = torch.nn.functional.one_hot(torch.tensor(arch), len(nas.OPS)).double()  # (14, 5)
    mixed = cell(s0, s1, one_hot)
    sampled = cell(s0, s1, arch)  # only the chosen operations run
    discrete = nas.discrete_cell(cell, arch).double()(s0, s1)
    assert mixed.shape == (3, 4, 5, 5)
    torch.testing.assert_close(mixed, discrete, rtol=0, atol=1e-12)
    torch.testing.assert_close(sampled, discrete, rtol=0, atol=1e-12)
    other = list(arch)
    other[2] = nas.OPS.index("skip_connect")
    assert (nas.discrete_cell(cell, other).double()(s0, s1) - discrete).abs().max() > 1e-3
    # the whole network: every cell shares the architecture
    net = nas.Network(1, 10, 4, 2).double()
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(net(x, one_hot), net(x, arch), rtol=0, atol=1e-12)


def test_the_deterministic_edge_mixes_the_operations_with_the_marginals():
    torch.manual_seed(0)
    edge = nas.MixedEdge(3).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    dist = nas.make_distribution(nas.Settings(init_scale=1.0), seed=3).double()
    w = nas.mixing_weights(dist)  # (14, 5)
    assert w.shape == (14, 5) and torch.allclose(w.sum(1), torch.ones(14, dtype=w.dtype))
    for e in (0, 7, 13):
        by_sum = sum(w[e, k] * op(x) for k, op in enumerate(edge.ops))  # zero op included
        torch.testing.assert_close(edge(x, w[e]), by_sum, rtol=0, atol=1e-12)
    # w[l] is p(k_l): P summed over the other edges, checked on a 3-edge chain by enumeration
    small = ChainDistribution(
        [5, 5, 5], rank=3, init_scale=1.0, generator=torch.Generator().manual_seed(0)
    ).double()
    chains = torch.tensor(list(itertools.product(range(5), repeat=3)))
    p = log_prob(small.cores(), chains).exp()
    for e in range(3):
        by_hand = torch.zeros(5, dtype=p.dtype).index_add(0, chains[:, e], p)
        torch.testing.assert_close(nas.mixing_weights(small)[e], by_hand, rtol=0, atol=1e-12)
    # the gradient of the relaxed loss reaches every core
    net = nas.Network(1, 10, 4, 1).double()
    loss = net(torch.randn(4, 1, 8, 8, dtype=torch.float64), nas.mixing_weights(dist)).sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in dist.parameters())


# --- the score function ----------------------------------------------------------------------


def test_the_score_function_step_follows_the_exact_gradient_in_expectation():
    """On a 3-edge chain, every architecture enumerated: the step's update with many samples
    matches -lr * grad_theta sum_a P(a) L(a) computed exactly."""
    choices = [3, 2, 3]
    dist = ChainDistribution(
        choices, rank=2, init_scale=1.0, generator=torch.Generator().manual_seed(0)
    ).double()
    every = torch.tensor(list(itertools.product(*[range(k) for k in choices])))  # (18, 3)
    table = torch.rand(len(every), generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def loss_of(archs):
        idx = [every.tolist().index(a) for a in archs.tolist()]
        return table[idx]

    before = [p.detach().clone() for p in dist.parameters()]
    expected = (log_prob(dist.cores(), every).exp() * table).sum()
    exact = torch.autograd.grad(expected, list(dist.parameters()))
    opt = torch.optim.SGD(dist.parameters(), lr=1.0)
    baseline, losses = nas.score_function_step(
        dist, opt, loss_of, 40_000, 0.3, torch.Generator().manual_seed(2)
    )
    assert losses.shape == (40_000,)
    assert abs(baseline - (0.9 * 0.3 + 0.1 * float(losses.mean()))) < 1e-9
    moved = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, dist.parameters())])
    want = torch.cat([g.flatten() for g in exact])
    assert torch.linalg.norm(moved - want) < 0.05 * torch.linalg.norm(want)


@pytest.mark.parametrize("decomp", ["tt", "independent"])
def test_the_score_function_moves_probability_towards_the_better_architecture(decomp):
    """A toy loss, the number of edges that differ from a target architecture: P(target)
    grows and the derived architecture becomes the target."""
    target = _arch(5)
    s = nas.Settings(decomp=decomp, rank=3)
    dist = nas.make_distribution(s, seed=0)
    opt = torch.optim.Adam(dist.parameters(), lr=0.1, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(0)
    start = nas.arch_probability(dist, target)

    def loss_of(archs):  # (S, 14) -> (S,)
        return (archs != torch.tensor(target)).float().mean(1)

    baseline = None
    for _ in range(150):
        baseline, _ = nas.score_function_step(dist, opt, loss_of, 8, baseline, gen)
    assert nas.arch_probability(dist, target) > 1e4 * start
    assert nas.derive(dist) == target


# --- search and retrain ----------------------------------------------------------------------


def test_a_small_search_and_retrain_on_digits_beat_chance():
    data = nas.load_data("digits", seed=0)
    assert data["train"][0].shape[1:] == (1, 8, 8) and len(data["test"][1]) == 359
    s = nas.Settings(epochs=2, channels=8, cells=1, samples=2, retrain_epochs=4)
    lines = []
    net, dist, history = nas.search(data, s, seed=0, log=lines.append)
    assert [r["epoch"] for r in history] == [1, 2] and len(lines) == 2
    assert {"loss", "val_acc", "p_arch", "seconds", "steps_per_s"} <= set(history[0])
    assert history[1]["loss"] < history[0]["loss"]
    arch = nas.derive(dist)
    assert len(arch) == 14 and history[-1]["p_arch"] == pytest.approx(
        nas.arch_probability(dist, arch)
    )
    out = nas.retrain(data, arch, s, seed=0)
    assert out["test_acc"] > 0.5  # chance is 0.1
    assert out["text"] == nas.arch_text(arch) and len(out["history"]) == 4


def test_search_is_deterministic_given_the_seed_and_runs_the_deterministic_objective():
    data = nas.load_data("digits", seed=0)
    small = {**data, "train": tuple(t[:128] for t in data["train"])}
    s = nas.Settings(epochs=1, channels=4, cells=1, samples=2, batch_size=32)
    a = nas.search(small, s, seed=3)
    b = nas.search(small, s, seed=3)
    assert a[2][0]["loss"] == b[2][0]["loss"] and a[2][0]["val_acc"] == b[2][0]["val_acc"]
    for p, q in zip(a[1].parameters(), b[1].parameters()):
        assert torch.equal(p, q)
    c = nas.search(small, s, seed=4)
    assert c[2][0]["loss"] != a[2][0]["loss"]
    d = nas.search(small, nas.Settings(**{**s.__dict__, "objective": "deterministic"}), seed=3)
    assert np.isfinite(d[2][0]["loss"])
    with pytest.raises(UsageError, match="objective"):
        nas.search(small, nas.Settings(objective="gumbel"))
    with pytest.raises(UsageError, match="decomp"):
        nas.search(small, nas.Settings(decomp="mps"))


def test_augment_crops_and_flips_each_image():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4) + 1
    out = nas.augment(x, torch.Generator().manual_seed(0), pad=1)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(2):
        crops = [padded[i, :, r : r + 4, c : c + 4] for r in range(3) for c in range(3)]
        assert any(torch.equal(out[i], v) or torch.equal(out[i], v.flip(2)) for v in crops)


def test_reading_an_archive_writes_nothing_next_to_it(tmp_path):
    folder = tmp_path / "src" / "cifar-10-batches-bin"
    _batches(folder)
    (tmp_path / "only").mkdir()
    archive = _tar(folder, tmp_path / "only" / "c.tar.gz")
    cifar.load(archive)
    assert [p.name for p in (tmp_path / "only").iterdir()] == ["c.tar.gz"]
