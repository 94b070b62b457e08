"""The embedded answer-understanding set: questions, options and free-form answers drawn from
a template file per language (templates/en.json), each answer labelled and tagged with the
phenomenon it shows (an option named, an ordinal, a negation, both/all, several, none, a hedge,
an indirect yes or no, an answer that names one thing and then takes it back).

Two disjoint template families split the set: family A on the training domains gives train,
dev and test; family B (a new phrasing of every question and answer) on held-out domains gives
the out-of-distribution (OOD) test. No public corpus of natural reverse QA exists (the paper's
Chinese sets are not released), hence a generator: seeded and deterministic.
"""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path

from .labels import Label
from .records import Example

TEMPLATES = Path(__file__).parent / "templates"
SPLITS = ("train", "dev", "test", "ood")
SIZES = {"train": 4000, "dev": 500, "test": 1000, "ood": 1000}

# phenomenon -> relative weight; each needs its option count (see _answer)
OPTION_KINDS = {
    "named": 4,
    "ordinal": 3,
    "negation": 2,
    "all": 2,
    "several": 2,
    "none": 2,
    "hedge": 2,
    "distractor": 3,
}
YESNO_KINDS = {"direct": 4, "indirect": 4, "hedge": 1.5, "distractor": 2}


@cache
def templates(language: str = "en") -> dict:
    path = TEMPLATES / f"{language}.json"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in TEMPLATES.glob("*.json")))
        raise FileNotFoundError(f"no templates for language {language!r} (have: {have})")
    return json.loads(path.read_text(encoding="utf-8"))


def domains(split: str, language: str = "en") -> list[str]:
    t = templates(language)
    held = set(t["ood_domains"])
    return sorted(d for d in t["domains"] if (d in held) == (split == "ood"))


def family(split: str) -> str:
    return "B" if split == "ood" else "A"


def _join(options: list[str], word: str) -> str:
    return options[0] if len(options) == 1 else ", ".join(options[:-1]) + f" {word} " + options[-1]


def _fill(template: str, values: dict[str, str]) -> tuple[str, dict[str, tuple[int, int]]]:
    """The template with its slots filled, and the character span each slot landed on."""
    out, spans, i = [], {}, 0
    while i < len(template):
        j = template.find("{", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        k = template.index("}", j)
        name, start = template[j + 1 : k], sum(map(len, out))
        out.append(values[name])
        spans[name] = (start, start + len(values[name]))
        i = k + 1
    return "".join(out), spans


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _question(rng, fam: dict, dom: dict, t: dict, options: list[str]):
    """The question, its template id and its skeleton spans (option mentions or the predicate)."""
    if not options:
        k = rng.randrange(len(fam["yesno_questions"]))
        pred = rng.choice(dom["predicates"])
        text, spans = _fill(fam["yesno_questions"][k], {"pred": pred})
        return text, f"yesno{k}", [spans["pred"]]
    k = rng.randrange(len(fam["option_questions"]))
    template = fam["option_questions"][k]
    opts = _join(options, t["or"])
    text, spans = _fill(template, {"opts": opts, "noun": dom["noun"]})
    if template.startswith("{opts}"):
        text = _capital(text)
    start = spans["opts"][0]
    skeleton = []
    for o in options:  # where each option sits inside the joined list
        at = text.lower().index(o.lower(), start)
        skeleton.append((at, at + len(o)))
        start = at + len(o)
    return text, f"option{k}", skeleton


def _answer(rng, answers: dict, t: dict, kind: str, options: list[str]):
    """(answer text, label, template id), or None when `kind` needs other options."""
    n = len(options)
    pick = rng.randrange(n) if n else 0
    if kind == "named":
        key, values, label = "named", {"o": options[pick]}, Label.select([pick])
    elif kind == "ordinal":
        last = rng.random() < 0.25
        pick = n - 1 if last else rng.randrange(min(n, len(t["ordinals"])))
        word = t["last"] if last else t["ordinals"][pick]
        key, values, label = "ordinal", {"ord": word}, Label.select([pick])
    elif kind == "negation":
        if n != 2:
            return None
        key, values, label = "negation", {"o": options[pick]}, Label.select([1 - pick])
    elif kind == "all":
        key = rng.choice(["all_two", "all"]) if n == 2 else "all"
        values, label = {}, Label.select(range(n))
    elif kind == "several":
        if n < 3:
            return None
        a, b = sorted(rng.sample(range(n), 2))
        key, values, label = "several", {"o1": options[a], "o2": options[b]}, Label.select([a, b])
    elif kind == "none":
        key = rng.choice(["none_two", "none"]) if n == 2 else "none"
        values, label = {}, Label("none")
    elif kind == "hedge":
        key, values, label = "hedge", {}, Label("uncertain")
    elif kind == "distractor" and n:
        x = rng.choice([i for i in range(n) if i != pick])
        key, values = "distractor", {"o": options[pick], "x": options[x]}
        label = Label.select([pick])
    elif kind in ("direct", "indirect", "distractor"):
        yes = rng.random() < 0.5
        key = {"direct": "", "indirect": "indirect_", "distractor": "distractor_"}[kind]
        key += "yes" if yes else "no"
        values, label = {}, Label("yes" if yes else "no")
    else:
        raise ValueError(f"unknown phenomenon {kind!r}")
    k = rng.randrange(len(answers[key]))
    text, _ = _fill(answers[key][k], values)
    return text, label, f"{key}{k}"


def example(rng: random.Random, split: str, language: str = "en") -> Example:
    """One example of `split`: a yes/no question (40%) or one with 2-4 options."""
    t = templates(language)
    name = family(split)
    fam = t["families"][name]
    dom_name = rng.choice(domains(split, language))
    dom = t["domains"][dom_name]
    n = 0 if rng.random() < 0.4 else rng.choice([2, 2, 3, 4])
    options = rng.sample(dom["options"], n)
    kinds = OPTION_KINDS if n else YESNO_KINDS
    while True:
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        made = _answer(rng, fam["answers"], t, kind, options)
        if made is not None:
            break
    answer, label, answer_id = made
    answer = rng.choice(t["fillers"]) + answer + rng.choice(t["endings"])
    question, question_id, skeleton = _question(rng, fam, dom, t, options)
    return Example(
        question=question,
        options=tuple(options),
        answer=answer,
        label=label,
        phenomenon=kind if n else f"yesno-{kind}",
        skeleton=tuple(skeleton),
        domain=dom_name,
        templates=(f"{name}:{question_id}", f"{name}:{answer_id}"),
    )


def generate(sizes: dict[str, int] | None = None, seed: int = 0, language: str = "en"):
    """{split: [Example, ...]}: train/dev/test drawn without repeats from family A, OOD from
    family B on the held-out domains. Each split has its own random stream, and the test sets
    are drawn first: the test and OOD sets do not depend on how much training data is asked."""
    sizes = {**SIZES, **(sizes or {})}
    out, seen = {}, set()
    for split in ("ood", "test", "dev", "train"):
        rng = random.Random(f"antnet-{language}-{seed}-{split}")
        rows, tries = [], 0
        while len(rows) < sizes[split]:
            ex = example(rng, split, language)
            key = (ex.question.lower(), ex.options, ex.answer.lower())
            tries += 1
            if key in seen:
                if tries > 50 * max(sizes[split], 1):
                    raise ValueError(
                        f"the templates cannot make {sizes[split]} distinct {split} examples"
                    )
                continue
            seen.add(key)
            rows.append(ex)
        out[split] = rows
    return {split: out[split] for split in SPLITS}
