"""Rule chains on knowledge graphs: the walk against brute force, the training protocol's
exclusion, filtered ranks with ties, Neural-LP's evaluator, rules and their statistics."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest
import torch
from mltk_plugins.trace import kg as K
from mltk_plugins.trace import rules as R
from mltk_plugins.trace.commands import _write_predictions, score_predictions

ENTITIES = ["ann", "bob", "cat", "dan", "eve", "fay"]
RELATIONS = ["father", "brother", "uncle"]


def _kg(extra_test=None) -> K.KG:
    """bob is ann's brother, ann is cat's and dan's father: bob is their uncle."""
    e = {x: i for i, x in enumerate(ENTITIES)}
    r = {x: i for i, x in enumerate(RELATIONS)}

    def rows(triples):
        return np.array([(e[h], r[rel], e[t]) for h, rel, t in triples], dtype=np.int64)

    facts = rows(
        [
            ("ann", "father", "cat"),
            ("ann", "father", "dan"),
            ("bob", "brother", "ann"),
            ("eve", "brother", "fay"),
            ("fay", "father", "cat"),
        ]
    )
    train = rows([("bob", "uncle", "cat")])
    valid = rows([("eve", "uncle", "cat")])
    test = rows(extra_test or [("bob", "uncle", "dan")])
    return K.KG(
        "toy", ENTITIES, RELATIONS, {"facts": facts, "train": train, "valid": valid, "test": test}
    )


def _dense_adjacency(kg: K.KG, triples: np.ndarray) -> list[np.ndarray]:
    """A_k[x, y] = 1 for an edge x -> y of operator k (relations, inverses, identity)."""
    n, r = kg.n_entities, kg.n_relations
    out = [np.zeros((n, n)) for _ in range(kg.n_operators)]
    for h, rel, t in triples.tolist():
        out[rel][h, t] = 1
        out[rel + r][t, h] = 1
    out[-1] = np.eye(n)
    return out


def _cores(kg, decomp, length=2, seed=0):
    s = R.Settings(length=length, decomp=decomp, rank=3, init_scale=1.0)
    return [c.detach() for c in R.make_distribution(kg, s, seed).double().cores()]


