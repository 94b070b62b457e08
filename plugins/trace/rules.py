"""Rule chains on a knowledge graph: the supernet is L steps, each choosing one operator
(a relation, its inverse, or the identity); a distribution over chains per query relation.

The deterministic objective scores every entity with the expectation over chains, one
contraction with the operators interleaved:

    h_0 = e_query,    h_l[b] = sum_{a,k} G_l[a, k, b] A_k^T h_{l-1}[a],    score = h_L

so score[y] = sum over chains of P(chain) x (walks from the query entity to y along the chain).
One sparse (K N x N) product per step moves every query and bond value at once (they are the
columns). The loss is -log of the answer's score normalised over the entities. The stochastic
objective samples chains instead and follows the score function with a moving-average baseline.

While training, the rules walk facts + train minus the batch's own triples (Neural-LP's
protocol): a small sparse correction of the product removes those edges, the operator is not
rebuilt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from . import kg as K
from .sparse import csr
from .tensornet import ChainDistribution, log_prob_rows, sample_rows, top_paths


@dataclass(frozen=True)
class Settings:
    length: int = 3
    decomp: str = "tt"
    rank: int = 4
    objective: str = "deterministic"  # deterministic | stochastic
    epochs: int = 10
    batch_size: int = 64  # triples per step (each gives two queries)
    lr: float = 0.05
    samples: int = 8  # stochastic objective: chains sampled per query
    init_scale: float = 0.1


def make_distribution(kg: K.KG, s: Settings, seed: int = 0) -> ChainDistribution:
    g = torch.Generator().manual_seed(seed)
    return ChainDistribution(
        [kg.n_operators] * s.length,
        decomp=s.decomp,
        rank=s.rank,
        heads=2 * kg.n_relations,
        init_scale=s.init_scale,
        generator=g,
    )


class Walker:
    """Moves B queries along every operator at once, in one of two layouts (the same numbers):

    - dense: a score for every (entity, bond, query); one sparse (K N x N) product per step
      stacking A_k^T, the bond mixing an einsum. Fast while K N is small (kinship, umls).
    - sparse: only the (query, entity) pairs reached so far, each with its D bond values; a
      step follows every out-edge of those entities (all operators, the identity included)
      and sums the arrivals per (query, entity). Its cost follows the neighbourhoods, not N:
      graphs of many entities (family) and many relations.

    ``exclude`` (triples) leaves those edges out of one walk, both directions: the batch's own
    triples while training. Dense: the product's rows lose those sources' contributions;
    sparse: those edges are skipped.
    """

    DENSE_LIMIT = 30_000  # K * N up to which the dense layout is the faster

    def __init__(self, kg: K.KG, triples: np.ndarray, dtype=torch.float32, mode: str = "auto"):
        n, r = kg.n_entities, kg.n_relations
        self.n, self.r, self.k, self.dtype = n, r, kg.n_operators, dtype
        h, rel, t = (np.asarray(triples[:, i], dtype=np.int64) for i in range(3))
        ident = np.arange(n, dtype=np.int64)
        src = np.concatenate([h, t, ident])
        op = np.concatenate([rel, rel + r, np.full(n, 2 * r, dtype=np.int64)])
        dst = np.concatenate([t, h, ident])
        # one edge per (source, operator, target), sorted by source: a CSR by source
        self.keys = np.unique((src * self.k + op) * n + dst)
        self.src = torch.as_tensor(self.keys // n // self.k)
        self.op = torch.as_tensor(self.keys // n % self.k)
        self.dst = torch.as_tensor(self.keys % n)
        self.indptr = torch.as_tensor(np.searchsorted(self.keys // n // self.k, np.arange(n + 1)))
        self.mode = (
            mode if mode != "auto" else ("dense" if self.k * n <= self.DENSE_LIMIT else "sparse")
        )
        if self.mode == "dense":
            idx = torch.stack([self.op * n + self.dst, self.src])
            self.ops = csr(idx, torch.ones(len(self.keys), dtype=dtype), (self.k * n, n))

    def _excluded(self, triples: np.ndarray) -> torch.Tensor:
        """Indices of the edges of ``triples`` (both directions) present in the graph."""
        n, r, k = self.n, self.r, self.k
        h, rel, t = (np.asarray(triples[:, i], dtype=np.int64) for i in range(3))
        want = np.concatenate([(h * k + rel) * n + t, (t * k + rel + r) * n + h])
        pos = np.searchsorted(self.keys, want).clip(0, len(self.keys) - 1)
        return torch.as_tensor(np.unique(pos[self.keys[pos] == want]))

    def __call__(
        self,
        cores: list[torch.Tensor],
        start: torch.Tensor,
        heads: torch.Tensor,
        exclude: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Scores (N, B) of every entity for B queries (start entities, query relations):
        sum over chains of P(chain) x the walks from the start to the entity along it."""
        edges = self._excluded(exclude) if exclude is not None and len(exclude) else None
        if self.mode == "dense":
            return self._dense(cores, start, heads, edges)
        return self._sparse(cores, start, heads, edges)

    def _dense(self, cores, start, heads, edges):
        n, b = self.n, len(start)
        h = torch.zeros(n, 1, b, dtype=cores[0].dtype)
        h[start, 0, torch.arange(b)] = 1.0  # (N, D_0 = 1, B)
        ops = self.ops if self.ops.dtype == h.dtype else self.ops.to(h.dtype)
        for g in cores:
            gq = g[heads]  # (B, D_in, K, D_out)
            d_in, k = gq.shape[1], gq.shape[2]
            flat = h.reshape(n, d_in * b)
            z = ops @ flat  # (K N, D_in B)
            if edges is not None:
                z = z.index_add(0, self.op[edges] * n + self.dst[edges], -flat[self.src[edges]])
            z = z.reshape(k, n, d_in, b)
            h = torch.einsum("knaq,qakb->nbq", z, gq)  # (N, D_out, B)
        return h[:, 0, :]

    def _sparse(self, cores, start, heads, edges):
        n, b = self.n, len(start)
        skip = None
        if edges is not None:
            skip = torch.zeros(len(self.keys), dtype=torch.bool)
            skip[edges] = True
        query, entity = torch.arange(b), torch.as_tensor(start)  # the pairs reached
        value = torch.ones(b, 1, dtype=cores[0].dtype)  # (P, D_0 = 1)
        for g in cores:
            first, deg = self.indptr[entity], self.indptr[entity + 1] - self.indptr[entity]
            pair = torch.repeat_interleave(torch.arange(len(entity)), deg)  # (E,)
            offset = torch.cumsum(deg, 0) - deg
            edge = first[pair] + torch.arange(len(pair)) - offset[pair]
            if skip is not None:
                keep = ~skip[edge]
                pair, edge = pair[keep], edge[keep]
            w = g[heads[query[pair]], :, self.op[edge], :]  # (E, D_in, D_out)
            arrive = torch.einsum("ea,eab->eb", value[pair], w)  # (E, D_out)
            key, where = torch.unique(query[pair] * n + self.dst[edge], return_inverse=True)
            value = torch.zeros(len(key), w.shape[-1], dtype=w.dtype).index_add(0, where, arrive)
            query, entity = key // n, key % n
        scores = torch.zeros(n, b, dtype=value.dtype)
        return scores.index_put((entity, query), value[:, 0])


