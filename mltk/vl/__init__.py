"""Shared image-text pieces on transformers (extra ``vl``: transformers, tokenizers, pillow).

- ``tokenizers``: word-level tokenizers trained on a caption corpus, with the special tokens of
  a model family (T5, BERT, CLIP);
- ``towers``: configs of tiny transformers towers (``CLIPConfig``, ``ViTConfig``,
  ``BertConfig``, BLIP text for fusion): no hand-written ViT or BERT;
- ``contrastive``: symmetric InfoNCE with optional soft targets, gathered across DDP ranks;
- ``retrieval``: recall@k both ways and zero-shot accuracy with prompt ensembles;
- ``datasets``: image-text sets (the shapes world as a stream of chunks, scikit-learn's digits
  with templated captions and held-out templates, folders and JSONL);
- :func:`quiet_transformers`: transformers' loading bars and advice off stderr.

Like ``mltk.t2i``, these modules import torch and transformers at module top: they are imported
only inside command bodies, never by ``mltk --help`` or a plugin's ``plugin.py``.
"""


def quiet_transformers() -> None:
    """transformers prints loading bars and advice on stderr; mltk owns stderr."""
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
