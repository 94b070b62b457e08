"""Meta-path learning on a heterogeneous information network (HIN): node classification where
the graph a GCN aggregates over is a learned meta-path (GTN's task), with the meta-path drawn
from a distribution over chains that mirrors the supernet (TRACE).

The supernet is ``L`` steps, each choosing one operator: the row-normalised adjacency of one of
the E edge types, ``A_e = D_e^-1 A_e`` (``A_e[u, w] = 1 / outdeg_e(u)`` for an edge u -> w), or
the identity (so paths shorter than L are expressible): K = E + 1 choices per step. A chain
``(k_1, ..., k_L)`` is the meta-path read from the target node: step 1 leaves it along k_1. The
model's aggregate is the expectation over chains

    Z = sum_{k_1..k_L} P(k_1..k_L) A_{k_1} A_{k_2} ... A_{k_L} X                    (N, F)

with P a tensor train of row-stochastic cores ``G_l[a, k, b] = p(k, b | a)``
(``tensornet.ChainDistribution``). It is contracted from the features back to the target,
never enumerating chains:

    h_L = X,    h_{l-1}[a] = sum_{k, b} G_l[a, k, b] A_k h_l[b],    Z = h_0[0]

one sparse (K N x N) product with the stacked operators per step (every bond value is a block of
columns), then an einsum with the core. The classifier reads a target node's aggregate,
normalised by the walks that reach a featured node (see ``MetaPathGCN``),

    logits_v = W_2 relu(W_1 z_v / sigma + c_1) + c_2.

``decomp="independent"`` is GTN's soft selection (one softmax per step, identity included, one
channel); ``cp`` the DRUM-like mixture of independent chains; ``tt`` TRACE. Training alternates
first-order steps (DARTS): the classifier on the train nodes' cross-entropy, the distribution on
the validation nodes' cross-entropy.

Data: ``synthetic`` is a generated bibliographic network with a planted meta-path (see
``generate``); a folder holds ``edges.csv``, ``labels.csv`` and optionally ``features.csv``
(see ``load``). Pickles are never loaded.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mltk.errors import DataError, DivergedError, UsageError

from .sparse import csr, csr_rows, spmm
from .tensornet import DECOMPOSITIONS, ChainDistribution, top_paths

SYNTHETIC = "synthetic"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pck")
SPLIT_FRACTIONS = (0.2, 0.2)  # train, val; the rest is test
AREAS = ("databases", "data_mining", "machine_learning", "information_retrieval")


# --- the network ------------------------------------------------------------------------------


@dataclass
class HIN:
    """A heterogeneous network with labels on the nodes of one type.

    ``edges[e]`` holds the raw (src, dst) node indices of edge type ``edge_types[e] = (name,
    src_type, dst_type)``, each edge once; ``adjacency[e]`` is its row-normalised N x N matrix
    ``D^-1 A`` (sparse CSR, float32), derived from ``edges``.
    """

    name: str
    nodes: list[str]
    node_types: list[str]  # the type names
    node_type: torch.Tensor  # (N,) int64 index into node_types
    edge_types: list[tuple[str, str, str]]  # (name, src_type, dst_type)
    edges: list[np.ndarray]  # per edge type (n_e, 2) int64 (src, dst)
    features: torch.Tensor  # (N, F) float32
    labels: torch.Tensor  # (N,) int64, -1 unlabelled
    classes: list[str]
    splits: dict[str, torch.Tensor]  # train / val / test -> int64 node indices (labelled)
    target_type: str
    planted: list[str] | None = None  # the planted meta-path (edge-type names), if generated
    adjacency: list[torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self):
        n = len(self.nodes)
        self.adjacency = []
        for e in self.edges:
            index, values = _row_normalised(e, n)
            self.adjacency.append(csr(index, values.float(), (n, n)))

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def edge_names(self) -> list[str]:
        return [name for name, _, _ in self.edge_types]

    @property
    def n_operators(self) -> int:
        """Edge types plus the identity."""
        return len(self.edge_types) + 1

    @property
    def identity(self) -> int:
        return len(self.edge_types)

    def type_of(self, node: int) -> str:
        return self.node_types[int(self.node_type[node])]


def _row_normalised(edges: np.ndarray, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (2, m) and values (m,) float64 of ``D^-1 A`` for the (src, dst) rows ``edges``:
    ``1 / outdeg(src)`` on each edge (an edge listed twice counts once)."""
    e = torch.unique(torch.as_tensor(edges, dtype=torch.long).reshape(-1, 2), dim=0)  # (m, 2)
    deg = torch.bincount(e[:, 0], minlength=n).double()  # (N,)
    return e.T.contiguous(), 1.0 / deg[e[:, 0]]


