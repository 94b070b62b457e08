"""`mltk antnet answer|train|eval|predict`: end to end, output contract, exit codes."""

from __future__ import annotations

import json

import pytest
import torch

from mltk.cli import run
from tests.plugin_run import run_plugin

FAST = [
    "--preset",
    "tiny",
    "--train-size",
    "300",
    "--epochs",
    "2",
    "--hidden",
    "16",
    "--embed",
    "16",
    "--lstm",
    "16",
]


def mltk(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return int(code), out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("antnet") / "run"
    assert run_plugin("antnet", "train", *FAST, "--out", str(folder), "--quiet") == 0
    return folder


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


REPLIES = [
    {"question": "Tea or coffee?", "options": ["tea", "coffee"], "answer": "the second one"},
    {"question": "Shall I book the window seat?", "answer": "I'd rather not", "label": "no"},
]


def test_train_writes_a_model_scores_metrics_and_a_confusion_plot(trained, capsys):
    from mltk_plugins.antnet import saved

    assert saved.is_model(trained / "model")
    scores = json.loads((trained / "eval.json").read_text())["scores"]
    assert set(scores) == {"test", "ood"}
    assert (trained / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    lines = [json.loads(x) for x in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    code, out, _ = mltk(capsys, "antnet", "eval", str(trained), "--json", "--no-plot")
    assert code == 0
    rows = {r["split"]: r for r in json.loads(out)["runs"]}
    for split in ("test", "ood"):  # the same model, re-read, scores the same
        assert rows[split]["accuracy"] == pytest.approx(scores[split]["accuracy"])
        assert rows[split]["n"] == 1000


def test_eval_on_a_labelled_file_counts_its_phenomena(trained, capsys, tmp_path):
    rows = [dict(r, label=r.get("label", ["coffee"]), phenomenon="mine") for r in REPLIES]
    code, out, _ = mltk(
        capsys,
        "antnet",
        "eval",
        str(trained),
        "--data",
        str(_jsonl(tmp_path / "l.jsonl", rows)),
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["runs"][0]["split"] == "data" and result["runs"][0]["n"] == 2
    assert [p["phenomenon"] for p in result["phenomena"]] == ["mine"]
    from mltk_plugins.antnet import labels as L

    rows = [r for r in result["confusion"] if r["split"] == "data"]
    assert sum(n for r in rows for n in r["predicted"].values()) == 2
    assert set().union(*(r["predicted"] for r in rows)) <= {*L.KINDS, "select (wrong options)"}
    assert {r["true"] for r in rows} == {"select", "no"}


def test_predict_labels_a_file_and_writes_jsonl(trained, capsys, tmp_path):
    src = _jsonl(tmp_path / "r.jsonl", REPLIES)
    out_file = tmp_path / "labelled.jsonl"
    code, out, err = mltk(
        capsys, "antnet", "predict", str(trained), str(src), "--output", str(out_file), "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["labelled"] == 1  # one reply carried a label
    written = [json.loads(x) for x in out_file.read_text().splitlines()]
    assert [w["answer"] for w in written] == [r["answer"] for r in REPLIES]
    first = result["answers"][0]
    assert set(first["probabilities"]) == {"uncertain", "none", "select"}
    assert set(first["option_probabilities"]) == {"tea", "coffee"}
    assert [t for t, _ in first["relevant"]] == ["the", "second", "one"]  # the top 3 of 3
    assert [t for t, _ in first["skeleton"]] and all(0 <= w <= 1 for _, w in first["skeleton"])
    assert result["answers"][1]["label"] in ("yes", "no", "uncertain")


def test_answer_labels_one_triple_from_the_command_line(trained, capsys):
    code, out, err = mltk(
        capsys,
        "antnet",
        "answer",
        str(trained),
        "--question",
        "Tea or coffee?",
        "--options",
        "tea,coffee",
        "--answer",
        "coffee",
    )
    assert code == 0, err
    assert "Tea or coffee?" in out and "confidence" in out
    assert "labelling 1 answer (command line)" in err


def test_answer_without_a_run_trains_first_and_labels_the_demo(capsys, tmp_path):
    out_dir = tmp_path / "first"
    code, out, err = mltk(capsys, "antnet", "answer", *FAST, "--out", str(out_dir), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["run"] == str(out_dir)
    assert result["labelled"] == len(result["answers"]) == 8
    assert (out_dir / "model" / "antnet.json").is_file()
    assert "no RUN given: training a model first" in err


def test_a_bert_style_folder_trains_frozen_and_loads_back(bert_folder, capsys, tmp_path):
    out_dir = tmp_path / "bert-run"
    code, out, err = mltk(
        capsys,
        "antnet",
        "train",
        *FAST,
        "--encoder",
        str(bert_folder),
        "--out",
        str(out_dir),
        "--json",
        "--epochs",
        "1",
    )
    assert code == 0, err
    assert json.loads(out)["ood_accuracy"] >= 0
    assert (out_dir / "model" / "encoder" / "config.json").is_file()
    code, out, err = mltk(capsys, "antnet", "eval", str(out_dir), "--json", "--no-plot")
    assert code == 0, err


@pytest.mark.parametrize(
    "row, code, message",
    [
        (
            {
                "question": "Tea or coffee?",
                "options": ["tea", "coffee"],
                "answer": "milk",
                "label": "milk",
            },
            5,
            "label 'milk' is not one of the options",
        ),
        (
            {"question": "Tea?", "options": [], "answer": "", "label": "yes"},
            5,
            "the answer is empty",
        ),
    ],
)
def test_bad_rows_stop_with_one_sentence_and_their_exit_code(capsys, tmp_path, row, code, message):
    data = _jsonl(tmp_path / "d.jsonl", [row] * 30)
    got, out, err = mltk(capsys, "antnet", "train", *FAST, "--data", str(data))
    assert got == code
    assert message in err and "Traceback" not in err and out == ""


def test_a_line_that_is_not_an_object_is_refused(capsys, trained, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(REPLIES[0]) + "\n[1, 2]\n")
    code, _, err = mltk(capsys, "antnet", "predict", str(trained), str(bad))
    assert code == 5 and "bad.jsonl line 2 is not a JSON object" in err


def test_an_encoder_that_is_not_a_bert_style_folder_is_refused(capsys, tmp_path):
    folder = tmp_path / "gpt"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    code, _, err = mltk(capsys, "antnet", "train", *FAST, "--encoder", str(folder))
    assert code == 5 and "is not a BERT-style folder" in err and "'gpt2'" in err
    code, _, err = mltk(capsys, "antnet", "train", *FAST, "--encoder", str(tmp_path))
    assert code == 5 and "no readable config.json" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--answer", ""], "--answer is empty"),
        (["--answer", "coffee"], "--question and --answer go together"),
        (["--question", "Tea?", "--answer", " "], "--answer is empty"),
        (["--finetune"], "--finetune needs --encoder"),
        (["--architecture", "concat", "--no-skeleton"], "AntNet's modules"),
    ],
)
def test_answer_options_that_contradict_each_other_are_usage_errors(capsys, args, message):
    code, _, err = mltk(capsys, "antnet", "answer", *FAST, *args)
    assert code == 2 and message in err


def test_a_folder_that_is_not_a_run_is_refused(capsys, tmp_path):
    code, _, err = mltk(capsys, "antnet", "eval", str(tmp_path))
    assert code == 5 and "is not an antnet run or model folder" in err


def test_init_continues_a_run_and_finetune_unfreezes_its_encoder(bert_folder, capsys, tmp_path):
    from mltk_plugins.antnet import saved

    frozen, tuned = tmp_path / "frozen", tmp_path / "tuned"
    args = [*FAST, "--epochs", "1", "--quiet"]
    code, _, err = mltk(
        capsys, "antnet", "train", *args, "--encoder", str(bert_folder), "--out", str(frozen)
    )
    assert code == 0, err
    code, _, err = mltk(
        capsys,
        "antnet",
        "train",
        *args,
        "--init",
        str(frozen),
        "--finetune",
        "--encoder-lr",
        "1e-3",
        "--hops",
        "2",
        "--out",
        str(tuned),
    )
    assert code == 0, err
    a, meta = saved.load(frozen / "model")
    b, _ = saved.load(tuned / "model")
    assert b.settings == a.settings and meta["settings"]["hops"] == 3  # the run's own hops
    words = "embeddings.word_embeddings.weight"
    assert not torch.equal(a.encoder.model.state_dict()[words], b.encoder.model.state_dict()[words])
    assert "keeps its own --hops" in err


def test_init_with_a_bilstm_takes_no_finetune(trained, capsys):
    code, _, err = mltk(capsys, "antnet", "train", *FAST, "--init", str(trained), "--finetune")
    assert code == 2 and "has a BiLSTM, which always trains" in err


def test_resume_goes_on_after_the_last_whole_epoch_as_if_never_stopped(capsys, tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    code, out, err = mltk(capsys, "antnet", "train", *FAST, "--out", str(straight), "--json")
    assert code == 0, err
    whole = json.loads(out)
    code, _, err = mltk(capsys, "antnet", "train", *FAST, "--epochs", "1", "--out", str(stopped))
    assert code == 0, err
    code, out, err = mltk(
        capsys, "antnet", "train", "--resume", str(stopped), "--epochs", "2", "--json"
    )
    assert code == 0, err
    assert "resumed from step 1" in err
    resumed = json.loads(out)
    for key in ("epochs", "best_epoch", "test_accuracy", "ood_accuracy", "dev_macro_f1"):
        assert resumed[key] == pytest.approx(whole[key]), key
    lines = [json.loads(x) for x in (stopped / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]


def test_the_character_mode_trains_on_chinese_replies(capsys, tmp_path):
    rows = [
        {
            "question": "喝茶还是咖啡？",
            "options": ["茶", "咖啡"],
            "answer": "咖啡吧",
            "label": "咖啡",
        },
        {
            "question": "喝茶还是咖啡？",
            "options": ["茶", "咖啡"],
            "answer": "茶，谢谢",
            "label": "茶",
        },
        {"question": "要帮您订靠窗的座位吗？", "answer": "不用了", "label": "no"},
        {"question": "要帮您订靠窗的座位吗？", "answer": "好的", "label": "yes"},
    ]
    data = _jsonl(tmp_path / "zh.jsonl", rows * 10)
    out_dir = tmp_path / "zh"
    code, _, err = mltk(
        capsys,
        "antnet",
        "train",
        *FAST,
        "--data",
        str(data),
        "--tokens",
        "char",
        "--out",
        str(out_dir),
    )
    assert code == 0, err
    meta = json.loads((out_dir / "model" / "antnet.json").read_text())
    assert meta["encoder"]["mode"] == "char" and "咖" in meta["vocabulary"]
    code, out, err = mltk(capsys, "antnet", "predict", str(out_dir), str(data), "--json")
    assert code == 0, err
    assert json.loads(out)["answers"][2]["relevant"][0][0] in "不用了"
