"""The shipped example runs end to end, as a CI job would run it."""

from __future__ import annotations

from tests.examples import run_example


def test_label_replies_example_runs_and_checks_its_exit_codes(tmp_path):
    proc = run_example("antnet/label_replies.sh", "antnet", tmp_path, tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "answer: 'Tea or coffee?' <- 'the second one, please'" in proc.stdout
    assert "ok:" in proc.stderr
    for name in ("train.json", "answer.json", "labelled.jsonl", "eval.json", "bad.err"):
        assert (tmp_path / "work" / name).is_file()
    assert (tmp_path / "work" / "run" / "confusion.png").is_file()