@pytest.mark.parametrize("mode", ["dense", "sparse"])
@pytest.mark.parametrize("decomp", ["tt", "cp", "independent"])
def test_walk_equals_the_sum_over_every_chain_of_its_probability_times_its_paths(mode, decomp):
    kg = _kg()
    cores = _cores(kg, decomp)
    adj = _dense_adjacency(kg, kg.graph())
    start = torch.tensor([0, 1, 4, 2])
    heads = torch.tensor([2, 5, 1, 0])
    got = R.Walker(kg, kg.graph(), torch.float64, mode)(cores, start, heads).numpy()
    from mltk_plugins.trace.tensornet import log_prob

    for col, (s, h) in enumerate(zip(start.tolist(), heads.tolist())):
        want = np.zeros(kg.n_entities)
        for chain in itertools.product(range(kg.n_operators), repeat=2):
            p = float(log_prob(cores, torch.tensor([chain]), head=h).exp())
            path = adj[chain[0]] @ adj[chain[1]]
            want += p * path[s]
        np.testing.assert_allclose(got[:, col], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_a_batchs_own_triples_are_left_out_of_its_walk_as_if_never_in_the_graph(mode):
    kg = _kg()
    graph = kg.graph()
    own = kg.splits["train"]  # (bob, uncle, cat): the query must not see its own answer
    cores = _cores(kg, "tt", length=1)
    start, heads = torch.tensor([1, 2]), torch.tensor([2, 2 + 3])  # uncle(bob, ?), uncle(?, cat)
    excluded = R.Walker(kg, graph, torch.float64, mode)(cores, start, heads, exclude=own)
    without = R.Walker(kg, kg.splits["facts"], torch.float64, mode)(cores, start, heads)
    with_it = R.Walker(kg, graph, torch.float64, mode)(cores, start, heads)
    np.testing.assert_allclose(excluded.numpy(), without.numpy(), atol=1e-15)
    assert with_it[2, 0] > excluded[2, 0]  # bob reaches cat by the uncle edge itself
    assert with_it[1, 1] > excluded[1, 1]


def test_dense_and_sparse_walks_agree_on_kinship_with_exclusion():
    kg = K.load("kinship")
    cores = [
        c.detach() for c in R.make_distribution(kg, R.Settings(init_scale=1.0)).double().cores()
    ]
    q, _ = K.queries(kg.splits["train"][:16], kg.n_relations)
    args = torch.as_tensor(q[:, 0]), torch.as_tensor(q[:, 1]), kg.splits["train"][:16]
    dense = R.Walker(kg, kg.graph(), torch.float64, "dense")(cores, *args)
    sparse = R.Walker(kg, kg.graph(), torch.float64, "sparse")(cores, *args)
    np.testing.assert_allclose(dense.numpy(), sparse.numpy(), rtol=1e-12, atol=1e-12)


def _expected_rank_metrics(scores, answer, others):
    """MRR and Hits@1 by enumerating every order of the tied entities (the definition)."""
    candidates = [j for j in range(len(scores)) if j == answer or j not in others]
    above = sum(scores[j] > scores[answer] for j in candidates if j != answer)
    tied = [j for j in candidates if j != answer and scores[j] == scores[answer]]
    rr, h1, n = 0.0, 0.0, 0
    for order in itertools.permutations([answer, *tied]):
        rank = above + order.index(answer) + 1
        rr, h1, n = rr + 1 / rank, h1 + (rank == 1), n + 1
    return rr / n, h1 / n, above + 1


def test_filtered_ranks_remove_other_true_answers_and_average_over_ties():
    kg = _kg(extra_test=[("bob", "uncle", "dan"), ("bob", "uncle", "fay")])
    q, a = K.queries(kg.splits["test"], kg.n_relations)
    scores = np.array(
        [
            [0.5, 0.0, 0.9, 0.3, 0.3, 0.3],  # uncle(bob, ?) answer dan: cat (train) filtered
            [0.1, 0.9, 0.2, 0.2, 0.2, 0.0],  # uncle(bob, ?) answer fay: zero, below all but bob
            [0.2, 0.7, 0.2, 0.2, 0.9, 0.0],  # uncle(?, dan) answer bob: eve scores above
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # uncle(?, fay) answer bob: all tied
        ]
    )
    higher, ties = R.ranks(kg, scores, q, a)
    known = kg.answers()
    want_rr, want_h1, want_strict = [], [], []
    for i, ((e, r), ans) in enumerate(zip(q.tolist(), a.tolist())):
        others = set(known[(e, r)].tolist()) - {ans}
        rr, h1, strict = _expected_rank_metrics(scores[i], ans, others)
        want_rr.append(rr), want_h1.append(h1), want_strict.append(strict)
    m = R.metrics(higher, ties)
    assert higher.tolist() == [s - 1 for s in want_strict]
    assert m["mrr"] == pytest.approx(np.mean(want_rr), abs=1e-12)
    assert m["hits@1"] == pytest.approx(np.mean(want_h1), abs=1e-12)
    assert m["mrr_strict"] == pytest.approx(np.mean([1 / s for s in want_strict]), abs=1e-12)
    assert higher[0] == 1 and ties[0] == 1  # ann above; eve tied; cat and fay filtered


def _neural_lp_evaluate(lines, truths, top_k):
    """Neural-LP's eval/evaluate.py (filtered), transcribed: each line is query, answer,
    start, then the entities scored above the answer and the answer itself."""
    query_heads, query_tails = truths
    hits = ranks = rranks = 0.0
    for line in lines:
        q, h, t = line[0:3]
        preds = line[3:]
        assert h == preds[-1]
        if q.startswith("inv_"):
            also_correct = query_heads[(q[len("inv_") :], t)]
        else:
            also_correct = query_tails[(q, t)]
        also_correct = set(also_correct)
        assert h in also_correct
        filtered = set(preds[:-1]) - also_correct
        filtered.add(preds[-1])
        hits += 1.0 if len(filtered) <= top_k else 0.0
        ranks += len(filtered)
        rranks += 1.0 / len(filtered)
    return hits / len(lines), rranks / len(lines)


def _neural_lp_truths(kg):
    """eval/get_truths.py: query_tails[(r, t)] = heads h with (h, r, t); query_heads[(r, h)] =
    tails t with (h, r, t), over every split."""
    heads, tails = defaultdict(set), defaultdict(set)
    for split in K.SPLITS:
        for h, r, t in kg.splits[split].tolist():
            name = kg.relations[r]
            tails[(name, kg.entities[t])].add(kg.entities[h])
            heads[(name, kg.entities[h])].add(kg.entities[t])
    return heads, tails


def test_our_metrics_and_predictions_file_match_neural_lps_evaluator(tmp_path):
    kg = K.load("kinship")
    q, a = K.queries(kg.splits["test"], kg.n_relations)
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(len(q), kg.n_entities)).astype(float)  # many ties
    higher, ties = R.ranks(kg, scores, q, a)
    ours = R.metrics(higher, ties)
    path = tmp_path / "test_predictions.txt"
    _write_predictions(path, kg, {"_scores": scores, "_q": q, "_a": a})
    lines = [ln.split(",") for ln in path.read_text().splitlines()]
    truths = _neural_lp_truths(kg)
    for k in (1, 3, 10):
        hits, mrr = _neural_lp_evaluate(lines, truths, k)
        assert ours[f"hits@{k}_strict"] == pytest.approx(hits, abs=1e-12)
        assert ours["mrr_strict"] == pytest.approx(mrr, abs=1e-12)
    read_back = score_predictions(kg, path)
    assert read_back["mrr"] == pytest.approx(ours["mrr_strict"], abs=1e-12)
    assert read_back["hits@10"] == pytest.approx(ours["hits@10_strict"], abs=1e-12)
    assert ours["mrr"] < ours["mrr_strict"]  # ties cost the tie-averaged ranks


