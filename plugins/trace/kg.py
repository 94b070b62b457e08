"""Knowledge graphs for rule learning: triples, the relation operators and the query protocol
of Neural-LP's code (which DRUM reuses unchanged).

- Operators: each relation r (x -> y along r), its inverse (y -> x) and the identity (rules
  shorter than the chain): K = 2|R| + 1. A query relation is r or its inverse: 2|R| heads.
- Queries: each triple (h, r, t) gives (h, r, ?) with answer t and (t, r^-1, ?) with answer h.
- Graphs: rules walk facts + train; while training, minus the batch's own triples.
- Filtered ranking: an answer is ranked among every entity, minus the other true answers of its
  query in train + facts + valid + test.

Embedded sets: family, kinship, umls in the Neural-LP split (MIT; see data/kg-rules/LICENSE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mltk.errors import DataError

EMBEDDED = ("family", "kinship", "umls")
DATA = Path(__file__).parent / "data" / "kg-rules"
SPLITS = ("facts", "train", "valid", "test")


@dataclass
class KG:
    name: str
    entities: list[str]
    relations: list[str]
    splits: dict[str, np.ndarray]  # split -> (n, 3) int64 rows (head, relation, tail)
    _answers: dict | None = field(default=None, repr=False)

    @property
    def n_entities(self) -> int:
        return len(self.entities)

    @property
    def n_relations(self) -> int:
        return len(self.relations)

    @property
    def n_operators(self) -> int:
        return 2 * self.n_relations + 1

    @property
    def identity(self) -> int:
        return 2 * self.n_relations

    def operator_name(self, k: int) -> str:
        r = self.n_relations
        return (
            "identity"
            if k == 2 * r
            else self.relations[k]
            if k < r
            else f"inv_{self.relations[k - r]}"
        )

    def graph(self) -> np.ndarray:
        """The triples the rules walk on at test time: facts + train."""
        return np.concatenate([self.splits["facts"], self.splits["train"]])

    def answers(self) -> dict[tuple[int, int], np.ndarray]:
        """(entity, query relation) -> every true answer in train + facts + valid + test."""
        if self._answers is None:
            every = np.concatenate([self.splits[s] for s in SPLITS])
            q, a = queries(every, self.n_relations)
            order = np.lexsort((a, q[:, 1], q[:, 0]))
            q, a = q[order], a[order]
            keys, starts = np.unique(q, axis=0, return_index=True)
            bounds = list(starts[1:]) + [len(q)]
            self._answers = {
                (int(e), int(r)): np.unique(a[s:b]) for (e, r), s, b in zip(keys, starts, bounds)
            }
        return self._answers


def load_family() -> KG:
    """The embedded data set ``family`` (registered with mltk's data sets)."""
    return load("family")


def load_kinship() -> KG:
    """The embedded data set ``kinship``."""
    return load("kinship")


def load_umls() -> KG:
    """The embedded data set ``umls``."""
    return load("umls")


def queries(triples: np.ndarray, n_relations: int) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of each triple: ((entity, query relation) rows, answers)."""
    h, r, t = triples[:, 0], triples[:, 1], triples[:, 2]
    q = np.concatenate([np.stack([h, r], 1), np.stack([t, r + n_relations], 1)])
    return q.astype(np.int64), np.concatenate([t, h]).astype(np.int64)


def load(source: str, *, split: str | None = None, seed: int = 0) -> KG:
    """An embedded set, a folder in the Neural-LP layout, or one triples file with ``split``
    fractions ("0.8,0.1,0.1": train, valid, test; no facts: rules walk train, minus the batch)."""
    if source in EMBEDDED:
        return _folder(DATA / source, source)
    path = Path(source)
    if path.is_dir():
        return _folder(path, path.name)
    if path.is_file():
        return _single_file(path, split, seed)
    raise DataError(
        f"{source} is neither an embedded knowledge graph ({', '.join(EMBEDDED)}) "
        "nor an existing folder or triples file"
    )


def _read_triples(path: Path) -> list[tuple[str, str, str]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} cannot be read as text ({exc})") from exc
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t") if "\t" in line else line.split()
        if len(parts) != 3:
            raise DataError(
                f"{path}, line {i}: a triple needs 3 tab-separated fields (head, "
                f"relation, tail); this line has {len(parts)}"
            )
        out.append(tuple(p.strip() for p in parts))
    return out


def _names(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def _folder(folder: Path, name: str) -> KG:
    raw = {}
    for s in SPLITS:
        f = folder / f"{s}.txt"
        if not f.is_file():
            if s == "facts":
                raw[s] = []
                continue
            raise DataError(
                f"{folder} has no {s}.txt (a knowledge-graph folder holds "
                "train.txt, valid.txt, test.txt and optionally facts.txt)"
            )
        raw[s] = _read_triples(f)
    return _index(
        name, raw, _names(folder / "entities.txt"), _names(folder / "relations.txt"), str(folder)
    )


def _single_file(path: Path, split: str | None, seed: int) -> KG:
    from mltk.errors import UsageError

    if split is None:
        raise UsageError(
            f"{path} is one triples file: give --split train,valid,test fractions "
            "(e.g. 0.8,0.1,0.1)"
        )
    try:
        fr = [float(x) for x in split.split(",")]
    except ValueError as exc:
        raise UsageError(f"--split {split!r} must be three fractions such as 0.8,0.1,0.1") from exc
    if len(fr) != 3 or min(fr) <= 0 or abs(sum(fr) - 1) > 1e-9:
        raise UsageError(f"--split {split!r} must be three positive fractions summing to 1")
    triples = _read_triples(path)
    order = np.random.default_rng(seed).permutation(len(triples))
    cut1, cut2 = int(fr[0] * len(triples)), int((fr[0] + fr[1]) * len(triples))
    pick = lambda idx: [triples[i] for i in idx]  # noqa: E731
    raw = {
        "facts": [],
        "train": pick(order[:cut1]),
        "valid": pick(order[cut1:cut2]),
        "test": pick(order[cut2:]),
    }
    return _index(path.stem, raw, None, None, str(path))


def _index(name, raw, entities, relations, where) -> KG:
    seen_e = entities or sorted({x for s in raw.values() for h, _, t in s for x in (h, t)})
    seen_r = relations or sorted({r for s in raw.values() for _, r, _ in s})
    e_ix = {e: i for i, e in enumerate(seen_e)}
    r_ix = {r: i for i, r in enumerate(seen_r)}
    splits = {}
    for s, rows in raw.items():
        out = np.zeros((len(rows), 3), dtype=np.int64)
        for i, (h, r, t) in enumerate(rows):
            if r not in r_ix:
                raise DataError(
                    f"{where}: {s} uses the relation {r!r}, which relations.txt does not list"
                )
            for x in (h, t):
                if x not in e_ix:
                    raise DataError(
                        f"{where}: {s} uses the entity {x!r}, which entities.txt does not list"
                    )
            out[i] = (e_ix[h], r_ix[r], e_ix[t])
        splits[s] = out
    for s in ("train", "test"):
        if len(splits[s]) == 0:
            raise DataError(f"{where}: the {s} split is empty")
    return KG(name, list(seen_e), list(seen_r), splits)
