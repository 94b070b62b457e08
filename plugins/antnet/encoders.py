"""Token encoders: texts in, contextual token states out, with each token's character span.

- `BiLSTMEncoder`: a word-level (or, for Chinese, character-level) BiLSTM trained from scratch,
  the paper's encoder (128 units each way). Always available, any language.
- `HFEncoder`: any local BERT-style Hugging Face folder (BERT, RoBERTa, MiniLM, ...), frozen
  or fine-tuned. Frozen, each distinct text is encoded once and kept (the same questions and
  answers come back every epoch).

Both answer `encode(texts) -> (states (N, L, D), mask (N, L), offsets [[(start, end)]],
embeddings (N, L, E))`: the contextual states, which tokens are text (special tokens carry mask
0 and offset (0, 0)), where each token sits, and the input embeddings (context-free: the same
word has the same vector wherever it stands, which the option-match features use).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from mltk.errors import DataError

PAD, UNK = "<pad>", "<unk>"
WORD = re.compile(r"\w+|[^\w\s]")
ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "mpnet", "deberta-v2")


class Vocabulary:
    """Lower-cased words (mode "word") or single characters (mode "char"), from training text."""

    def __init__(self, tokens: list[str], mode: str = "word"):
        self.mode = mode
        self.tokens = [PAD, UNK] + [t for t in tokens if t not in (PAD, UNK)]
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts, mode: str = "word", min_count: int = 1) -> Vocabulary:
        counts = Counter(t for text in texts for t, _ in cls.split(text, mode))
        return cls(sorted(t for t, c in counts.items() if c >= min_count), mode)

    @staticmethod
    def split(text: str, mode: str) -> list[tuple[str, tuple[int, int]]]:
        if mode == "char":
            return [(c.lower(), (i, i + 1)) for i, c in enumerate(text) if not c.isspace()]
        return [(m.group().lower(), m.span()) for m in WORD.finditer(text)]

    def __len__(self) -> int:
        return len(self.tokens)


class BiLSTMEncoder(nn.Module):
    def __init__(self, vocab: Vocabulary, embed: int = 128, hidden: int = 128, unk_drop=0.05):
        super().__init__()
        self.vocab, self.unk_drop = vocab, unk_drop
        self.embed = nn.Embedding(len(vocab), embed, padding_idx=0)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)
        self.dim = 2 * hidden
        self.sep = "|"
        self.spec = {"kind": "bilstm", "embed": embed, "hidden": hidden, "mode": vocab.mode}

    @property
    def device(self):
        return self.embed.weight.device

    def encode(self, texts: list[str]):
        split = [Vocabulary.split(t, self.vocab.mode) or [(UNK, (0, 0))] for t in texts]
        n, length = len(texts), max(len(s) for s in split)
        ids = torch.zeros(n, length, dtype=torch.long)
        offsets = []
        for i, toks in enumerate(split):
            ids[i, : len(toks)] = torch.tensor([self.vocab.index.get(t, 1) for t, _ in toks])
            offsets.append([span for _, span in toks])
        ids = ids.to(self.device)
        mask = ids > 0
        if self.training and self.unk_drop > 0:  # teaches the model what an unseen word is
            ids = ids.masked_fill(
                mask & (torch.rand(ids.shape, device=ids.device) < self.unk_drop), 1
            )
        lengths = mask.sum(1).clamp(min=1).cpu()
        embeds = self.embed(ids)
        packed = nn.utils.rnn.pack_padded_sequence(
            embeds, lengths, batch_first=True, enforce_sorted=False
        )
        states, _ = self.lstm(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=length)
        return states, mask, offsets, embeds  # (N, L, 2H), (N, L), N lists, (N, L, E)


class HFEncoder(nn.Module):
    def __init__(self, model, tokenizer, finetune: bool = False, max_length: int = 64):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self.finetune, self.max_length = finetune, max_length
        self.dim = model.config.hidden_size
        self.sep = f" {tokenizer.sep_token} " if tokenizer.sep_token else " | "
        self.spec = {"kind": "hf", "finetune": finetune, "max_length": max_length}
        self._cache: dict[str, tuple] = {}
        self.set_finetune(finetune)

    def set_finetune(self, finetune: bool) -> None:
        """Train the encoder's weights (or freeze them, and encode each text once)."""
        self.finetune = finetune
        self.spec = {**self.spec, "finetune": finetune}
        self.model.requires_grad_(finetune)
        self._cache.clear()

    @classmethod
    def load(cls, folder: Path, finetune: bool = False, max_length: int = 64) -> HFEncoder:
        from transformers import AutoModel, AutoTokenizer

        from mltk.vl import check_folder, quiet_transformers

        quiet_transformers()
        check_folder(folder, "--encoder", ENCODER_TYPES, "BERT-style", tokenizer=True)
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModel.from_pretrained(folder, use_safetensors=True, add_pooling_layer=False)
        except (OSError, ValueError, TypeError) as e:
            raise DataError(f"--encoder {folder} cannot be loaded: {e}") from None
        if not tokenizer.is_fast:
            raise DataError(
                f"--encoder {folder}: its tokenizer has no fast version (needed for "
                "character offsets)"
            )
        return cls(model, tokenizer, finetune, max_length)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.train(mode and self.finetune)  # a frozen encoder never drops out
        return self

    def _run(self, texts: list[str]):
        enc = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        ids, att = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            states = self.model(input_ids=ids, attention_mask=att).last_hidden_state
            embeds = self.model.get_input_embeddings()(ids)
        mask = att.bool() & ~enc["special_tokens_mask"].bool().to(self.device)
        offsets = [[tuple(map(int, o)) for o in row] for row in enc["offset_mapping"]]
        return states, mask, offsets, embeds

    def encode(self, texts: list[str]):
        if self.finetune:
            return self._run(texts)
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for i in range(0, len(todo), 128):
            chunk = todo[i : i + 128]
            states, mask, offsets, embeds = self._run(chunk)
            for j, text in enumerate(chunk):
                n = int(mask[j].nonzero().max()) + 2 if mask[j].any() else 1
                self._cache[text] = (
                    states[j, :n].half().cpu(),
                    mask[j, :n].cpu(),
                    offsets[j][:n],
                    embeds[j, :n].half().cpu(),
                )
        rows = [self._cache[t] for t in texts]
        length = max(r[0].shape[0] for r in rows)
        states = torch.zeros(len(rows), length, self.dim)
        embeds = torch.zeros(len(rows), length, rows[0][3].shape[-1])
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, (s, m, _, x) in enumerate(rows):
            states[i, : s.shape[0]], mask[i, : m.shape[0]] = s.float(), m
            embeds[i, : x.shape[0]] = x.float()
        offsets = [r[2] + [(0, 0)] * (length - len(r[2])) for r in rows]
        dev = self.device
        return states.to(dev), mask.to(dev), offsets, embeds.to(dev)