def operators(hin: HIN, dtype=torch.float32) -> torch.Tensor:
    """The sparse (K N x N) stack of the operators: rows k N .. k N + N - 1 hold ``A_k``
    (edge type k, row-normalised), the last block the identity. One product with a dense
    (N, C) matrix moves every column one step along every operator."""
    n = hin.n_nodes
    idx, vals = [], []
    for k, e in enumerate(hin.edges):
        index, values = _row_normalised(e, n)
        idx.append(index + torch.tensor([[k * n], [0]]))
        vals.append(values)
    ident = torch.arange(n)
    idx.append(torch.stack([hin.identity * n + ident, ident]))
    vals.append(torch.ones(n, dtype=torch.float64))
    return csr(torch.cat(idx, 1), torch.cat(vals).to(dtype), (hin.n_operators * n, n))


# --- the generated set ------------------------------------------------------------------------

PLANTED = ["writes", "published_in", "publishes", "written_by"]  # A-P-V-P-A
DECOY = ["writes", "has_term", "term_of", "written_by"]  # A-P-T-P-A


def generate(
    seed: int = 0,
    *,
    authors: int = 500,
    papers: int = 1500,
    venues: int = 20,
    terms: int = 100,
    classes: int = 4,
    venue_noise: float = 0.15,
    coauthor_rate: float = 0.3,
    terms_per_paper: int = 3,
    term_signal: float = 0.15,
    feature_dim: int = 8,
    feature_signal: float = 0.5,
) -> HIN:
    """A bibliographic network whose author labels follow the meta-path A-P-V-P-A.

    Generative process (C classes, research areas):

    1. venue v belongs to area ``v mod C``; term t is associated with area ``t mod C``;
    2. author a has area ``y_a`` drawn uniformly (the label);
    3. paper p has a lead author (each author leads at least one paper, the rest drawn
       uniformly); with probability ``coauthor_rate`` one more author drawn uniformly (so
       co-authorship carries no area);
    4. p's venue: with probability ``1 - venue_noise`` uniform among the venues of the lead
       author's area, otherwise uniform among all venues;
    5. p's ``terms_per_paper`` distinct terms: each with probability ``term_signal`` uniform
       among the terms of the lead author's area, otherwise uniform among all terms;
    6. features, ``feature_dim`` columns: for an author ``feature_signal * e_{y_a} + N(0, I)``
       (weak), zero for the other types (they carry no area, so only paths that end at
       authors inform the classifier).

    Edge types: writes A->P, written_by P->A, published_in P->V, publishes V->P, has_term P->T,
    term_of T->P. An author's venues are mostly of its area, and so are the authors of those
    venues: the planted path ``writes, published_in, publishes, written_by`` averages the
    features of hundreds of same-area authors. The decoy A-P-T-P-A shares its single steps but
    reaches authors through weakly area-related terms and carries little label signal.
    Splits: stratified 20 / 20 / 60 (train / val / test) of the authors. Deterministic in seed.
    """
    if classes < 2 or venues < classes or terms < classes or authors < 5 * classes:
        raise UsageError(
            "the generated network needs >= 2 classes, at least one venue and one "
            "term per class, and at least 5 authors per class"
        )
    if papers < authors or feature_dim < classes:
        raise UsageError(
            "the generated network needs at least as many papers as authors and "
            "a feature column per class"
        )
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=authors)  # (A,)
    venue_area = np.arange(venues) % classes
    term_area = np.arange(terms) % classes
    lead = np.concatenate([rng.permutation(authors), rng.integers(0, authors, papers - authors)])
    area = y[lead]  # (P,) the lead author's area
    co = rng.random(papers) < coauthor_rate
    co_author = rng.integers(0, authors, papers)
    venue = np.empty(papers, dtype=np.int64)
    for p in range(papers):
        pool = np.flatnonzero(venue_area == area[p]) if rng.random() >= venue_noise else None
        venue[p] = rng.choice(pool) if pool is not None else rng.integers(0, venues)
    has_term = []
    for p in range(papers):
        chosen: set[int] = set()
        while len(chosen) < terms_per_paper:
            if rng.random() < term_signal:
                chosen.add(int(rng.choice(np.flatnonzero(term_area == area[p]))))
            else:
                chosen.add(int(rng.integers(0, terms)))
        has_term += [(p, t) for t in sorted(chosen)]

    # node indices: authors, papers, venues, terms
    off_p, off_v, off_t = authors, authors + papers, authors + papers + venues
    writes = {(int(lead[p]), p) for p in range(papers)}
    writes |= {(int(co_author[p]), p) for p in range(papers) if co[p]}
    writes_arr = np.array(sorted(writes), dtype=np.int64) + [0, off_p]
    pub = np.stack([np.arange(papers) + off_p, venue + off_v], 1)
    term_arr = np.array(has_term, dtype=np.int64) + [off_p, off_t]
    edges = [writes_arr, writes_arr[:, ::-1], pub, pub[:, ::-1], term_arr, term_arr[:, ::-1]]
    edges = [np.ascontiguousarray(e) for e in edges]
    edge_types = [
        ("writes", "author", "paper"),
        ("written_by", "paper", "author"),
        ("published_in", "paper", "venue"),
        ("publishes", "venue", "paper"),
        ("has_term", "paper", "term"),
        ("term_of", "term", "paper"),
    ]

    types = ["author", "paper", "venue", "term"]
    counts = [authors, papers, venues, terms]
    node_type = torch.repeat_interleave(torch.arange(4), torch.tensor(counts))  # (N,)
    n = sum(counts)
    nodes = [f"{t[0]}{i}" for t, c in zip(types, counts) for i in range(c)]
    x = np.zeros((n, feature_dim))  # (N, F)
    x[:authors] = rng.standard_normal((authors, feature_dim))
    x[np.arange(authors), y % feature_dim] += feature_signal
    labels = torch.full((n,), -1, dtype=torch.long)
    labels[:authors] = torch.as_tensor(y)
    names = list(AREAS) if classes == len(AREAS) else [f"area{c}" for c in range(classes)]
    return HIN(
        name=SYNTHETIC,
        nodes=nodes,
        node_types=types,
        node_type=node_type,
        edge_types=edge_types,
        edges=edges,
        features=torch.as_tensor(x, dtype=torch.float32),
        labels=labels,
        classes=names,
        splits=_splits(labels, seed),
        target_type="author",
        planted=list(PLANTED),
    )


