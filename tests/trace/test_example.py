"""The shipped example runs end to end, as a CI job would run it."""

from __future__ import annotations

from tests.examples import run_example


def test_kinship_rules_example_runs_and_checks_its_exit_codes(tmp_path):
    proc = run_example("trace/kinship_rules.sh", "trace", tmp_path, tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "kinship: test MRR" in proc.stdout and "ok:" in proc.stderr
    for name in ("rules.json", "rules/rules.tsv", "answers.json", "answers.csv", "bad.err"):
        assert (tmp_path / "work" / name).is_file()
