"""Word-level tokenizers trained on a caption corpus, for the tiny towers of each model family.

A trained word-level vocabulary keeps the embedded models small (a few hundred tokens instead of
T5's 32k or CLIP's 49k) while the tokenizer stays a transformers fast tokenizer, so pipelines and
models call it as they call a released one. Each family gets its own special tokens and
post-processing: T5 appends ``</s>``; BERT wraps ``[CLS] ... [SEP]``; CLIP wraps
``<|startoftext|> ... <|endoftext|>``, and its end token must not have id 2 (transformers'
CLIP text tower then takes the highest id as the end of the text: the legacy rule), so the
specials are ordered to give it id 3, the id a CLIP config must name as ``eos_token_id``.
Tokens added later (``add_tokens``, e.g. location tokens ``<l5>``) are matched before the word
split, so they survive as single tokens and through save/load.
"""

from __future__ import annotations

FAMILIES = {
    "t5": {"specials": ["<pad>", "</s>", "<unk>"], "pad": "<pad>", "unk": "<unk>",
           "eos": "</s>", "template": "$A </s>"},
    "bert": {"specials": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "pad": "[PAD]",
             "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]",
             "template": "[CLS] $A [SEP]"},
    "clip": {"specials": ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"], "pad": "<pad>",
             "unk": "<unk>", "bos": "<|startoftext|>", "eos": "<|endoftext|>",
             "template": "<|startoftext|> $A <|endoftext|>"},
}  # fmt: skip


def train_tokenizer(sentences: list[str], family: str = "t5"):
    """A word-level tokenizer (lower-cased, whitespace and punctuation split) with the special
    tokens of ``family``, as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")
    spec = FAMILIES[family]
    tok = Tokenizer(models.WordLevel(unk_token=spec["unk"]))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=spec["specials"], min_frequency=1)
    tok.train_from_iterator(sorted(sentences), trainer=trainer)
    specials = [(t, tok.token_to_id(t)) for t in spec["specials"] if t in spec["template"]]
    tok.post_processor = processors.TemplateProcessing(
        single=spec["template"], special_tokens=specials
    )
    names = {"pad": "pad_token", "unk": "unk_token", "eos": "eos_token", "bos": "bos_token",
             "cls": "cls_token", "sep": "sep_token", "mask": "mask_token"}  # fmt: skip
    kwargs = {names[k]: v for k, v in spec.items() if k in names}
    if family == "clip":  # Stable Diffusion's pipeline pads every prompt to this length
        kwargs["model_max_length"] = 77
    return PreTrainedTokenizerFast(tokenizer_object=tok, padding_side="right", **kwargs)
