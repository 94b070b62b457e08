"""Meta-paths on a heterogeneous network: the contraction and the merged top paths against
brute-force enumeration, the generated set's planted signal, CSV loading and its refusals, and
recovery of the planted meta-path by training."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from mltk_plugins.trace import hin as H
from mltk_plugins.trace.tensornet import ChainDistribution, top_paths

from mltk.errors import DataError, UsageError

# --- a tiny network, by hand --------------------------------------------------------------------

TINY_TYPES = ["a", "b", "c"]
# name: (src type, dst type, [(src, dst)]) over the nodes a0-a2 = 0-2, b0-b1 = 3-4, c0-c1 = 5-6
TINY_EDGES = {
    "ab": ("a", "b", [(0, 3), (0, 4), (1, 3), (2, 4)]),
    "ba": ("b", "a", [(3, 0), (3, 1), (4, 0), (4, 2)]),
    "bc": ("b", "c", [(3, 5), (4, 5), (4, 6)]),
    "cb": ("c", "b", [(5, 3), (5, 4), (6, 4)]),
}


def _tiny(features: np.ndarray | None = None) -> H.HIN:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 2)) if features is None else features
    return H.HIN(
        name="tiny",
        nodes=["a0", "a1", "a2", "b0", "b1", "c0", "c1"],
        node_types=TINY_TYPES,
        node_type=torch.tensor([0, 0, 0, 1, 1, 2, 2]),
        edge_types=[(name, st, dt) for name, (st, dt, _) in TINY_EDGES.items()],
        edges=[np.array(e, dtype=np.int64) for _, _, e in TINY_EDGES.values()],
        features=torch.as_tensor(x, dtype=torch.float32),
        labels=torch.tensor([0, 1, 0, -1, -1, -1, -1]),
        classes=["x", "y"],
        splits={"train": torch.tensor([0]), "val": torch.tensor([1]), "test": torch.tensor([2])},
        target_type="a",
    )


def _dense_operators(n: int) -> list[np.ndarray]:
    """D^-1 A of each edge type from the raw pairs, then the identity."""
    out = []
    for _, _, pairs in TINY_EDGES.values():
        a = np.zeros((n, n))
        for u, w in pairs:
            a[u, w] = 1.0
        deg = a.sum(1, keepdims=True)
        out.append(np.divide(a, deg, out=np.zeros_like(a), where=deg > 0))
    return out + [np.eye(n)]


def _chain_probs(cores: list[torch.Tensor]) -> dict[tuple, float]:
    """P of every chain, summing prod_l G_l[b_{l-1}, k_l, b_l] over every bond assignment."""
    gs = [c.detach().double().numpy() for c in cores]
    dims = [g.shape[0] for g in gs] + [1]
    out = {}
    for chain in itertools.product(*[range(g.shape[1]) for g in gs]):
        total = 0.0
        for bonds in itertools.product(*[range(d) for d in dims[1:-1]]):
            b = (0, *bonds, 0)
            total += np.prod([gs[i][b[i], chain[i], b[i + 1]] for i in range(len(gs))])
        out[chain] = total
    return out


def _dist(decomp: str, length: int = 3, seed: int = 0) -> ChainDistribution:
    g = torch.Generator().manual_seed(seed)
    k = len(TINY_EDGES) + 1
    return ChainDistribution(
        [k] * length, decomp=decomp, rank=3, init_scale=1.0, generator=g
    ).double()


@pytest.mark.parametrize("decomp", ["tt", "cp", "independent"])
def test_the_contraction_equals_brute_force_enumeration(decomp):
    hin = _tiny()
    x = np.random.default_rng(5).standard_normal((7, 3))
    cores = [c[0] for c in _dist(decomp).cores()]
    mats = _dense_operators(7)
    brute = np.zeros_like(x)
    for chain, p in _chain_probs(cores).items():
        m = np.eye(7)
        for k in chain:
            m = m @ mats[k]
        brute += p * (m @ x)
    ops = H.operators(hin, dtype=torch.float64)
    got = H.contract(ops, cores, torch.as_tensor(x)).detach().numpy()
    assert np.max(np.abs(got - brute)) < 1e-10
    # only the rows of some nodes at the last step
    rows = torch.tensor([0, 2, 5])
    last = torch.cat([ops.to_dense()[k * 7 + rows] for k in range(hin.n_operators)]).to_sparse_csr()
    part = H.contract(ops, cores, torch.as_tensor(x), last).detach().numpy()
    assert np.max(np.abs(part - brute[rows.numpy()])) < 1e-10


def test_the_aggregate_averages_over_walks_that_reach_featured_nodes():
    x = np.random.default_rng(1).standard_normal((7, 2))
    x[[3, 6]] = 0.0  # b0 and c1 are featureless
    hin = _tiny(x)
    model = H.MetaPathGCN(hin, H.Settings(length=3, rank=2, init_scale=1.0), seed=4)
    probs = _chain_probs([c[0] for c in model.dist.cores()])
    mats = _dense_operators(7)
    featured = np.array([1, 1, 1, 0, 1, 1, 0.0])
    s, m = np.zeros((7, 2)), np.zeros(7)
    for chain, p in probs.items():
        walk = np.eye(7)
        for k in chain:
            walk = walk @ mats[k]
        s += p * walk @ x
        m += p * walk @ featured
    with torch.no_grad():
        z = model.aggregate().double().numpy()  # rows of a0, a1, a2
    assert np.max(np.abs(z - s[:3] / m[:3, None])) < 1e-5


def test_top_paths_merge_identity_steps_exactly_and_in_order():
    cores = [c[0] for c in _dist("tt", length=3, seed=2).cores()]
    identity = len(TINY_EDGES)
    merged: dict[tuple, float] = {}
    for chain, p in _chain_probs(cores).items():
        key = tuple(k for k in chain if k != identity)
        merged[key] = merged.get(key, 0.0) + p
    best = sorted(merged.items(), key=lambda kv: -kv[1])[:8]
    got = top_paths(cores, identity, 8)
    assert [tuple(p) for p, _ in got] == [k for k, _ in best]
    assert np.allclose([p for _, p in got], [p for _, p in best], atol=1e-12, rtol=0)
    cut = best[4][1]  # min_prob keeps exactly the paths at or above it
    got = top_paths(cores, identity, 100, min_prob=cut)
    want = [k for k, v in sorted(merged.items(), key=lambda kv: -kv[1]) if v >= cut]
    assert [tuple(p) for p, _ in got] == want


def test_meta_paths_are_type_consistent_and_their_mass_is_exact():
    hin = _tiny()
    hin.features[[5, 6]] = 0.0  # type c is featureless: paths ending there are not reported
    model = H.MetaPathGCN(hin, H.Settings(length=3, rank=2, init_scale=1.0), seed=1)
    probs = _chain_probs([c[0] for c in model.dist.cores()])
    ends = {i: (st, dt) for i, (_, st, dt) in enumerate(hin.edge_types)}
    usable: dict[tuple, float] = {}
    for chain, p in probs.items():
        t, ok = "a", True
        for k in chain:
            if k == hin.identity:
                continue
            ok = ok and ends[k][0] == t
            t = ends[k][1]
        if ok and t in ("a", "b"):
            key = tuple(hin.edge_types[k][0] for k in chain if k != hin.identity)
            usable[key] = usable.get(key, 0.0) + p
    paths = H.meta_paths(hin, model, k=50)
    assert {tuple(p["edges"]) for p in paths} == set(usable)
    for p in paths:
        assert abs(p["probability"] - usable[tuple(p["edges"])]) < 1e-6
    mass = H.usable_mass(hin, [c[0] for c in model.dist.cores()])
    assert abs(mass - sum(usable.values())) < 1e-6
    assert abs(sum(p["share"] for p in paths) - 1) < 1e-5
    assert paths[0]["path"].startswith("a -") or paths[0]["path"] == "a"
    assert H.recovered(hin, paths) is None  # nothing planted


# --- the generated set --------------------------------------------------------------------------


def _adjacency(hin: H.HIN, name: str) -> sp.csr_matrix:
    e = hin.edges[hin.edge_names.index(name)]
    a = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(hin.n_nodes,) * 2)
    deg = np.asarray(a.sum(1)).ravel()
    return sp.diags(1 / np.maximum(deg, 1)) @ a


def _vote_accuracy(hin: H.HIN, path: list[str]) -> float:
    """Accuracy of the majority label over the authors the path reaches (itself left out)."""
    m = _adjacency(hin, path[0])
    for name in path[1:]:
        m = m @ _adjacency(hin, name)
    y = hin.labels.numpy()
    authors = np.flatnonzero(y >= 0)
    dense = m.toarray()[np.ix_(authors, authors)]
    np.fill_diagonal(dense, 0.0)
    votes = dense @ np.eye(len(hin.classes))[y[authors]]
    return float(np.mean(votes.argmax(1) == y[authors]))


def test_the_planted_path_carries_the_labels_and_the_decoy_little():
    hin = H.generate(0)
    assert hin.planted == ["writes", "published_in", "publishes", "written_by"]
    chance = 1 / len(hin.classes)
    planted = _vote_accuracy(hin, hin.planted)
    decoy = _vote_accuracy(hin, H.DECOY)
    assert planted > 0.8 > 0.5 > decoy
    assert planted - decoy > 0.35 and decoy < chance + 0.2
    # the authors' own features are weak: nearest class mean, fit on train, on test
    x, y = hin.features.numpy(), hin.labels.numpy()
    tr, te = hin.splits["train"].numpy(), hin.splits["test"].numpy()
    means = np.stack([x[tr][y[tr] == c].mean(0) for c in range(len(hin.classes))])
    pred = ((x[te][:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert np.mean(pred == y[te]) < 0.5


def test_the_generator_is_deterministic_and_the_splits_partition_the_authors():
    a, b, c = H.generate(0), H.generate(0), H.generate(1)
    assert all(np.array_equal(u, v) for u, v in zip(a.edges, b.edges))
    assert torch.equal(a.features, b.features) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, c.labels)
    authors = set(np.flatnonzero(a.labels.numpy() >= 0).tolist())
    parts = [set(a.splits[s].tolist()) for s in ("train", "val", "test")]
    assert set.union(*parts) == authors and sum(map(len, parts)) == len(authors)
    assert abs(len(parts[0]) / len(authors) - 0.2) < 0.02
    assert [a.type_of(int(v)) for v in a.splits["val"][:3]] == ["author"] * 3
    # every stored adjacency is D^-1 A of its raw edges
    for e, adj in zip(a.edges, a.adjacency):
        dense = adj.to_dense()
        assert torch.allclose(dense.sum(1)[torch.as_tensor(np.unique(e[:, 0]))], torch.ones(1))
        assert int((dense > 0).sum()) == len(e)


# --- CSV folders ---------------------------------------------------------------------------------


def _write(folder, name, header, rows):
    with open(folder / name, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _write_hin(hin: H.HIN, folder, features: bool = False):
    rows = []
    for (name, st, dt), e in zip(hin.edge_types, hin.edges):
        rows += [(hin.nodes[u], st, name, hin.nodes[w], dt) for u, w in e.tolist()]
    _write(folder, "edges.csv", H.EDGE_COLUMNS, rows)
    labelled = torch.nonzero(hin.labels >= 0).flatten().tolist()
    _write(
        folder,
        "labels.csv",
        ["node", "label"],
        [(hin.nodes[v], hin.classes[int(hin.labels[v])]) for v in labelled],
    )
    if features:
        x = hin.features.numpy()
        _write(
            folder,
            "features.csv",
            ["node"] + [f"f{i}" for i in range(x.shape[1])],
            [(hin.nodes[v], *map(repr, x[v].tolist())) for v in range(hin.n_nodes)],
        )


def test_a_csv_folder_round_trips(tmp_path):
    small = H.generate(0, authors=40, papers=80, venues=8, terms=12)
    _write_hin(small, tmp_path)
    got = H.load(str(tmp_path), seed=0)
    assert got.n_nodes == small.n_nodes and got.target_type == "author"
    assert sorted(got.edge_types) == sorted(small.edge_types)
    for name, e in zip(small.edge_names, small.edges):
        assert len(got.edges[got.edge_names.index(name)]) == len(e)
    index = {v: i for i, v in enumerate(got.nodes)}
    for v, name in enumerate(small.nodes):
        assert got.type_of(index[name]) == small.type_of(v)
        want = small.labels[v]
        have = got.labels[index[name]]
        assert (want < 0 and have < 0) or small.classes[want] == got.classes[have]
    # default features: one-hot node type, then log(1 + out-degree) per edge type
    a0 = index["a0"]
    writes = got.edge_names.index("writes")
    n_papers = int(np.sum(small.edges[small.edge_names.index("writes")][:, 0] == 0))
    assert got.features[a0, got.node_types.index("author")] == 1.0
    assert abs(float(got.features[a0, len(got.node_types) + writes]) - np.log1p(n_papers)) < 1e-6
    # given features are kept
    _write_hin(small, tmp_path, features=True)
    again = H.load(str(tmp_path), seed=0)
    order = torch.tensor([small.nodes.index(v) for v in again.nodes])
    assert torch.equal(again.features, small.features[order])


def _expect(source, *words):
    with pytest.raises(DataError) as info:
        H.load(str(source))
    assert info.value.exit_code == 5
    for w in words:
        assert w in str(info.value)


def test_pickles_are_refused(tmp_path):
    (tmp_path / "edges.pkl").write_bytes(b"\x80\x04N.")
    _expect(tmp_path / "edges.pkl", "pickle", "edges.csv")
    for name in ("labels.pkl", "node_features.pkl"):
        (tmp_path / name).write_bytes(b"\x80\x04N.")
    _expect(tmp_path, "pickle", "edges.csv", "labels.csv")


def test_bad_csv_folders_are_refused(tmp_path):
    small = H.generate(0, authors=40, papers=80, venues=8, terms=12)
    _write_hin(small, tmp_path)
    good = (tmp_path / "labels.csv").read_text()
    (tmp_path / "labels.csv").write_text(good + "nobody,databases\n")
    _expect(tmp_path, "'nobody'")
    (tmp_path / "labels.csv").write_text("node,label\n")
    _expect(tmp_path, "labels no node")
    (tmp_path / "labels.csv").write_text(good + "p0,databases\n")
    _expect(tmp_path, "several types")
    (tmp_path / "labels.csv").write_text(good)
    edges = (tmp_path / "edges.csv").read_text()
    (tmp_path / "edges.csv").write_text(edges.replace(",dst_type", ",target_type", 1))
    _expect(tmp_path, "dst_type")
    (tmp_path / "edges.csv").write_text(edges + "a0,venue,writes,p1,paper\n")
    _expect(tmp_path, "two types")
    (tmp_path / "edges.csv").unlink()
    _expect(tmp_path, "edges.csv")
    _expect(tmp_path / "missing", "synthetic")


def test_bad_settings_are_usage_errors():
    hin = _tiny()
    for bad in (H.Settings(decomp="mlp"), H.Settings(length=0), H.Settings(lr=0.0)):
        with pytest.raises(UsageError):
            H.MetaPathGCN(hin, bad)


# --- training -----------------------------------------------------------------------------------


def test_training_is_deterministic_and_the_state_restores_the_model():
    hin = H.generate(0, authors=40, papers=80, venues=8, terms=12)
    s = H.Settings(epochs=3)
    a, hist = H.train(hin, s, seed=3)
    b, _ = H.train(hin, s, seed=3)
    assert len(hist) == 3 and {"train_loss", "val_loss", "val_accuracy"} <= set(hist[0])
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    fresh = H.MetaPathGCN(hin, s)
    fresh.load_state_dict(sa)
    nodes = hin.splits["test"]
    with torch.no_grad():
        assert torch.equal(fresh(nodes), a(nodes))


def test_training_recovers_the_planted_meta_path():
    hin = H.load("synthetic", seed=0)
    model, _ = H.train(hin, H.Settings(decomp="tt"), seed=0)
    paths = H.meta_paths(hin, model, k=3)
    assert H.recovered(hin, paths) is True
    assert paths[0]["path"] == (
        "author -writes-> paper -published_in-> venue -publishes-> paper -written_by-> author"
    )
    assert paths[0]["share"] > 0.5
    scores = H.evaluate(hin, model, "test")
    assert scores["macro_f1"] > 0.6 > 1 / len(hin.classes)
    assert scores["nodes"] == len(hin.splits["test"])
