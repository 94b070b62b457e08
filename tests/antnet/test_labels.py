"""Labels as files write them (a word, an option's text or index, a list) round-trip."""

from __future__ import annotations

import pytest
from mltk_plugins.antnet import labels as L

OPTIONS = ("tea", "coffee", "orange juice")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("coffee", L.Label.select([1])),
        ("  Orange Juice ", L.Label.select([2])),
        (1, L.Label.select([1])),
        ("2", L.Label.select([2])),
        (["tea", 2], L.Label.select([0, 2])),
        (["coffee", "coffee"], L.Label.select([1])),
        ("all", L.Label.select([0, 1, 2])),
        ("none", L.Label("none")),
        ("Uncertain", L.Label("uncertain")),
    ],
)
def test_a_label_is_read_by_text_index_or_list(raw, expected):
    label = L.parse(raw, OPTIONS)
    assert label == expected
    assert L.parse(label.text(OPTIONS), OPTIONS) == label  # the text form reads back
    assert L.Label.from_code(label.code()) == label


def test_yes_no_labels_belong_to_questions_without_options():
    for word in ("yes", "no", "uncertain"):
        assert L.parse(word, ()) == L.Label(word)
        assert L.parse(L.Label(word).text(()), ()) == L.Label(word)


@pytest.mark.parametrize(
    "raw, options, message",
    [
        ("milk", OPTIONS, "not one of the options"),
        (7, OPTIONS, "out of range"),
        ([], OPTIONS, "empty list"),
        ("yes", OPTIONS, "yes/no question"),
        ("none", (), "needs options"),
        ("coffee", (), "no options"),
        ("all", (), "needs options"),
        (True, OPTIONS, "neither"),
    ],
)
def test_a_label_that_does_not_fit_its_question_is_refused(raw, options, message):
    with pytest.raises(L.LabelError, match=message):
        L.parse(raw, options)