def nll(scores: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """-log of each answer's share of its query's total score."""
    total = scores.sum(0).clamp_min(1e-30)
    share = scores[answers, torch.arange(scores.shape[1])] / total
    return -share.clamp_min(1e-20).log()


def _own_edges(batch: np.ndarray, fact_edges: set) -> np.ndarray:
    """The batch's triples the walk leaves out: all but those facts also hold."""
    own = [x for x in {tuple(x) for x in batch.tolist()} if x not in fact_edges]
    return np.asarray(own, dtype=np.int64).reshape(-1, 3)


def train(kg: K.KG, s: Settings, *, seed: int = 0, on_epoch=None, log=None):
    """Fit the distribution on the train queries; returns it and the per-epoch history."""
    torch.manual_seed(seed)
    dist = make_distribution(kg, s, seed)
    walker = Walker(kg, kg.graph(), torch.float32)
    fact_edges = {tuple(x) for x in kg.splits["facts"].tolist()}
    opt = torch.optim.Adam(dist.parameters(), lr=s.lr)
    rng = np.random.default_rng(seed)
    train_triples = kg.splits["train"]
    history, baseline = [], None
    for epoch in range(1, s.epochs + 1):
        t0, losses = time.perf_counter(), []
        order = rng.permutation(len(train_triples))
        for i in range(0, len(order), s.batch_size):
            batch = train_triples[order[i : i + s.batch_size]]
            q, a = K.queries(batch, kg.n_relations)
            start, heads, answers = (torch.as_tensor(x) for x in (q[:, 0], q[:, 1], a))
            excl = _own_edges(batch, fact_edges)
            cores = [c.float() for c in dist.cores()]
            if s.objective == "deterministic":
                loss = nll(walker(cores, start, heads, excl), answers).mean()
            else:
                loss, baseline = _stochastic_loss(
                    dist, walker, start, heads, answers, excl, s, baseline
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0}
        if on_epoch is not None:
            row.update(on_epoch(dist, epoch) or {})
        history.append(row)
        if log is not None:
            extra = "".join(f", {k} {v:.4f}" for k, v in row.items() if k.startswith("valid_"))
            log(f"epoch {epoch}/{s.epochs}: loss {row['loss']:.4f}{extra} ({row['seconds']:.1f} s)")
    return dist, history


def _stochastic_loss(dist, walker, start, heads, answers, excl, s: Settings, baseline):
    """Score-function surrogate: per query, ``samples`` chains drawn from its relation's
    distribution; reward = log-share of the answer along the chain alone; gradient
    E[(reward - b) grad log P(chain)] with b a moving average of the rewards."""
    cores = dist.cores()
    b_q = len(start)
    total, rewards = 0.0, []
    ones = torch.arange(b_q)
    for _ in range(s.samples):
        with torch.no_grad():
            chains = sample_rows(cores, heads)  # (B, L)
            one_hot = [
                torch.nn.functional.one_hot(chains[:, j], walker.k).to(cores[0].dtype)[
                    :, None, :, None
                ]  # (B, 1, K, 1)
                for j in range(chains.shape[1])
            ]
            reward = -nll(walker(one_hot, start, ones, excl), answers)  # (B,)
        rewards.append(reward)
        b = baseline if baseline is not None else float(reward.mean())
        total = total - ((reward - b) * log_prob_rows(cores, chains, heads)).sum()
    mean_reward = float(torch.cat(rewards).mean())
    baseline = mean_reward if baseline is None else 0.9 * baseline + 0.1 * mean_reward
    return total / (b_q * s.samples), baseline


# --- evaluation ------------------------------------------------------------------------------


def scores_for(
    kg: K.KG, dist: ChainDistribution, q: np.ndarray, batch: int = 256, walker: Walker = None
) -> np.ndarray:
    """Scores (B, N) of every entity for queries (entity, query relation), on facts + train;
    ``walker``: a float64 walker on that graph, to reuse across calls."""
    walker = walker or Walker(kg, kg.graph(), torch.float64)
    with torch.no_grad():
        cores = [c.double() for c in dist.cores()]
        out = [
            walker(
                cores, torch.as_tensor(q[i : i + batch, 0]), torch.as_tensor(q[i : i + batch, 1])
            ).T.numpy()
            for i in range(0, len(q), batch)
        ]
    return np.concatenate(out) if out else np.zeros((0, kg.n_entities))


def ranks(kg: K.KG, scores: np.ndarray, q: np.ndarray, answers: np.ndarray):
    """Filtered ranks of each answer: (higher, ties) = entities scoring strictly above it and
    level with it (the answer excluded), after removing its query's other true answers."""
    known = kg.answers()
    higher = np.zeros(len(q), dtype=np.int64)
    ties = np.zeros(len(q), dtype=np.int64)
    for i, ((e, r), a) in enumerate(zip(q.tolist(), answers.tolist())):
        s = scores[i]
        target = s[a]
        mask = np.ones(len(s), dtype=bool)
        mask[known.get((e, r), [])] = False
        mask[a] = False
        higher[i] = int(np.count_nonzero(s[mask] > target))
        ties[i] = int(np.count_nonzero(s[mask] == target))
    return higher, ties


def metrics(higher: np.ndarray, ties: np.ndarray, ks=(1, 3, 10)) -> dict:
    """MRR and Hits@k, tie-averaged (the expectation over a random order of the tied entities)
    and as Neural-LP's code counts them (only strictly higher entities)."""
    out = {}
    lo, hi = higher + 1, higher + ties + 1  # the rank is uniform on lo..hi
    rr = np.array([np.mean(1.0 / np.arange(a, b + 1)) for a, b in zip(lo, hi)])
    out["mrr"] = float(rr.mean())
    for k in ks:
        frac = np.clip((k - lo + 1) / (hi - lo + 1), 0, 1)
        out[f"hits@{k}"] = float(frac.mean())
    out["mrr_strict"] = float(np.mean(1.0 / lo))
    for k in ks:
        out[f"hits@{k}_strict"] = float(np.mean(lo <= k))
    out["queries"] = int(len(higher))
    return out


def evaluate(kg: K.KG, dist: ChainDistribution, split: str = "test", walker: Walker = None) -> dict:
    q, a = K.queries(kg.splits[split], kg.n_relations)
    sc = scores_for(kg, dist, q, walker=walker)
    higher, ties = ranks(kg, sc, q, a)
    return {
        **metrics(higher, ties),
        "_higher": higher,
        "_ties": ties,
        "_q": q,
        "_a": a,
        "_scores": sc,
    }


# --- rules out --------------------------------------------------------------------------------


def rule_text(kg: K.KG, head: int, ops: list[int]) -> str:
    """``uncle(x, y) <- brother(x, z1), father(z1, y)``; an inverse step r^-1 from u to v reads
    r(v, u)."""
    r = kg.n_relations
    name = kg.relations[head] if head < r else f"inv_{kg.relations[head - r]}"
    if not ops:
        return f"{name}(x, y) <- equal(x, y)"
    names = ["x"] + [f"z{i}" for i in range(1, len(ops))] + ["y"]
    atoms = []
    for i, k in enumerate(ops):
        u, v = names[i], names[i + 1]
        atoms.append(
            f"{kg.relations[k]}({u}, {v})" if k < r else f"{kg.relations[k - r]}({v}, {u})"
        )
    return f"{name}(x, y) <- " + ", ".join(atoms)


class _RuleStats:
    """Support and standard confidence of rules on facts + train, with each operator's 0/1
    adjacency built once."""

    def __init__(self, kg: K.KG):
        self.kg, self.graph, self.adj = kg, kg.graph(), {}

    def _adj(self, k: int):
        import scipy.sparse as sp

        if k not in self.adj:
            n, r = self.kg.n_entities, self.kg.n_relations
            rows = self.graph[self.graph[:, 1] == (k if k < r else k - r)]
            a = sp.csr_matrix((np.ones(len(rows)), (rows[:, 0], rows[:, 2])), shape=(n, n))
            a.data[:] = 1
            self.adj[k] = a if k < r else a.T.tocsr()
        return self.adj[k]

    def __call__(self, head: int, ops: list[int]) -> tuple[int, float]:
        import scipy.sparse as sp

        path = sp.identity(self.kg.n_entities, format="csr")
        for k in ops:
            path = (path @ self._adj(k)).tocsr()
            path.data[:] = 1
        both = path.multiply(self._adj(head)).nnz
        return int(both), (both / path.nnz if path.nnz else 0.0)


def support_confidence(kg: K.KG, head: int, ops: list[int]) -> tuple[int, float]:
    """On facts + train: support = pairs (x, y) where body and head both hold; standard
    confidence = support / pairs where the body holds."""
    return _RuleStats(kg)(head, ops)


def extract_rules(
    kg: K.KG,
    dist: ChainDistribution,
    per_head: int = 10,
    heads: list[int] | None = None,
    min_prob: float = 0.0,
    stats: bool = True,
) -> list[dict]:
    """The most probable rules of each query relation: chains with their identity steps
    dropped, the probabilities of chains that reduce to the same rule summed (exactly, by
    ``tensornet.top_paths``); with ``stats``, support and confidence on facts + train.
    ``r(x, y) <- r(x, y)`` is left out: it holds for every pair and says nothing."""
    cores = [c.detach().double() for c in dist.cores()]
    stats_of = _RuleStats(kg) if stats else None
    out = []
    for head in heads if heads is not None else range(2 * kg.n_relations):
        found = top_paths(
            [c[head] for c in cores],
            kg.identity,
            per_head,
            min_prob=min_prob,
            beam=max(64, 8 * per_head),
            accept=lambda s, h=head: s != (h,),
        )
        for ops, p in found:
            support, conf = stats_of(head, ops) if stats_of else (None, None)
            out.append(
                {
                    "head": kg.operator_name(head),
                    "head_id": head,
                    "body": list(ops),
                    "rule": rule_text(kg, head, list(ops)),
                    "probability": p,
                    "support": support,
                    "confidence": conf,
                    "length": len(ops),
                }
            )
    return out


def fired_rules(kg: K.KG, entity: int, rules: list[dict]) -> dict[int, list[dict]]:
    """answer -> the rules (of one query relation) whose body leads from ``entity`` to it on
    facts + train, most probable first."""
    import scipy.sparse as sp

    n, r = kg.n_entities, kg.n_relations
    g = kg.graph()
    step = {}
    out: dict[int, list[dict]] = {}
    for rule in sorted(rules, key=lambda x: -x["probability"]):
        v = np.zeros(n, dtype=bool)
        v[entity] = True
        for k in rule["body"]:
            if k not in step:
                rel = k if k < r else k - r
                rows = g[g[:, 1] == rel]
                src, dst = (rows[:, 0], rows[:, 2]) if k < r else (rows[:, 2], rows[:, 0])
                step[k] = sp.csr_matrix((np.ones(len(rows), dtype=bool), (dst, src)), shape=(n, n))
            v = step[k] @ v
        for y in np.flatnonzero(v).tolist():
            out.setdefault(y, []).append(rule)
    return out
