"""`mltk trace rules|search|eval|predict`: the output contract, round trips and exit codes."""

from __future__ import annotations

import json

import pytest

from mltk.cli import run
from mltk.errors import ExitCode
from tests.plugin_run import run_plugin


def mltk(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return int(code), out, err


@pytest.fixture(scope="module")
def kinship_run(tmp_path_factory):
    """One short rules run on kinship, shared by the read-only tests below."""
    folder = tmp_path_factory.mktemp("trace") / "rules"
    args = ("--epochs", "2", "--length", "2", "--out", str(folder), "--quiet")
    assert run_plugin("trace", "rules", *args) == 0
    return folder


def test_rules_writes_rules_with_statistics_and_neural_lp_predictions(capsys, kinship_run):
    from mltk_plugins.trace import kg as K
    from mltk_plugins.trace import rules as R

    lines = (kinship_run / "rules.tsv").read_text().splitlines()
    assert lines[0].split("\t") == [
        "head",
        "probability",
        "support",
        "confidence",
        "length",
        "rule",
    ]
    kg = K.load("kinship")
    r = {n: i for i, n in enumerate(kg.relations)}
    for line in lines[1:40]:
        head, p, support, conf, length, rule = line.split("\t")
        assert 0 < float(p) <= 1 and int(length) <= 2
        body = rule.split(" <- ")[1]
        if body.startswith("equal"):
            continue
        ops = []  # read the body back into operators: r(u, v) forward, r(v, u) inverse
        names = ["x"] + [f"z{i}" for i in range(1, int(length))] + ["y"]
        for i, atom in enumerate(body.split("), ")):
            rel, args = atom.rstrip(")").split("(")
            u, v = args.split(", ")
            forward = (u, v) == (names[i], names[i + 1])
            ops.append(r[rel] if forward else r[rel] + kg.n_relations)
        h = r[head] if not head.startswith("inv_") else r[head[4:]] + kg.n_relations
        s, c = R.support_confidence(kg, h, ops)
        assert (s, round(c, 6)) == (int(support), float(conf))
    predictions = (kinship_run / "test_predictions.txt").read_text().splitlines()
    assert len(predictions) == 2 * 1100
    assert all(p.split(",")[1] == p.split(",")[-1] for p in predictions)


def test_rules_prints_metrics_on_stdout_and_progress_on_stderr(capsys, tmp_path):
    code, out, err = mltk(
        capsys,
        "trace",
        "rules",
        "--data",
        "umls",
        "--epochs",
        "1",
        "--length",
        "1",
        "--out",
        str(tmp_path / "r"),
        "--json",
    )
    assert code == 0, err
    res = json.loads(out)
    assert res["data"] == "umls" and 0 < res["mrr"] <= 1 and res["hits@1"] <= res["hits@10"]
    assert {d["direction"] for d in res["directions"]} == {"(h, r, ?)", "(?, r, t)"}
    assert "epoch 1/1" in err and "epoch 1/1" not in out
    config = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert config["data"] == "umls" and config["epochs"] == 1 and config["lr"] == 0.05


def test_eval_scores_the_run_again_with_the_same_numbers(capsys, kinship_run):
    code, out, err = mltk(capsys, "trace", "eval", str(kinship_run), "--json")
    assert code == 0, err
    res = json.loads(out)
    row = res["runs"][0]
    from mltk_plugins.trace.commands import load_kg_run, score_predictions

    from mltk.runs import RunDir

    kg = load_kg_run(RunDir.open(kinship_run, plugin="trace"))[0]
    from_file = score_predictions(kg, kinship_run / "test_predictions.txt")
    assert row["mrr_strict"] == pytest.approx(from_file["mrr"], abs=1e-12)
    relations = res["relations"]
    asked = 2 * len(set(kg.splits["test"][:, 1].tolist()))  # each relation in both directions
    assert len(relations) == asked and sum(r["queries"] for r in relations) == 2200
    code, out, _ = mltk(
        capsys,
        "trace",
        "eval",
        "--predictions",
        str(kinship_run / "test_predictions.txt"),
        "--data",
        "kinship",
        "--json",
    )
    assert code == 0 and json.loads(out)["mrr"] == pytest.approx(from_file["mrr"])


def test_predict_answers_queries_with_the_rules_that_fired(capsys, kinship_run, tmp_path):
    queries = tmp_path / "q.csv"
    queries.write_text("entity,relation\nPerson59,Term15\nPerson93,inv_Term15\n")
    out_csv = tmp_path / "answers.csv"
    code, out, err = mltk(
        capsys,
        "trace",
        "predict",
        str(kinship_run),
        "--queries",
        str(queries),
        "--top",
        "5",
        "--output",
        str(out_csv),
        "--json",
    )
    assert code == 0, err
    rows = json.loads(out)["answers"]
    assert [r["rank"] for r in rows if r["query"] == "Term15(Person59, ?)"] == [1, 2, 3, 4, 5]
    scores = [r["score"] for r in rows if r["query"] == "Term15(Person59, ?)"]
    assert scores == sorted(scores, reverse=True)
    assert all(r["fired"] > 0 and "(x, " in r["body"] and 0 < r["p"] <= 1 for r in rows)
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "query,rank,answer,score,known,fired,rules"
    assert rows[0]["body"] in lines[1]  # the CSV holds the rules that fired, whole
    # (Person59, Term15, Person93) is a test triple: not in the rules' graph
    assert not any(r["known"] for r in rows if r["answer"] == "Person93")


@pytest.mark.parametrize(
    "content, words",
    [
        ("entity,relation\nPerson59,Term99\n", "relation 'Term99'"),
        ("entity,relation\nNobody,Term15\n", "entity 'Nobody'"),
        ("entity,relation\nPerson59,Term15,Person1\n", "2 fields"),
        ("entity,relation\n", "no queries"),
    ],
)
def test_predict_refuses_bad_queries_with_exit_5(capsys, kinship_run, tmp_path, content, words):
    queries = tmp_path / "q.csv"
    queries.write_text(content)
    code, out, err = mltk(capsys, "trace", "predict", str(kinship_run), "--queries", str(queries))
    assert code == ExitCode.DATA and words in err and "Traceback" not in err and out == ""


def _folder(tmp_path, *, train="a\tr\tb\n", test="b\tr\tc\n", valid="a\tr\tc\n"):
    folder = tmp_path / "kg"
    folder.mkdir()
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{name}.txt").write_text(text)
    return folder


@pytest.mark.parametrize(
    "files, words",
    [
        ({"train": "a\tr\n"}, "3 tab-separated fields"),
        ({"test": ""}, "test split is empty"),
        ({"valid": ""}, "valid split is empty"),
    ],
)
def test_bad_knowledge_graphs_exit_5_with_one_sentence(capsys, tmp_path, files, words):
    folder = _folder(tmp_path, **files)
    code, out, err = mltk(
        capsys,
        "trace",
        "rules",
        "--data",
        str(folder),
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == ExitCode.DATA, err
    assert words in err and "Traceback" not in err and not (tmp_path / "r").exists()


def test_an_unknown_relation_in_a_split_exits_5(capsys, tmp_path):
    folder = _folder(tmp_path)
    (folder / "relations.txt").write_text("r\n")
    (folder / "test.txt").write_text("b\ts\tc\n")
    code, _, err = mltk(capsys, "trace", "rules", "--data", str(folder), "--epochs", "1")
    assert code == ExitCode.DATA and "relation 's'" in err


@pytest.mark.parametrize(
    "args, words",
    [
        (["--length", "0"], "--length"),
        (["--data", "x.tsv", "--split", "0.5,0.5"], "--split"),
        (["--rank", "0"], "--rank"),
    ],
)
def test_bad_options_exit_2(capsys, tmp_path, args, words):
    if "x.tsv" in args:
        (tmp_path / "x.tsv").write_text("a\tr\tb\n")
        args = [str(tmp_path / "x.tsv") if a == "x.tsv" else a for a in args]
    code, _, err = mltk(capsys, "trace", "rules", *args, "--out", str(tmp_path / "r"))
    assert code == ExitCode.USAGE and words in err and "Traceback" not in err


def test_one_triples_file_is_split_by_fractions(capsys, tmp_path):
    lines = [f"p{i}\tknows\tp{(i * 7 + 3) % 40}" for i in range(40)]
    lines += [f"p{i}\tlikes\tp{(i * 7 + 3) % 40}" for i in range(40)]
    (tmp_path / "t.tsv").write_text("\n".join(lines) + "\n")
    code, out, err = mltk(
        capsys,
        "trace",
        "rules",
        "--data",
        str(tmp_path / "t.tsv"),
        "--split",
        "0.8,0.1,0.1",
        "--epochs",
        "1",
        "--length",
        "1",
        "--out",
        str(tmp_path / "r"),
        "--json",
    )
    assert code == 0, err
    res = json.loads(out)
    assert res["directions"][0]["queries"] == 8  # 10% of 80 triples, each direction


def test_search_task_nas_refuses_length_and_hin_refuses_the_stochastic_objective(capsys):
    code, _, err = mltk(capsys, "trace", "search", "--task", "nas", "--length", "3")
    assert code == ExitCode.USAGE and "--length" in err
    code, _, err = mltk(capsys, "trace", "search", "--task", "hin", "--objective", "stochastic")
    assert code == ExitCode.USAGE and "stochastic" in err


def test_search_hin_finds_the_planted_meta_path_and_eval_scores_it_again(capsys, tmp_path):
    code, out, err = mltk(
        capsys, "trace", "search", "--task", "hin", "--out", str(tmp_path / "h"), "--json"
    )
    assert code == 0, err
    res = json.loads(out)
    assert res["recovered"] is True and res["macro_f1"] > 0.7
    assert res["meta_paths"][0]["path"].count("->") == 4
    code, out, err = mltk(capsys, "trace", "eval", str(tmp_path / "h"), "--json")
    assert code == 0, err
    assert json.loads(out)["runs"][0]["macro_f1"] == pytest.approx(res["macro_f1"], abs=1e-12)


def test_search_nas_derives_a_cell_retrains_it_and_eval_reads_it(capsys, tmp_path):
    code, out, err = mltk(
        capsys,
        "trace",
        "search",
        "--task",
        "nas",
        "--epochs",
        "1",
        "--retrain-epochs",
        "1",
        "--out",
        str(tmp_path / "n"),
        "--json",
    )
    assert code == 0, err
    res = json.loads(out)
    assert res["cell"].startswith("n2: ") and 0.1 < res["test_accuracy"] <= 1
    assert 0 < res["probability"] <= 1
    code, out, err = mltk(capsys, "trace", "eval", str(tmp_path / "n"), "--json")
    assert code == 0 and json.loads(out)["runs"][0]["accuracy"] == res["test_accuracy"]
