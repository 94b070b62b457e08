"""User files: JSONL and CSV read alike; every malformed row is one sentence naming it."""

from __future__ import annotations

import json

import pytest
from mltk_plugins.antnet import labels as L
from mltk_plugins.antnet import records as R

from mltk.errors import DataError

ROWS = [
    {
        "question": "Tea or coffee?",
        "options": ["tea", "coffee"],
        "answer": "the second one",
        "label": ["coffee"],
    },
    {"question": "Shall I book it?", "options": [], "answer": "I'd rather not", "label": "no"},
    {
        "question": "Soup, salad or pasta?",
        "options": ["soup", "salad", "pasta"],
        "answer": "first and last",
        "label": [0, 2],
    },
]


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_and_csv_hold_the_same_examples(tmp_path):
    import csv

    with open(tmp_path / "a.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["question", "options", "answer", "label"])
        w.writerow([ROWS[0]["question"], "tea|coffee", ROWS[0]["answer"], "coffee"])
        w.writerow([ROWS[1]["question"], "", ROWS[1]["answer"], "no"])
        w.writerow([ROWS[2]["question"], "soup | salad | pasta", ROWS[2]["answer"], "0"])
        w.writerow([ROWS[2]["question"], "soup|salad|pasta", ROWS[2]["answer"], "soup | 2"])
    a = R.read(_jsonl(tmp_path / "a.jsonl", ROWS))
    b = R.read(tmp_path / "a.csv")
    assert [x.label for x in a] == [L.Label.select([1]), L.Label("no"), L.Label.select([0, 2])]
    assert [(x.question, x.options, x.answer) for x in a] == [
        (x.question, x.options, x.answer) for x in b[:3]
    ]
    assert b[2].label == L.Label.select([0])
    assert b[3].label == L.Label.select([0, 2])


def test_written_examples_read_back(tmp_path, data):
    R.write(tmp_path / "x.jsonl", data["test"][:30])
    back = R.read(tmp_path / "x.jsonl")
    assert [(e.question, e.options, e.answer, e.label) for e in back] == [
        (e.question, e.options, e.answer, e.label) for e in data["test"][:30]
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        ('["a list"]', "line 2 is not a JSON object"),
        ("{not json", "line 2 is not valid JSON"),
        (
            '{"question": "Tea?", "options": ["tea"], "answer": "  ", "label": "none"}',
            "line 2: the answer is empty",
        ),
        (
            '{"question": "Tea or coffee?", "options": ["tea", "coffee"], "answer": "milk", '
            '"label": ["milk"]}',
            "line 2: label 'milk' is not one of the options",
        ),
        ('{"question": "Tea?", "answer": "yes"}', "line 2 has no 'label'"),
        (
            '{"question": "Tea?", "options": "tea", "answer": "yes", "label": "yes"}',
            "for a yes/no question",
        ),
        ('{"question": 3, "answer": "yes"}', "'question' is not text"),
    ],
)
def test_a_bad_row_is_named_in_one_sentence(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[1]) + "\n" + line + "\n")
    with pytest.raises(DataError, match=message.replace("?", r"\?").replace("[", r"\[")):
        R.read(path)


def test_answers_to_label_need_no_label(tmp_path):
    path = _jsonl(tmp_path / "u.jsonl", [{"question": "Tea?", "answer": "sure"}])
    [e] = R.read(path, need_label=False)
    assert e.label is None and e.options == ()
