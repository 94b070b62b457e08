"""The dataset cache: content-addressed keys, atomic entries, concurrent fills, killed writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from mltk import cache

WRITER = textwrap.dedent(
    """
    import sys, time, hashlib
    import numpy as np
    from mltk.cache import cached_arrays

    delay = float(sys.argv[1])

    def build():
        with open(sys.argv[2], "a") as fh:
            fh.write("built\\n")
        time.sleep(delay)
        x = np.arange(2_000_000, dtype=np.float64).reshape(1000, 2000)
        return {"x": x, "y": x[:, :5].copy()}

    arrays = cached_arrays("big", {"n": 1000}, build, fingerprint="abc")
    print(hashlib.sha256(arrays["x"].tobytes() + arrays["y"].tobytes()).hexdigest())
    """
)


def _env(tmp_path):
    return {**os.environ, "MLTK_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def test_keys_change_with_name_params_fingerprint_and_version():
    base = cache.entry_key("ds", {"a": 1}, "fp", 1)
    assert base == cache.entry_key("ds", {"a": 1}, "fp", 1)
    others = [
        cache.entry_key("ds2", {"a": 1}, "fp", 1),
        cache.entry_key("ds", {"a": 2}, "fp", 1),
        cache.entry_key("ds", {"a": 1}, "fp2", 1),
        cache.entry_key("ds", {"a": 1}, "fp", 2),
    ]
    assert len({base, *others}) == 5


def test_second_call_reads_the_entry_without_building(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "c"))
    calls = []

    def build():
        calls.append(1)
        return {"a": np.arange(6, dtype=np.int32).reshape(2, 3)}

    first = cache.cached_arrays("ds", {"k": 1}, build)
    second = cache.cached_arrays("ds", {"k": 1}, build)
    assert calls == [1]
    np.testing.assert_array_equal(first["a"], second["a"])
    entries = cache.list_entries()
    assert [e.name for e in entries] == ["ds"] and entries[0].size > 0
    assert cache.clear("ds") > 0 and cache.list_entries() == []


def test_a_damaged_entry_is_rebuilt_and_cleared(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "c"))
    calls = []

    def build():
        calls.append(1)
        return {"a": np.arange(6, dtype=np.int32)}

    cache.cached_arrays("ds", {"k": 1}, build)
    (entry,) = cache.list_entries()
    with open(entry.path / cache.ARRAYS_FILE, "r+b") as fh:
        fh.truncate(5)
    again = cache.cached_arrays("ds", {"k": 1}, build)  # rebuilt, not a SafetensorError
    assert calls == [1, 1]
    np.testing.assert_array_equal(again["a"], np.arange(6))
    # an entry whose entry.json is damaged is still listed (by its folder), so clear removes it
    (entry.path / cache.ENTRY_FILE).write_text('{"name": "d')
    assert [e.name for e in cache.list_entries()] == ["ds"]
    assert cache.clear("ds") > 0 and not entry.path.exists()


def test_file_fingerprint_follows_content(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("1,2\n")
    before = cache.file_fingerprint(f)
    f.write_text("1,3\n")
    assert cache.file_fingerprint(f) != before


def test_two_processes_filling_one_entry_both_read_it_whole(tmp_path):
    log = tmp_path / "builds.log"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, "1.0", str(log)],
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    digests = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    x = np.arange(2_000_000, dtype=np.float64).reshape(1000, 2000)
    import hashlib

    expected = hashlib.sha256(x.tobytes() + x[:, :5].copy().tobytes()).hexdigest()
    assert digests == [expected, expected]
    assert log.read_text().count("built") == 1  # the lock made the second wait, not rebuild


def test_a_killed_writer_leaves_no_entry_a_reader_would_take(tmp_path):
    log = tmp_path / "builds.log"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, "30", str(log)], env=_env(tmp_path))
    deadline = time.time() + 60
    while not (log.exists() and "built" in log.read_text()):
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    old = os.environ.get("MLTK_CACHE_DIR")
    os.environ["MLTK_CACHE_DIR"] = str(tmp_path / "cache")
    try:
        assert cache.list_entries() == []
        # The next process takes the lock the dead one held, builds the entry whole, and reads it.
        out = subprocess.run(
            [sys.executable, "-c", WRITER, "0", str(log)],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert log.read_text().count("built") == 2
        assert [e.name for e in cache.list_entries()] == ["big"]
    finally:
        if old is None:
            os.environ.pop("MLTK_CACHE_DIR")
        else:
            os.environ["MLTK_CACHE_DIR"] = old


def test_cache_commands(cli):
    assert cli("cache", "path").stdout.strip() == cli.env["MLTK_CACHE_DIR"]
    assert "is empty" in cli("cache", "list").stdout
    assert cli("toy", "train", "--steps", "1", "--out", "r").code == 0
    listed = cli("cache", "list", "--json").json()
    assert [e["name"] for e in listed["entries"]] == ["toy"]
    freed = cli("cache", "clear", "--json").json()["bytes_freed"]
    assert freed > 0
    assert cli("cache", "list", "--json").json()["entries"] == []
    not_a_folder = cli.cwd.parent / "a-file"
    not_a_folder.write_text("x")
    r = cli("cache", "list", env={"MLTK_CACHE_DIR": str(not_a_folder)})
    assert r.code == 5 and "is a file, not a folder" in r.stderr
