"""`mltk epic train|eval|check`: runs end to end, the shipped model, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mltk.cli import run
from tests.plugin_run import run_plugin

FAST = ["--pairs", "64", "--steps", "3", "--batch", "16", "--queue", "32", "--eval-size", "16"]
FAST += ["--width", "32", "--heads", "2", "--vision-layers", "1", "--text-layers", "1"]
FAST += ["--fusion-layers", "1", "--patch", "8", "--embed-dim", "16"]


def mltk(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return int(code), out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("epic") / "run"
    assert run_plugin("epic", "train", *FAST, "--out", str(folder), "--quiet") == 0
    return folder


def test_train_writes_a_model_its_scores_and_a_resumable_checkpoint(trained, capsys):
    from mltk_plugins.epic import model as M

    assert M.is_model(trained / "model")
    scores = json.loads((trained / "eval.json").read_text())
    for key in ("i2t_r@1", "t2i_r@10", "itm_hard", "reliance", "token_auc"):
        assert 0 <= scores[key] <= 1 or key == "reliance"
    assert scores["token_scorer"] == "head"  # epic trains a consistency head
    lines = (trained / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 3
    code, out, _ = mltk(capsys, "epic", "eval", str(trained), "--eval-size", "16", "--json")
    assert code == 0
    row = json.loads(out)["runs"][0]
    assert row["objective"] == "epic"
    for key in ("i2t_r@1", "itm_hard", "token_auc"):
        assert row[key] == pytest.approx(scores[key], abs=1e-3)  # the same model, re-read


def test_resume_finishes_the_steps_of_an_interrupted_run(trained, tmp_path, capsys):
    import shutil

    folder = tmp_path / "again"
    shutil.copytree(trained, folder)
    code, _, err = mltk(capsys, "epic", "train", "--resume", str(folder), "--steps", "5")
    assert code == 0, err
    steps = [json.loads(x)["step"] for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 5


def test_check_scores_every_word_and_aligns_with_the_tokens(trained, capsys):
    caption = "a blue circle in the top left"
    code, out, _ = mltk(
        capsys, "epic", "check", "world:3", caption, "--model", str(trained), "--json"
    )
    assert code == 0
    res = json.loads(out)
    assert res["tokens"]["token"] == caption.split()
    assert all(0 <= p <= 1 for p in res["tokens"]["consistent"])
    assert 0 <= res["itm"] <= 1


def test_the_shipped_model_checks_a_caption_without_a_run(capsys):
    code, out, _ = mltk(capsys, "epic", "check", "world:0", "a red circle", "--json")
    assert code == 0
    assert json.loads(out)["tokens"]["token"] == ["a", "red", "circle"]


def test_the_shipped_model_finds_the_wrong_colour_word():
    """On the counterfactual split: a caption with its colour word changed gets a lower
    consistency at that word than the true caption does."""
    from mltk_plugins.epic import commands as C
    from mltk_plugins.epic import data as D
    from mltk_plugins.epic import evaluation as E
    from mltk_plugins.epic import training as T

    model, tokenizer, meta = C.Source(C.SHIPPED).load()
    test = D.world_test(60)
    negatives = [n for n in D.hard_negatives(test.scenes, 0) if n.attribute == "colour"]
    i_states, _ = E.image_states(model, test.images)
    idx = torch.tensor([n.index for n in negatives])
    wins = []
    for texts in ([n.positive for n in negatives], [n.negative for n in negatives]):
        enc = T.tokens(tokenizer, texts, 30)
        bad = E.token_scores(
            model,
            tokenizer,
            enc["input_ids"],
            enc["attention_mask"],
            i_states[idx],
            C.scorer_of(meta),
        )
        wins.append((bad, enc["input_ids"]))
    hits = []
    for i in range(len(negatives)):
        pos, neg = wins[0][1][i].tolist(), wins[1][1][i].tolist()
        j = E._changed(pos, neg)[0]
        hits.append(float(wins[1][0][i, j]) > float(wins[0][0][i, j]))
    assert np.mean(hits) >= 0.8


def test_saliency_ranks_attribute_words_above_function_words():
    """On the shipped model, in >= 80% of captions the most salient attribute word outranks
    every "a" and "the"."""
    from mltk_plugins.epic import commands as C
    from mltk_plugins.epic import data as D
    from mltk_plugins.epic import objectives as O
    from mltk_plugins.epic import training as T

    model, tokenizer, meta = C.Source(C.SHIPPED).load()
    test = D.world_test(100)
    captions = [cs[0] for cs in test.captions]
    enc = T.tokens(tokenizer, captions, 30)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    img, _ = model.encode_image(model.pixels(test.images), momentum=True)
    sal = O.saliency(model, ids, mask, img, O.Tokens.of(tokenizer), meta["saliency"])
    attribute = {
        tokenizer.convert_tokens_to_ids(w) for ws in D.ATTRIBUTE_WORDS.values() for w in ws
    }
    function = {tokenizer.convert_tokens_to_ids(w) for w in ("a", "the")}
    ok = []
    for i in range(len(captions)):
        a = [float(sal[i, j]) for j in range(ids.shape[1]) if int(ids[i, j]) in attribute]
        f = [float(sal[i, j]) for j in range(ids.shape[1]) if int(ids[i, j]) in function]
        if a and f:
            ok.append(max(a) > max(f))
    assert len(ok) > 50 and np.mean(ok) >= 0.8


def _jsonl(tmp_path, rows):
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "black.png")
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize(
    "rows,message",
    [
        ([{"image": "missing.png", "caption": "a cat"}], "does not exist"),
        ([{"image": "black.png", "caption": "  "}], "empty"),
        ([{"image": "black.png"}], '"caption"'),
    ],
)
def test_bad_pairs_files_stop_with_one_sentence(tmp_path, capsys, rows, message):
    path = _jsonl(tmp_path, rows)
    code, _, err = mltk(
        capsys, "epic", "train", "--data", str(path), *FAST, "--out", str(tmp_path / "r")
    )
    assert code == 5
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("ratio", ["0", "1", "1.5", "-0.1"])
def test_mask_ratio_outside_zero_one_is_a_usage_error(tmp_path, capsys, ratio):
    code, _, err = mltk(
        capsys, "epic", "train", "--mask-ratio", ratio, "--out", str(tmp_path / "r")
    )
    assert code == 2 and "--mask-ratio" in err


def test_check_bad_inputs(tmp_path, capsys):
    code, _, err = mltk(capsys, "epic", "check", "world:0", "   ")
    assert code == 2 and "empty" in err
    code, _, err = mltk(capsys, "epic", "check", str(tmp_path / "nope.png"), "a cat")
    assert code == 5 and "does not exist" in err
    code, _, err = mltk(capsys, "epic", "check", "world:x", "a cat")
    assert code == 2
    code, _, err = mltk(capsys, "epic", "check", "world:0", "a cat", "--model", str(tmp_path))
    assert code == 5 and "not an epic run" in err


def test_own_pairs_train_with_a_held_out_share(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        colour = ["red", "blue"][i % 2]
        img = np.zeros((32, 32, 3), np.uint8)
        img[..., 0 if colour == "red" else 2] = 200 + rng.integers(0, 50)
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        rows.append({"image": f"{i}.png", "caption": [f"a {colour} picture", f"{colour} light"]})
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, out, err = mltk(
        capsys,
        "epic",
        "train",
        "--data",
        str(tmp_path / "pairs.jsonl"),
        *FAST[6:],
        "--steps",
        "2",
        "--batch",
        "8",
        "--queue",
        "16",
        "--out",
        str(tmp_path / "run"),
        "--json",
    )
    assert code == 0, err
    res = json.loads(out)
    assert "i2t_r@1" in res and "itm_hard" not in res  # no scenes: no world-only measures


def test_predict_scores_every_caption_of_a_pairs_file(trained, tmp_path, capsys):
    rows = [
        {"image": "black.png", "caption": ["a red circle", "two blue squares in a row"]},
        {"image": "black.png", "caption": "a green triangle"},
    ]
    path = _jsonl(tmp_path, rows)
    code, out, err = mltk(capsys, "epic", "predict", str(trained), str(path), "--json")
    assert code == 0, err
    pred = json.loads(out)["predictions"]
    assert pred["pair"] == [1, 1, 2]
    assert pred["caption"] == ["a red circle", "two blue squares in a row", "a green triangle"]
    assert all(0 <= p <= 1 for p in pred["itm"])
    code, out, _ = mltk(
        capsys, "epic", "predict", str(trained), str(path), "--threshold", "0.9999", "--json"
    )
    flagged = json.loads(out)["predictions"]["inconsistent"]
    assert all(f != "-" for f in flagged)  # every word falls under a threshold near one
