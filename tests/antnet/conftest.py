"""One thread, only the antnet plugin, a private cache; a tiny random BERT-style folder."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("MLTK_LOAD_PLUGINS", "antnet")
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MLTK_DEBUG", raising=False)


@pytest.fixture(scope="session")
def data():
    from mltk_plugins.antnet import generator as G

    return G.generate({"train": 300, "dev": 60, "test": 60, "ood": 60})


@pytest.fixture(scope="session")
def bert_folder(tmp_path_factory, data):
    """A 2-layer, 32-wide random BertModel with a word-level tokenizer over the generated
    text, saved as a Hugging Face folder (safetensors)."""
    from transformers import BertConfig, BertModel

    from mltk.vl.tokenizers import train_tokenizer

    texts = [t for split in data.values() for e in split for t in (e.question, e.answer)]
    texts += [o for split in data.values() for e in split for o in e.options]
    tokenizer = train_tokenizer(texts, "bert")
    folder = tmp_path_factory.mktemp("bert") / "tiny-bert"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def config(**kw):
    from mltk_plugins.antnet.config import TrainConfig

    fast = dict(epochs=2, patience=2, hidden=16, embed=16, lstm=16, batch=32, train_size=300)
    return TrainConfig(**{**fast, **kw})
