"""The shell example runs end to end as a CI job would (JSON results, exit codes)."""

from __future__ import annotations

import shutil

import pytest

from tests.examples import run_example


# five `mltk` processes (torch + diffusers imports each): about 40 s on one core
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_tiny_end_to_end_example_runs(tmp_path):
    proc = run_example("pixart/tiny_end_to_end.sh", "pixart", tmp_path, tmp_path / "work",
                       PIXART_STEPS="4")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "empty prompt file -> exit 5" in proc.stdout
    assert (tmp_path / "work" / "images" / "grid.png").is_file()
    assert (tmp_path / "work" / "shipped" / "000-seed0.png").is_file()
