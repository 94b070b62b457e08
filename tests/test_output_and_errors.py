"""The output contract: stdout for results, stderr for logs, exit codes, one-sentence errors."""

from __future__ import annotations

import json

import pytest

from mltk.errors import ExitCode


@pytest.mark.parametrize(
    ("kind", "code", "sentence"),
    [
        ("usage", ExitCode.USAGE, "--thing 3 must be even"),
        ("data", ExitCode.DATA, "data.csv has no numeric column"),
        ("device", ExitCode.DEVICE, "--device cuda:7 is not available"),
        ("diverged", ExitCode.DIVERGED, "the loss is not finite at step 3; lower --lr"),
        ("dependency", ExitCode.MISSING_DEPENDENCY, "pip install 'mltk[toy]'"),
        ("crash", ExitCode.RUNTIME, "ZeroDivisionError: division by zero in the toy"),
        ("interrupt", ExitCode.INTERRUPTED, "interrupted"),
    ],
)
def test_errors_are_one_sentence_with_a_distinct_exit_code(cli, kind, code, sentence):
    r = cli.sub("toy", "fail", kind) if kind == "crash" else cli("toy", "fail", kind)
    assert r.code == code
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mltk: error: ") and sentence in lines[0]


def test_mltk_debug_shows_the_traceback(cli):
    r = cli.sub("toy", "fail", "crash", env={"MLTK_DEBUG": "1"})
    assert r.code == ExitCode.RUNTIME
    assert "Traceback" in r.stderr


def test_unknown_plugin_is_a_usage_error_naming_the_installed_ones(cli):
    r = cli("nosuchplugin", "train")
    assert r.code == ExitCode.USAGE
    assert "No such command 'nosuchplugin'" in r.stderr and "Installed plugins: toy" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_option_value_is_a_usage_error(cli):
    r = cli("toy", "train", "--steps", "many")
    assert r.code == ExitCode.USAGE
    assert len(r.stderr.strip().splitlines()) == 1


def test_json_is_exactly_one_object_on_stdout_and_logs_stay_on_stderr(cli):
    r = cli("toy", "train", "--steps", "3", "--out", "r", "--json")
    assert r.code == 0, r.stderr
    obj = json.loads(r.stdout)  # the whole of stdout parses as one object
    assert obj["schema_version"] == 1 and obj["steps"] == 3
    assert r.stdout.count("\n") == 1


def test_results_go_to_stdout_and_quiet_silences_logs(cli):
    first = cli("toy", "train", "--steps", "2", "--out", "r")
    r = cli("toy", "train", "--resume", "r", "--quiet")
    assert r.code == 0, r.stderr
    assert "resumed" not in r.stderr
    assert "loss" in r.stdout and "resumed" not in r.stdout
    assert first.code == 0


def test_unknown_device_is_a_usage_error(cli):
    r = cli("toy", "train", "--device", "tpu", "--out", "r")
    assert r.code == ExitCode.USAGE
    assert "--device 'tpu' is not a device" in r.stderr


def test_cuda_on_a_machine_without_it_exits_4(cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = cli("toy", "train", "--device", "cuda", "--out", "r")
    assert r.code == ExitCode.DEVICE
    assert "no CUDA device" in r.stderr and "available: cpu" in r.stderr


def test_read_only_out_is_a_usage_error(cli, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    r = cli("toy", "train", "--out", str(blocker / "run"))
    assert r.code == ExitCode.USAGE
    assert "is not writable" in r.stderr
    # /proc refuses new folders even to root: a truly read-only place.
    r = cli("toy", "train", "--out", "/proc/mltk-run")
    assert r.code == ExitCode.USAGE
    assert "--out /proc/mltk-run is not writable" in r.stderr


def test_config_file_with_unknown_key_or_wrong_type(cli, tmp_path):
    bad_key = tmp_path / "k.toml"
    bad_key.write_text("stepz = 3\n")
    r = cli("toy", "train", "--config", str(bad_key), "--out", "r")
    assert r.code == ExitCode.USAGE
    assert "unknown key 'stepz'" in r.stderr and "steps" in r.stderr
    bad_type = tmp_path / "t.toml"
    bad_type.write_text('steps = "three"\n')
    r = cli("toy", "train", "--config", str(bad_type), "--out", "r")
    assert r.code == ExitCode.USAGE
    assert "steps = 'three' has the wrong type; expected int" in r.stderr
    broken = tmp_path / "b.toml"
    broken.write_text("steps = = 3\n")
    assert cli("toy", "train", "--config", str(broken), "--out", "r").code == ExitCode.USAGE
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfesteps = 3\n")
    r = cli("toy", "train", "--config", str(binary), "--out", "r")
    assert r.code == ExitCode.USAGE and "is not UTF-8 text" in r.stderr
    r = cli("toy", "train", "--config", str(tmp_path), "--out", "r")
    assert r.code == ExitCode.DATA and "is a folder" in r.stderr
    r = cli("toy", "train", "--seed", "-1", "--out", "r")
    assert r.code == ExitCode.USAGE and "--seed -1" in r.stderr


def test_config_file_values_apply_and_cli_wins(cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("steps = 4\nlr = 0.01\n")
    r = cli("toy", "train", "--config", str(cfg), "--out", "a", "--json")
    assert r.json()["steps"] == 4
    r = cli("toy", "train", "--config", str(cfg), "--steps", "2", "--out", "b", "--json")
    assert r.json()["steps"] == 2
    saved = json.loads((cli.cwd / "b" / "config.json").read_text())
    assert saved["config"]["lr"] == 0.01 and saved["plugin"] == "toy"


def test_missing_or_corrupt_checkpoint_folder_exits_5(cli):
    r = cli("toy", "eval", "nowhere")
    assert r.code == ExitCode.DATA and "does not exist" in r.stderr
    assert cli("toy", "train", "--steps", "2", "--out", "r").code == 0
    (cli.cwd / "r" / "checkpoint" / "tensors.safetensors").write_bytes(b"\x00garbage" * 10)
    r = cli("toy", "eval", "r")
    assert r.code == ExitCode.DATA and "is corrupt" in r.stderr
    (cli.cwd / "r" / "checkpoint" / "meta.json").unlink()
    r = cli("toy", "eval", "r")
    assert r.code == ExitCode.DATA and "has no meta.json" in r.stderr