def test_rule_text_reads_inverse_steps_backwards():
    kg = _kg()
    father, brother, uncle = 0, 1, 2
    assert R.rule_text(kg, uncle, [brother, father]) == (
        "uncle(x, y) <- brother(x, z1), father(z1, y)"
    )
    assert R.rule_text(kg, uncle + 3, [father + 3, brother + 3]) == (
        "inv_uncle(x, y) <- father(z1, x), brother(y, z1)"
    )


def test_support_and_confidence_count_pairs_on_facts_and_train():
    kg = _kg()
    # brother(x, z), father(z, y): (bob, cat), (bob, dan), (eve, cat); uncle holds for
    # (bob, cat) in train only (valid and test are not the rules' graph)
    assert R.support_confidence(kg, 2, [1, 0]) == (1, pytest.approx(1 / 3))


def test_the_family_uncle_rule_has_support_1196_and_confidence_083():
    kg = K.load("family")
    r = {n: i for i, n in enumerate(kg.relations)}
    support, conf = R.support_confidence(kg, r["uncle"], [r["brother"], r["father"]])
    assert support == 1196 and conf == pytest.approx(0.83, abs=0.005)


def test_fired_rules_name_the_rules_whose_body_reaches_the_answer():
    kg = _kg()
    rules = [{"body": [1, 0], "probability": 0.6}, {"body": [0], "probability": 0.3}]
    fired = R.fired_rules(kg, 1, rules)  # from bob
    assert set(fired) == {2, 3}  # brother then father: cat and dan; bob is nobody's father
    assert fired[2] == [rules[0]]
    fired = R.fired_rules(kg, 0, rules)  # from ann: father reaches cat and dan
    assert set(fired) == {2, 3} and fired[3] == [rules[1]]


@pytest.mark.parametrize("objective", ["deterministic", "stochastic"])
def test_training_makes_the_rule_behind_the_answers_the_most_probable(objective):
    """uncle = brother then father on a made-up graph with only that regularity."""
    rng = np.random.default_rng(0)
    n_fam = 40
    triples = []
    for f in range(n_fam):
        dad, unc, kid1, kid2 = (4 * f + i for i in range(4))
        triples += [(unc, 1, dad), (dad, 0, kid1), (dad, 0, kid2), (unc, 2, kid1), (unc, 2, kid2)]
    triples = np.array(triples, dtype=np.int64)
    uncle = triples[triples[:, 1] == 2]
    rest = triples[triples[:, 1] != 2]
    order = rng.permutation(len(uncle))
    splits = {
        "facts": rest,
        "train": uncle[order[:50]],
        "valid": uncle[order[50:60]],
        "test": uncle[order[60:]],
    }
    kg = K.KG("fam", [f"p{i}" for i in range(4 * n_fam)], RELATIONS, splits)
    s = R.Settings(
        length=2,
        decomp="tt",
        rank=2,
        epochs=15 if objective == "stochastic" else 8,
        lr=0.1,
        objective=objective,
        batch_size=16,
    )
    dist, history = R.train(kg, s, seed=0)
    rules = R.extract_rules(kg, dist, per_head=1, heads=[2])
    assert rules[0]["rule"] == "uncle(x, y) <- brother(x, z1), father(z1, y)"
    assert rules[0]["confidence"] == 50 / 80  # uncle holds in train for 50 of the 80 pairs
    assert R.evaluate(kg, dist)["hits@1"] > 0.45  # two kids tie per uncle: 0.5 at best


def test_the_tautology_r_from_r_is_never_written_as_a_rule():
    kg = _kg()
    s = R.Settings(length=1, decomp="independent", init_scale=0.0)  # uniform: every chain
    dist = R.make_distribution(kg, s)
    rules = R.extract_rules(kg, dist, per_head=kg.n_operators)
    for head in range(2 * kg.n_relations):
        bodies = [r["body"] for r in rules if r["head_id"] == head]
        assert [head] not in bodies and [] in bodies  # the identity: the answer is x itself
        assert len(bodies) == kg.n_operators - 1
