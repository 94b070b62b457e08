"""Every number has a source: the measured tables of the plugin docs are generated from the JSON
their benchmarks wrote (docs/tables.py), and the docs hold exactly what the generators give.

Fast and light: reads JSON and markdown only (no torch, no plugin).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_tables():
    spec = importlib.util.spec_from_file_location("mltk_docs_tables", ROOT / "docs" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


T = _load_tables()
DOCS = {p.name: p.read_text() for p in T.DOCS}


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_generated_block_matches_its_json(doc):
    found = T.blocks(DOCS[doc])
    assert found, f"docs/{doc} has no generated block"
    for name, body, line in found:
        assert body == T.generate(name), (
            f"docs/{doc}:{line}: block {name!r} differs from benchmarks' JSON; "
            "run `python docs/assemble_readme.py` (or docs/tables.py --refresh)"
        )


def test_every_generator_is_used_once():
    used = [name for text in DOCS.values() for name, _, _ in T.blocks(text)]
    assert sorted(used) == sorted(T.NAMES)


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_table_is_generated_or_descriptive(doc):
    tables = T.markdown_tables(DOCS[doc])
    assert tables
    for line, header, generated in tables:
        assert generated or header in T.DESCRIPTIVE, (
            f"docs/{doc}:{line}: a hand-written table ({header[:60]}...): generate it from its "
            "benchmark's JSON in docs/tables.py, or list its header in DESCRIPTIVE"
        )


def test_every_descriptive_header_is_in_the_docs():
    headers = {h for text in DOCS.values() for _, h, gen in T.markdown_tables(text) if not gen}
    assert set(T.DESCRIPTIVE) <= headers


def _copy_without(tmp_path: Path, rel: str, drop) -> Path:
    """benchmarks/ copied to tmp_path with one key removed from one JSON file."""
    bench = tmp_path / "benchmarks"
    shutil.copytree(ROOT / "benchmarks", bench, ignore=shutil.ignore_patterns("*.png", "*.py"))
    data = json.loads((bench / rel).read_text())
    drop(data)
    (bench / rel).write_text(json.dumps(data))
    return bench


@pytest.mark.parametrize(
    "name, rel, drop, key",
    [
        ("tensor-images-retina-256", "tensor/images.json", lambda d: [r.pop("cpu_seconds", 0) for r in d], "cpu_seconds"),
        ("timediff-results-etth2", "timediff/results_etth2.json", lambda d: d.pop("test_windows"), "test_windows"),
        ("aesam-gpu-resnet18", "aesam/gpu_resnet18.json", lambda d: d["runs"][2].pop("wall_vs_sam"), "wall_vs_sam"),
        ("pixart-cpu-ratio", "pixart/cpu_speed.json", lambda d: d.pop("runs"), "runs"),
        ("timediff-ar-penalty", "timediff/ar_penalty.json", lambda d: d["datasets"][1].pop("absolute_penalty"), "absolute_penalty"),
    ],
)  # fmt: skip
def test_a_generator_fails_loudly_on_a_missing_key(tmp_path, name, rel, drop, key):
    bench = _copy_without(tmp_path, rel, drop)
    with pytest.raises(T.TableError, match=f"benchmarks/{rel} has no key '{key}'"):
        T.generate(name, bench)


def test_a_missing_json_file_fails_loudly(tmp_path):
    with pytest.raises(T.TableError, match="does not exist"):
        T.generate("pixart-classifier-accuracy", tmp_path)


def test_refresh_rewrites_a_stale_block_and_nothing_else(tmp_path):
    doc = tmp_path / "doc.md"
    fresh = T.generate("tensor-rank-cost")
    doc.write_text(
        "intro\n\n- item\n\n  <!-- table: tensor-rank-cost -->\n  | stale |\n  <!-- /table -->\n\nend\n"
    )
    assert T.refresh(doc)
    assert doc.read_text() == (
        f"intro\n\n- item\n\n  <!-- table: tensor-rank-cost -->\n{fresh}\n  <!-- /table -->\n\nend\n"
    )
    assert not T.refresh(doc)  # a second run changes nothing


@pytest.mark.parametrize(
    "text, message",
    [
        ("<!-- table: tensor-scale -->\nx\n", "never closed"),
        ("x\n<!-- /table -->\n", "without an opening marker"),
        ("<!-- table: no-such-table -->\nx\n<!-- /table -->\n", "no table generator"),
    ],
)
def test_broken_markers_fail_loudly(tmp_path, text, message):
    doc = tmp_path / "doc.md"
    doc.write_text(text)
    with pytest.raises(T.TableError, match=message):
        T.refresh(doc)
    assert doc.read_text() == text


def test_tables_py_is_light_and_follows_images_py():
    """docs/tables.py imports the standard library only, and its copy of images.py's method
    order is the script's."""
    tree = ast.parse((ROOT / "docs" / "tables.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "json", "math", "statistics", "pathlib", "sys"}
    script = ast.parse((ROOT / "benchmarks" / "tensor" / "images.py").read_text())
    methods = next(
        ast.literal_eval(node.value)
        for node in script.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "METHODS"
    )
    assert methods == T.TENSOR_METHODS
