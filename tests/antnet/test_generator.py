"""The embedded set: deterministic, its splits disjoint, its labels right by construction."""

from __future__ import annotations

from mltk_plugins.antnet import generator as G
from mltk_plugins.antnet import labels as L


def test_the_same_seed_gives_the_same_set_and_another_seed_another():
    a = G.generate({"train": 200, "dev": 20, "test": 20, "ood": 20}, seed=3)
    b = G.generate({"train": 200, "dev": 20, "test": 20, "ood": 20}, seed=3)
    c = G.generate({"train": 200, "dev": 20, "test": 20, "ood": 20}, seed=4)
    assert a == b
    assert a["train"] != c["train"]


def test_no_ood_template_or_domain_reaches_train_dev_or_test(data):
    t = G.templates("en")
    a, b = t["families"]["A"], t["families"]["B"]
    phrasings_a = {p for v in a["answers"].values() for p in v} | set(a["option_questions"])
    phrasings_b = {p for v in b["answers"].values() for p in v} | set(b["option_questions"])
    assert not phrasings_a & phrasings_b
    assert not set(a["yesno_questions"]) & set(b["yesno_questions"])
    inside = [e for s in ("train", "dev", "test") for e in data[s]]
    assert all(tid.startswith("A:") for e in inside for tid in e.templates)
    assert all(tid.startswith("B:") for e in data["ood"] for tid in e.templates)
    held = set(t["ood_domains"])
    assert {e.domain for e in inside}.isdisjoint(held)
    assert {e.domain for e in data["ood"]} <= held


def test_no_example_repeats_across_splits(data):
    def key(e):
        return (e.question.lower(), e.options, e.answer.lower())

    seen = [{key(e) for e in data[s]} for s in G.SPLITS]
    assert sum(map(len, seen)) == sum(len(data[s]) for s in G.SPLITS)
    assert len(set().union(*seen)) == sum(map(len, seen))


def test_labels_follow_the_answer_the_generator_wrote(data):
    examples = data["train"]
    for e in examples:
        assert e.label.allowed(len(e.options))
        if e.phenomenon == "negation":  # "not X" with two options picks the other one
            named = [i for i, o in enumerate(e.options) if o in e.answer]
            assert e.label == L.Label.select([1 - named[0]])
        if e.phenomenon == "all":
            assert e.label.chosen == tuple(range(len(e.options)))
        if e.phenomenon == "named":
            assert e.options[e.label.chosen[0]] in e.answer
    kinds = {e.phenomenon for e in examples}
    assert {
        "named",
        "ordinal",
        "negation",
        "all",
        "several",
        "none",
        "hedge",
        "distractor",
    } <= kinds
    assert {"yesno-direct", "yesno-indirect", "yesno-hedge", "yesno-distractor"} <= kinds


def test_skeleton_spans_mark_the_options_or_the_predicate(data):
    for e in data["train"][:100]:
        marked = [e.question[a:b].lower() for a, b in e.skeleton]
        if e.options:
            assert marked == [o.lower() for o in e.options]
        else:
            assert len(marked) == 1 and marked[0] in e.question.lower()


def test_the_set_covers_at_least_ten_domains():
    t = G.templates("en")
    assert len(G.domains("train")) >= 10
    assert set(G.domains("train")) | set(G.domains("ood")) == set(t["domains"])
