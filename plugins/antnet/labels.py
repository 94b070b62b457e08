"""Answer labels: for a yes/no question `yes`, `no` or `uncertain`; for a question with options
the chosen options (one, several or all), `none` or `uncertain`.

The model reads a label as a global class over KINDS plus, for `select`, the set of chosen
option indices (the per-option sigmoid head). In files a label is text: one of the words, an
option's text, an option's index (from 0, its place in `options`), `all`, or a list of options.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

KINDS = ("yes", "no", "uncertain", "none", "select")
YESNO_KINDS = ("yes", "no", "uncertain")  # the classes a question without options allows
OPTION_KINDS = ("uncertain", "none", "select")  # and a question with options


class LabelError(ValueError):
    """A label that does not fit its question (the message is one sentence for the user)."""


@dataclass(frozen=True)
class Label:
    kind: str
    chosen: tuple[int, ...] = ()  # option indices, sorted; only for kind "select"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown label kind {self.kind!r}")
        if (self.kind == "select") != bool(self.chosen):
            raise ValueError("a select label needs chosen options, and only it has them")

    @classmethod
    def select(cls, indices: Iterable[int]) -> Label:
        return cls("select", tuple(sorted(set(int(i) for i in indices))))

    def code(self) -> str:
        """One string per label, for flat classifiers and confusion tables: `yes`, `select:0+2`."""
        if self.kind != "select":
            return self.kind
        return "select:" + "+".join(map(str, self.chosen))

    @classmethod
    def from_code(cls, code: str) -> Label:
        if code.startswith("select:"):
            return cls.select(int(i) for i in code[7:].split("+"))
        return cls(code)

    def text(self, options: Sequence[str]) -> str | list[str]:
        """The label as a file holds it: a word, or the list of chosen options' texts."""
        if self.kind != "select":
            return self.kind
        return [options[i] for i in self.chosen]

    def allowed(self, n_options: int) -> bool:
        if n_options == 0:
            return self.kind in YESNO_KINDS
        return self.kind in OPTION_KINDS and all(0 <= i < n_options for i in self.chosen)


def _option(item, options: Sequence[str]) -> int:
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise LabelError(f"label item {item!r} is neither an option's text nor its index")
    if isinstance(item, int):
        if not 0 <= item < len(options):
            raise LabelError(
                f"label index {item} is out of range: there are {len(options)} options "
                f"(indices 0 to {len(options) - 1})"
            )
        return item
    wanted = item.strip().lower()
    for i, o in enumerate(options):
        if o.strip().lower() == wanted:
            return i
    if wanted.isdigit():
        return _option(int(wanted), options)
    shown = ", ".join(repr(o) for o in options)
    raise LabelError(f"label {item!r} is not one of the options ({shown})")


def parse(raw, options: Sequence[str]) -> Label:
    """A label from a file: a word, an option (text or index), `all`, or a list of options."""
    n = len(options)
    if isinstance(raw, str) and raw.strip().lower() in KINDS[:4] + ("all",):
        word = raw.strip().lower()
        if word == "all":
            if not n:
                raise LabelError("label 'all' needs options; this question has none")
            return Label.select(range(n))
        label = Label(word)
        if not label.allowed(n):
            if n:
                raise LabelError(
                    f"label {word!r} is for a yes/no question, but this one has "
                    "options (use uncertain, none, all or the chosen options)"
                )
            raise LabelError(
                f"label {word!r} needs options; a question without options takes "
                "yes, no or uncertain"
            )
        return label
    if not n:
        raise LabelError(f"label {raw!r} is not yes, no or uncertain (the question has no options)")
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise LabelError('the label is an empty list; write "none" when no option is chosen')
    return Label.select(_option(item, options) for item in items)