def _splits(labels: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Stratified train / val / test (20 / 20 / 60) of the labelled nodes."""
    rng = np.random.default_rng(seed + 7919)
    y = labels.numpy()
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(y[y >= 0]):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_tr, n_va = (int(round(f * len(idx))) for f in SPLIT_FRACTIONS)
        parts["train"].append(idx[:n_tr])
        parts["val"].append(idx[n_tr : n_tr + n_va])
        parts["test"].append(idx[n_tr + n_va :])
    out = {
        k: torch.as_tensor(np.sort(np.concatenate(v)), dtype=torch.long) for k, v in parts.items()
    }
    if min(len(v) for v in out.values()) == 0:
        raise DataError(
            f"{int((y >= 0).sum())} labelled nodes cannot fill train, val and test "
            "(20 / 20 / 60): label at least 5 nodes, a few per class"
        )
    return out


# --- folders of CSV files ---------------------------------------------------------------------

EDGE_COLUMNS = ("src", "src_type", "edge_type", "dst", "dst_type")
LABEL_COLUMNS = ("node", "label")


def load(source: str, seed: int = 0) -> HIN:
    """``"synthetic"`` (``generate(seed)``) or a folder of CSV files:

    - ``edges.csv`` with header ``src,src_type,edge_type,dst,dst_type``, one directed edge a
      row; list both directions (as two edge types) for meta-paths to walk both ways;
    - ``labels.csv`` with header ``node,label``, the labelled nodes, all of one type;
    - optionally ``features.csv`` with header ``node,f1,...,fd`` for every node; without it the
      features are the one-hot node type and ``log(1 + outdeg_e)`` per edge type e.

    Splits: stratified 20 / 20 / 60 of the labelled nodes, drawn by ``seed``.
    """
    if source == SYNTHETIC:
        return generate(seed)
    path = Path(source)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise DataError(
            f"{source} is a pickle, and pickles are never loaded (they can run code): "
            "give a folder with edges.csv and labels.csv"
        )
    if not path.is_dir():
        raise DataError(
            f"{source} is neither {SYNTHETIC!r} nor an existing folder with edges.csv "
            "and labels.csv"
        )
    return _folder(path, seed)


def _read_csv(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="") as f:
            rows = [r for r in csv.reader(f) if any(x.strip() for x in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} cannot be read as CSV text ({exc})") from exc
    if not rows:
        raise DataError(f"{path} is empty; its first line is the header {','.join(required)}")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"{path} lacks the column(s) {', '.join(missing)}: its header must "
            f"name {','.join(required)}"
        )
    body = []
    for i, r in enumerate(rows[1:], 2):
        if len(r) != len(header):
            raise DataError(f"{path}, line {i}: {len(r)} fields where the header has {len(header)}")
        body.append([x.strip() for x in r])
    return header, body


def _folder(folder: Path, seed: int) -> HIN:
    edges_csv, labels_csv = folder / "edges.csv", folder / "labels.csv"
    if not edges_csv.is_file() or not labels_csv.is_file():
        if any(p.suffix.lower() in PICKLE_SUFFIXES for p in folder.iterdir()):
            raise DataError(
                f"{folder} holds pickles (GTN's layout), and pickles are never loaded (they can "
                "run code): export them as edges.csv (src,src_type,edge_type,dst,dst_type) and "
                "labels.csv (node,label)"
            )
        raise DataError(
            f"{folder} needs edges.csv (src,src_type,edge_type,dst,dst_type) and "
            "labels.csv (node,label)"
        )
    header, rows = _read_csv(edges_csv, EDGE_COLUMNS)
    col = {c: header.index(c) for c in EDGE_COLUMNS}
    node_ix: dict[str, int] = {}
    type_of: dict[str, str] = {}
    etypes: dict[str, tuple[str, str]] = {}
    raw: dict[str, set[tuple[int, int]]] = {}
    for i, r in enumerate(rows, 2):
        src, st, et, dst, dt = (r[col[c]] for c in EDGE_COLUMNS)
        if not all((src, st, et, dst, dt)):
            raise DataError(f"{edges_csv}, line {i}: every field of an edge must be non-empty")
        for node, t in ((src, st), (dst, dt)):
            if type_of.setdefault(node, t) != t:
                raise DataError(
                    f"{edges_csv}, line {i}: node {node!r} has two types, {type_of[node]!r} and "
                    f"{t!r}; give each node one type"
                )
            node_ix.setdefault(node, len(node_ix))
        if etypes.setdefault(et, (st, dt)) != (st, dt):
            raise DataError(
                f"{edges_csv}, line {i}: edge type {et!r} joins {st} -> {dt} here but "
                f"{etypes[et][0]} -> {etypes[et][1]} before; give it one pair of "
                "node types"
            )
        raw.setdefault(et, set()).add((node_ix[src], node_ix[dst]))
    if not raw:
        raise DataError(f"{edges_csv} lists no edges")
    nodes = list(node_ix)
    types = sorted(set(type_of.values()))
    node_type = torch.tensor([types.index(type_of[v]) for v in nodes], dtype=torch.long)
    names = sorted(raw)
    edge_types = [(e, *etypes[e]) for e in names]
    edges = [np.array(sorted(raw[e]), dtype=np.int64).reshape(-1, 2) for e in names]

    header, rows = _read_csv(labels_csv, LABEL_COLUMNS)
    ni, li = header.index("node"), header.index("label")
    given: dict[int, str] = {}
    for i, r in enumerate(rows, 2):
        node, label = r[ni], r[li]
        if node not in node_ix:
            raise DataError(
                f"{labels_csv}, line {i}: node {node!r} is in no edge of edges.csv; "
                "label only nodes of the network"
            )
        if given.setdefault(node_ix[node], label) != label:
            raise DataError(f"{labels_csv}, line {i}: node {node!r} has two labels")
    if not given:
        raise DataError(f"{labels_csv} labels no node; give at least a few nodes per class")
    target = {type_of[nodes[v]] for v in given}
    if len(target) > 1:
        raise DataError(
            f"{labels_csv} labels nodes of several types ({', '.join(sorted(target))}); label "
            "the nodes of one type"
        )
    classes = sorted(set(given.values()))
    labels = torch.full((len(nodes),), -1, dtype=torch.long)
    for v, label in given.items():
        labels[v] = classes.index(label)
    target_type = target.pop()
    if not any(st == target_type for _, st, _ in edge_types):
        raise DataError(
            f"{edges_csv} has no edge type leaving the labelled type {target_type!r}; "
            "list both directions of each relation"
        )

    feats_csv = folder / "features.csv"
    if feats_csv.is_file():
        x = _read_features(feats_csv, node_ix)
    else:
        onehot = torch.eye(len(types))[node_type]  # (N, T)
        deg = [torch.bincount(torch.as_tensor(e[:, 0]), minlength=len(nodes)) for e in edges]
        x = torch.cat([onehot, torch.log1p(torch.stack(deg, 1).float())], 1)  # (N, T + E)
    return HIN(
        name=folder.name,
        nodes=nodes,
        node_types=types,
        node_type=node_type,
        edge_types=edge_types,
        edges=edges,
        features=x.float(),
        labels=labels,
        classes=classes,
        splits=_splits(labels, seed),
        target_type=target_type,
    )


def _read_features(path: Path, node_ix: dict[str, int]) -> torch.Tensor:
    header, rows = _read_csv(path, ("node",))
    ni = header.index("node")
    if len(header) < 2:
        raise DataError(f"{path} has no feature columns after node")
    x = torch.full((len(node_ix), len(header) - 1), float("nan"))
    for i, r in enumerate(rows, 2):
        if r[ni] not in node_ix:
            raise DataError(f"{path}, line {i}: node {r[ni]!r} is in no edge of edges.csv")
        try:
            x[node_ix[r[ni]]] = torch.tensor([float(v) for j, v in enumerate(r) if j != ni])
        except ValueError as exc:
            raise DataError(f"{path}, line {i}: features must be numbers ({exc})") from exc
    missing = int((~torch.isfinite(x)).any(1).sum())
    if missing:
        raise DataError(
            f"{path} gives no (or non-finite) features for {missing} node(s); give a "
            "row per node of edges.csv"
        )
    return x


# --- the model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Meta-path learning: the distribution over ``length``-step chains (``decomp``, ``rank``,
    logits initialised at N(0, init_scale^2)), trained with Adam at ``lr``; the classifier
    ``W_2 relu(W_1 z + c_1) + c_2`` (``hidden`` units) with Adam at ``weight_lr`` and L2
    ``weight_decay``; ``epochs`` full-batch alternating steps."""

    length: int = 4  # meta-path steps, identity included
    decomp: str = "tt"  # tt | cp | independent (GTN-style)
    rank: int = 4
    epochs: int = 100
    lr: float = 0.1  # the distribution (Adam)
    weight_lr: float = 0.005  # the classifier (Adam, GTN's)
    weight_decay: float = 0.001  # the classifier (GTN's)
    hidden: int = 64
    init_scale: float = 0.01

    def check(self) -> Settings:
        if self.decomp not in DECOMPOSITIONS:
            raise UsageError(f"decomp {self.decomp!r} is not one of {', '.join(DECOMPOSITIONS)}")
        for name in ("length", "rank", "epochs", "hidden"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("lr", "weight_lr"):
            if not getattr(self, name) > 0:
                raise UsageError(f"{name} must be positive, not {getattr(self, name)}")
        if self.weight_decay < 0 or self.init_scale < 0:
            raise UsageError("weight_decay and init_scale must not be negative")
        return self


class MetaPathGCN(nn.Module):
    """P over meta-paths (``dist``) and a classifier of the target nodes.

    A node is featured when its feature row is not all zero; f_u = 1 for a featured node u, 0
    otherwise. The aggregate of a target node v is the average of the features at the ends of
    its walks, over the walks that end at a featured node (GTN normalises its learned adjacency
    by its row sums in the same way; walks that end at featureless nodes, or cannot be
    completed, as along type-inconsistent chains, carry nothing and drop out):

        [S, m] = sum_chains P(chain) A_{k_1} ... A_{k_L} [x, f]          (N, F + 1)
        z_v = S_v / m_v
        logits_v = W_2 relu(W_1 (z_v / sigma) + c_1) + c_2

    with sigma the per-column standard deviation of x over the featured nodes (a fixed scale).
    The classifier reads z alone (GTN's choice): the identity operator lets P keep x_v itself.
    The state (distribution and classifier) lives in parameters; operators and features are
    non-persistent buffers rebuilt from the network, so ``MetaPathGCN(hin, settings)`` followed
    by ``load_state_dict`` restores a trained model.
    """

    def __init__(self, hin: HIN, settings: Settings, seed: int = 0):
        super().__init__()
        s = settings.check()
        self.settings = s
        x = hin.features.float()  # (N, F)
        featured = (x != 0).any(1)  # (N,)
        if not bool(featured.any()):
            raise DataError(
                f"every node of {hin.name} has all-zero features; give features.csv with "
                "informative rows or leave it out for the default features"
            )
        g = torch.Generator().manual_seed(seed)
        self.dist = ChainDistribution(
            [hin.n_operators] * s.length,
            decomp=s.decomp,
            rank=s.rank,
            init_scale=s.init_scale,
            generator=g,
        )
        self.hidden = nn.Linear(x.shape[1], s.hidden)
        self.out = nn.Linear(s.hidden, len(hin.classes))
        for lin in (self.hidden, self.out):  # nn.Linear's default init, drawn from g
            nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5), generator=g)
            bound = 1 / math.sqrt(lin.in_features)
            nn.init.uniform_(lin.bias, -bound, bound, generator=g)
        n = hin.n_nodes
        targets = torch.nonzero(hin.node_type == hin.node_types.index(hin.target_type)).flatten()
        position = torch.full((n,), -1, dtype=torch.long)
        position[targets] = torch.arange(len(targets))
        ops = operators(hin)  # (K N, N)
        rows = (torch.arange(hin.n_operators)[:, None] * n + targets[None, :]).flatten()
        sigma = x[featured].std(0, unbiased=False)  # (F,)
        buffers = {
            "ops": ops,
            "ops_targets": csr_rows(ops, rows),  # (K T, N): the rows of the target nodes
            "xf": torch.cat([x, featured[:, None].float()], 1),  # (N, F + 1)
            "sigma": torch.where(sigma > 0, sigma, torch.ones_like(sigma)),  # (F,)
            "position": position,  # (N,) row of z, -1 off the target type
        }
        for name, value in buffers.items():
            self.register_buffer(name, value, persistent=False)

    def aggregate(self) -> torch.Tensor:
        """z of every target-type node, (T, F), by the contraction (no chain enumerated)."""
        cores = [c[0].to(self.xf.dtype) for c in self.dist.cores()]  # (D_{l-1}, K, D_l) each
        s_m = contract(self.ops, cores, self.xf, self.ops_targets)  # (T, F + 1)
        return s_m[:, :-1] / s_m[:, -1:].clamp_min(1e-30)

    def classify(self, z: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of ``nodes`` (of the target type) from z (T, F)."""
        h = z[self.position[nodes]] / self.sigma  # (B, F)
        return self.out(torch.relu(self.hidden(h)))

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        return self.classify(self.aggregate(), nodes)


def contract(
    ops: torch.Tensor, cores: list[torch.Tensor], x: torch.Tensor, last: torch.Tensor | None = None
) -> torch.Tensor:
    """``sum_chains P(chain) A_{k_1} ... A_{k_L} x`` for cores (D_{l-1}, K, D_l), ``ops`` the
    (K N x N) stack of the A_k and x (N, F), without enumerating chains:

        h_L = x,    h_{l-1}[a] = sum_{k, b} G_l[a, k, b] A_k h_l[b],    result h_0[0]   (N, F)

    ``last``: the rows of ``ops`` for the T nodes wanted, (K T x N) in the same block order; the
    final step then gives only those rows, (T, F).
    """
    n, f = x.shape
    h = x[:, :, None]  # (N, F, D_L = 1)
    for step in range(len(cores) - 1, -1, -1):
        g = cores[step]
        d_in, k, d_out = g.shape
        m = last if (step == 0 and last is not None) else ops
        z = spmm(m, h.reshape(n, f * d_out)).reshape(k, -1, f, d_out)  # (K, rows, F, D_out)
        h = torch.einsum("knfb,akb->nfa", z, g)  # (rows, F, D_in)
    return h[:, :, 0]


# --- training and evaluation ------------------------------------------------------------------


def _check_splits(hin: HIN):
    for split in ("train", "val"):
        if len(hin.splits.get(split, ())) == 0:
            raise DataError(f"the {split} split of {hin.name} is empty; label more nodes")


def train(hin: HIN, s: Settings, seed: int = 0, log=None) -> tuple[MetaPathGCN, list[dict]]:
    """Alternating first-order steps, full batch, one of each per epoch: Adam on the classifier
    for the train nodes' cross-entropy (with weight decay), then Adam on the distribution for
    the validation nodes' cross-entropy. Deterministic in ``seed``."""
    _check_splits(hin)
    model = MetaPathGCN(hin, s, seed)
    weights = [*model.hidden.parameters(), *model.out.parameters()]
    opt_w = torch.optim.Adam(weights, lr=s.weight_lr, weight_decay=s.weight_decay)
    opt_a = torch.optim.Adam(model.dist.parameters(), lr=s.lr)
    tr, va = hin.splits["train"], hin.splits["val"]
    y_tr, y_va = hin.labels[tr], hin.labels[va]
    history = []
    every = max(1, s.epochs // 10)
    for epoch in range(1, s.epochs + 1):
        t0 = time.perf_counter()
        z = model.aggregate()  # (T, F); the classifier step leaves it unchanged
        loss_w = nn.functional.cross_entropy(model.classify(z.detach(), tr), y_tr)
        opt_w.zero_grad(set_to_none=True)
        loss_w.backward()
        opt_w.step()
        logits = model.classify(z, va)  # (B_val, C), with the updated classifier
        loss_a = nn.functional.cross_entropy(logits, y_va)
        opt_a.zero_grad(set_to_none=True)
        loss_a.backward()
        opt_a.step()
        loss_w, loss_a = loss_w.detach(), loss_a.detach()
        if not (math.isfinite(float(loss_w)) and math.isfinite(float(loss_a))):
            raise DivergedError(f"epoch {epoch}: the loss is not finite; lower lr or weight_lr")
        row = {
            "epoch": epoch,
            "train_loss": float(loss_w),
            "val_loss": float(loss_a),
            "val_accuracy": float((logits.argmax(1) == y_va).float().mean()),
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        if log is not None and (epoch % every == 0 or epoch == s.epochs):
            log(
                f"epoch {epoch}/{s.epochs}: train loss {row['train_loss']:.4f}, val loss "
                f"{row['val_loss']:.4f}, val accuracy {row['val_accuracy']:.3f}"
            )
    return model, history


def evaluate(hin: HIN, model: MetaPathGCN, split: str = "test") -> dict:
    """Macro-F1 (the unweighted mean of the per-class F1, GTN's measure), micro-F1 and accuracy
    on one split."""
    from sklearn.metrics import f1_score

    if split not in hin.splits:
        raise UsageError(f"split {split!r} is not one of {', '.join(hin.splits)}")
    nodes = hin.splits[split]
    with torch.no_grad():
        pred = model(nodes).argmax(1).cpu().numpy()
    y = hin.labels[nodes].numpy()
    return {
        "macro_f1": float(f1_score(y, pred, average="macro")),
        "micro_f1": float(f1_score(y, pred, average="micro")),
        "accuracy": float(np.mean(pred == y)),
        "nodes": int(len(y)),
    }


# --- meta-paths out ---------------------------------------------------------------------------


def _featured_types(hin: HIN) -> set[str]:
    featured = (hin.features != 0).any(1)
    return {hin.node_types[int(t)] for t in torch.unique(hin.node_type[featured])}


def usable_mass(hin: HIN, cores: list[torch.Tensor]) -> float:
    """P(the chain is type-consistent from the target type and ends at a featured type): the
    chains the model's aggregate averages over. A forward pass over (bond, node type):

        alpha_0[0, target] = 1
        alpha_l[b, u] = sum_{a, t, k} alpha_{l-1}[a, t] G_l[a, k, b] T_k[t, u]

    with T_k the 0/1 type transition of operator k (the identity keeps the type)."""
    n_t = len(hin.node_types)
    trans = torch.zeros(hin.n_operators, n_t, n_t, dtype=torch.float64)  # (K, T, T)
    for k, (_, src, dst) in enumerate(hin.edge_types):
        trans[k, hin.node_types.index(src), hin.node_types.index(dst)] = 1.0
    trans[hin.identity] = torch.eye(n_t, dtype=torch.float64)
    alpha = torch.zeros(1, n_t, dtype=torch.float64)  # (D_0, T)
    alpha[0, hin.node_types.index(hin.target_type)] = 1.0
    for g in cores:
        alpha = torch.einsum("at,akb,ktu->bu", alpha, g.detach().double().cpu(), trans)
    ends = [hin.node_types.index(t) for t in _featured_types(hin)]
    return float(alpha[0, ends].sum())


def meta_paths(hin: HIN, model: MetaPathGCN, k: int = 5) -> list[dict]:
    """The k most probable meta-paths the model uses (identity steps merged, exactly; see
    ``tensornet.top_paths``): type-consistent from the target type and ending at a featured type.
    Each: ``edges`` (edge-type names), ``path``, text such as ``author -writes-> paper
    -published_in-> venue ...``, ``probability`` P(path), and ``share``, P(path) over the mass
    of all such paths (``usable_mass``): the weight the path has in the aggregate."""
    ends = {i: (st, dt) for i, (_, st, dt) in enumerate(hin.edge_types)}
    featured = _featured_types(hin)

    def end_type(s):
        return ends[s[-1]][1] if s else hin.target_type

    cores = [c[0] for c in model.dist.cores()]
    usable = usable_mass(hin, cores)
    found = top_paths(
        cores,
        hin.identity,
        k,
        allowed=lambda s, x: ends[x][0] == end_type(s),
        accept=lambda s: end_type(s) in featured,
    )
    out = []
    for path, p in found:
        names = [hin.edge_types[x][0] for x in path]
        text = hin.target_type + "".join(
            f" -{hin.edge_types[x][0]}-> {hin.edge_types[x][2]}" for x in path
        )
        out.append(
            {
                "edges": names,
                "path": text,
                "probability": p,
                "share": p / usable if usable > 0 else 0.0,
                "length": len(path),
            }
        )
    return out


def recovered(hin: HIN, paths: list[dict]) -> bool | None:
    """Whether the most probable meta-path (of ``meta_paths``) is the planted one; None when
    the network has no planted path."""
    if hin.planted is None:
        return None
    return bool(paths) and paths[0]["edges"] == list(hin.planted)
