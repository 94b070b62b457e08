"""The shipped example runs end to end, as a CI job would run it."""

from __future__ import annotations

import re

from tests.examples import run_example


def test_grow_stream_example_runs_and_checks_its_exit_codes(tmp_path):
    proc = run_example("growclip/grow_stream.sh", "growclip", tmp_path, tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"arrival 3: text \dx32, vision \dx32, \d shared", proc.stdout)
    assert "ok:" in proc.stderr
    for name in ("grow.json", "grow3.json", "eval.json", "labels.json", "bad.err"):
        assert (tmp_path / "work" / name).is_file()
    assert (tmp_path / "work" / "grow3" / "model" / "mltk_growclip.json").is_file()
