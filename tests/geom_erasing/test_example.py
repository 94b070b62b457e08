"""The shipped example runs end to end, as a CI job would run it."""

from __future__ import annotations

from tests.examples import run_example


def test_remove_qr_example_runs_and_checks_its_exit_codes(tmp_path):
    proc = run_example("geom-erasing/remove_qr.sh", "geom-erasing", tmp_path, tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "carry a QR code" in proc.stdout and "ICR with it" in proc.stdout
    assert "ok:" in proc.stderr
    for name in (
        "data.json",
        "detect/boxes.jsonl",
        "run/pipeline/model_index.json",
        "images/grid.png",
        "bad.err",
    ):
        assert (tmp_path / "work" / name).is_file()
