"""Examples and the files that hold them: JSONL (one object per line) or CSV, with the columns
`question`, `options` (a list; in CSV one cell, `|`-separated; may be empty), `answer` and
`label` (see labels.py; in CSV several options `|`-separated; optional where only predictions
are wanted). An optional `phenomenon` groups the scores of `eval`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from mltk.errors import DataError

from . import labels as L

SUFFIXES = (".jsonl", ".json", ".csv")


@dataclass(frozen=True)
class Example:
    question: str
    options: tuple[str, ...]
    answer: str
    label: L.Label | None = None
    phenomenon: str | None = None
    skeleton: tuple[tuple[int, int], ...] = ()  # character spans of the question's core
    domain: str | None = None
    templates: tuple[str, ...] = field(default=(), compare=False)

    def to_json(self) -> dict:
        row = {"question": self.question, "options": list(self.options), "answer": self.answer}
        if self.label is not None:
            row["label"] = self.label.text(self.options)
        if self.phenomenon:
            row["phenomenon"] = self.phenomenon
        return row


def example(row: dict, where: str, need_label: bool) -> Example:
    """One example from a parsed row; every problem is a DataError naming `where`."""
    for key in ("question", "answer"):
        if key not in row:
            raise DataError(f"{where} has no {key!r}")
        if not isinstance(row[key], str):
            raise DataError(f"{where}: {key!r} is not text")
    answer = row["answer"].strip()
    if not answer:
        raise DataError(f"{where}: the answer is empty")
    options = row.get("options") or []
    if isinstance(options, str):
        options = [o for o in (p.strip() for p in options.split("|")) if o]
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise DataError(f"{where}: 'options' is not a list of texts")
    options = tuple(o.strip() for o in options)
    if len({o.lower() for o in options}) < len(options):
        raise DataError(f"{where}: 'options' names the same option twice")
    label = None
    if row.get("label") not in (None, ""):
        try:
            label = L.parse(row["label"], options)
        except L.LabelError as e:
            raise DataError(f"{where}: {e}") from None
    elif need_label:
        raise DataError(f"{where} has no 'label' (training and eval need one per example)")
    phenomenon = row.get("phenomenon")
    return Example(
        question=row["question"].strip(),
        options=options,
        answer=answer,
        label=label,
        phenomenon=str(phenomenon) if phenomenon else None,
    )


def read(path: Path, *, need_label: bool = True) -> list[Example]:
    """The examples of a JSONL or CSV file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        missing = {"question", "answer"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(
                f"{path} has no {sorted(missing)[0]!r} column (the header row "
                "names question, options, answer, label)"
            )
        rows = []
        for i, row in enumerate(reader, start=2):
            label = row.get("label") or ""
            if "|" in label:  # several chosen options, `|`-separated like the options
                row["label"] = [p.strip() for p in label.split("|") if p.strip()]
            rows.append((f"{path.name} row {i}", row))
    else:
        rows = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {i}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{where} is not valid JSON") from None
            if not isinstance(row, dict):
                raise DataError(f"{where} is not a JSON object")
            rows.append((where, row))
    if not rows:
        raise DataError(f"{path} holds no examples")
    return [example(row, where, need_label) for where, row in rows]


def write(path: Path, examples: list[Example]) -> None:
    from mltk import atomic

    lines = [json.dumps(e.to_json(), ensure_ascii=False) for e in examples]
    atomic.write_text(path, "\n".join(lines) + "\n")
