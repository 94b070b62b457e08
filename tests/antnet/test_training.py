"""Training: frozen stays frozen, saved models predict the same, self-paced weights, scores."""

from __future__ import annotations

import math

import pytest
import torch
from mltk_plugins.antnet import evaluation as E
from mltk_plugins.antnet import saved
from mltk_plugins.antnet import training as T
from mltk_plugins.antnet.encoders import HFEncoder

from .conftest import config


def _fit(cfg, data):
    torch.manual_seed(0)
    model = T.build(cfg, data["train"])
    T.fit(model, data["train"], data["dev"], cfg, device=torch.device("cpu"), log=lambda s: None)
    return model


def test_a_frozen_encoder_is_unchanged_by_training_and_the_heads_are_not(bert_folder, data):
    cfg = config(encoder=bert_folder, epochs=1)
    torch.manual_seed(0)
    model = T.build(cfg, data["train"])
    enc = {k: v.clone() for k, v in model.encoder.model.state_dict().items()}
    head = model.kind_head[0].weight.clone()
    T.fit(model, data["train"], data["dev"], cfg, device=torch.device("cpu"), log=lambda s: None)
    after = model.encoder.model.state_dict()
    assert all(torch.equal(enc[k], after[k]) for k in enc)
    assert not torch.equal(head, model.kind_head[0].weight)


def test_finetuning_moves_the_encoder(bert_folder, data):
    cfg = config(encoder=bert_folder, finetune=True, epochs=1, encoder_lr=1e-3)
    torch.manual_seed(0)
    model = T.build(cfg, data["train"])
    before = model.encoder.model.embeddings.word_embeddings.weight.clone()
    T.fit(model, data["train"], data["dev"], cfg, device=torch.device("cpu"), log=lambda s: None)
    assert not torch.equal(before, model.encoder.model.embeddings.word_embeddings.weight)


@pytest.mark.parametrize("encoder", ["bilstm", "bert"])
def test_a_saved_model_predicts_what_it_did_before_saving(encoder, bert_folder, data, tmp_path):
    cfg = config(encoder=bert_folder if encoder == "bert" else None, epochs=1)
    model = _fit(cfg, data)
    before = E.predict(model, data["test"])
    saved.save(model, tmp_path)
    loaded, meta = saved.load(tmp_path)
    after = E.predict(loaded, data["test"])
    assert [p.label for p in before] == [p.label for p in after]
    for p, q in zip(before, after):
        assert p.probabilities == pytest.approx(q.probabilities, abs=1e-5)
        assert p.option_probabilities == pytest.approx(q.option_probabilities, abs=1e-5)
    assert meta["encoder"]["kind"] == ("hf" if encoder == "bert" else "bilstm")
    if encoder == "bert":
        assert isinstance(loaded.encoder, HFEncoder)
        assert (tmp_path / "encoder" / "model.safetensors").is_file()


def test_training_learns_the_generated_set_far_beyond_its_majority_class():
    from mltk_plugins.antnet import generator as G

    data = G.generate({"train": 800, "dev": 100, "test": 200, "ood": 0})
    model = _fit(config(epochs=5, patience=5, hidden=64, embed=64, lstm=64), data)
    scores = E.score(data["test"], E.predict(model, data["test"]))
    labels = [e.label for e in data["test"]]
    majority = max(labels.count(x) for x in set(labels)) / len(labels)
    assert scores["accuracy"] > majority + 0.4


def test_self_paced_weights_follow_the_two_phase_schedule():
    loss = torch.tensor([0.1, 1.5, 4.0])
    early = T.self_paced_weights(loss, 0)  # tau = 1.5: easy examples weigh more
    assert early.tolist() == pytest.approx([1 / (1 + math.exp(-5 * (1.5 - x))) for x in loss])
    assert early[0] > early[1] > early[2]
    tau = 1.5 * 20 / 10  # epoch 10: the threshold has doubled
    assert T.self_paced_weights(loss, 10)[1] == pytest.approx(1 / (1 + math.exp(-5 * (tau - 1.5))))
    late = T.self_paced_weights(loss, 12)  # tau = 0.3: hard examples weigh more
    assert late[2] > late[1] > late[0]
    assert not T.self_paced_weights(loss.requires_grad_(), 0).requires_grad


def test_macro_f1_agrees_with_scikit_learn():
    from sklearn.metrics import f1_score

    truth = ["yes", "no", "no", "select", "none", "select", "uncertain", "yes"]
    guess = ["yes", "no", "yes", E.WRONG_SELECT, "none", "select", "none", "no"]
    present = sorted(set(truth))
    expected = f1_score(truth, guess, labels=present, average="macro")
    assert E.macro_f1(truth, guess, present) == pytest.approx(expected)


def test_a_select_with_wrong_options_is_a_miss_but_keeps_its_class(data):
    from mltk_plugins.antnet import labels as L

    examples = [e for e in data["test"] if e.label.kind == "select"][:2]
    wrong = [
        L.Label.select([i for i in range(len(e.options)) if i not in e.label.chosen][:1] or [0])
        for e in examples
    ]
    s = E.score(examples, [examples[0].label, wrong[1]])
    assert s["accuracy"] == 0.5
    assert s["confusion"]["select"]["select"] == 1
    assert s["confusion"]["select"][E.WRONG_SELECT] == 1
