"""ALBEF's model with EPIC's heads, from transformers classes.

- image tower: ``ViTModel``; text tower: ``BertModel``; fusion: ``BlipTextModel`` built with
  ``is_decoder=True`` (so every layer has cross-attention) and called with ``is_decoder=False``
  and the text tower's states as ``encoder_embeds``: bidirectional self-attention over the
  words plus cross-attention to the image tokens, ALBEF's multimodal encoder;
- ITC projections and a learnable temperature (0.07, clamped to [0.001, 0.5]); an ITM head on
  the fusion's first token; an MLM head (``BlipTextOnlyMLMHead``); EPIC's consistency head (one
  logit per fusion output token: the word agrees with the image);
- EPIC's generator: a small ``BertForMaskedLM`` that sees the text only;
- momentum copies of the towers, projections and MLM head (EMA, ALBEF's 0.995) and the ITC
  feature queues.

Saved as a folder of Hugging Face folders (``vision/``, ``text/``, ``fusion/``,
``generator/``: each loads with its class's ``from_pretrained``), ``heads.safetensors``, the
tokenizer and ``epic.json``; ``momentum.safetensors`` holds the momentum copies and queues
(what continued training needs, not inference).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

FORMAT = 1
META = "epic.json"
HEADS = "heads.safetensors"
MOMENTUM = "momentum.safetensors"
TOWERS = ("vision", "text", "fusion")
PAIRS = (  # (online, momentum) pairs of modules under EMA
    ("vision", "vision_m"),
    ("text", "text_m"),
    ("fusion", "fusion_m"),
    ("vision_proj", "vision_proj_m"),
    ("text_proj", "text_proj_m"),
    ("mlm_head", "mlm_head_m"),
)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class EpicModel(nn.Module):
    def __init__(
        self,
        vision_config,
        text_config,
        fusion_config,
        generator_config=None,
        *,
        embed_dim: int = 64,
        queue: int = 1024,
        momentum: float = 0.995,
        mean=CLIP_MEAN,
        std=CLIP_STD,
    ):
        from transformers import BertForMaskedLM, BertModel, BlipTextModel, ViTModel
        from transformers.models.blip.modeling_blip_text import BlipTextOnlyMLMHead

        super().__init__()
        fusion_config._attn_implementation = "eager"  # attention maps for saliency
        self.vision = ViTModel(vision_config, add_pooling_layer=False)
        self.text = BertModel(text_config, add_pooling_layer=False)
        self.fusion = BlipTextModel(fusion_config, add_pooling_layer=False)
        vw, tw, fw = vision_config.hidden_size, text_config.hidden_size, fusion_config.hidden_size
        if fusion_config.encoder_hidden_size != vw or tw != fw:
            raise ValueError(
                f"the fusion takes text states of width {fw} and image states of width "
                f"{fusion_config.encoder_hidden_size}; the towers give {tw} and {vw}"
            )
        self.vision_proj = nn.Linear(vw, embed_dim)
        self.text_proj = nn.Linear(tw, embed_dim)
        self.temp = nn.Parameter(torch.tensor(0.07))
        self.itm_head = nn.Linear(fw, 2)
        self.mlm_head = BlipTextOnlyMLMHead(fusion_config)
        self.token_head = nn.Linear(fw, 1)
        self.generator = BertForMaskedLM(generator_config) if generator_config else None
        self.embed_dim, self.queue_size, self.momentum = embed_dim, queue, momentum
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.make_momentum()

    # ------------------------------------------------------------------ momentum and queues

    def make_momentum(self) -> None:
        """Momentum copies equal to the online modules, and fresh queues."""
        for online, m in PAIRS:
            mod = copy.deepcopy(getattr(self, online))
            for p in mod.parameters():
                p.requires_grad_(False)
            setattr(self, m, mod)
        self.reset_queues(self.queue_size)  # zero: ITC within the batch only

    def reset_queues(self, size: int) -> None:
        self.queue_size = size
        g = torch.Generator().manual_seed(0)
        for name in ("image_queue", "text_queue"):
            q = F.normalize(torch.randn(self.embed_dim, size, generator=g), dim=0)
            self.register_buffer(name, q.to(self.temp.device))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long, device=self.temp.device))

    @torch.no_grad()
    def momentum_update(self) -> None:
        for online, m in PAIRS:
            for p, pm in zip(getattr(self, online).parameters(), getattr(self, m).parameters()):
                pm.mul_(self.momentum).add_(p.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def enqueue(self, image_feat: torch.Tensor, text_feat: torch.Tensor) -> None:
        """Write a (gathered) batch of momentum features at the pointer (ALBEF's FIFO)."""
        if self.queue_size == 0:
            return
        n, ptr = image_feat.shape[0], int(self.queue_ptr)
        if self.queue_size % n:
            raise ValueError(f"the queue ({self.queue_size}) is not a multiple of the batch {n}")
        self.image_queue[:, ptr : ptr + n] = image_feat.T
        self.text_queue[:, ptr : ptr + n] = text_feat.T
        self.queue_ptr[0] = (ptr + n) % self.queue_size

    # ------------------------------------------------------------------ the towers

    def pixels(self, images) -> torch.Tensor:
        """uint8 images (N, H, W, 3) as normalised pixel values on the model's device."""
        import numpy as np

        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        x = x.to(self.mean.device).float() / 255.0
        return (x - self.mean) / self.std

    def encode_image(self, pixel_values, momentum: bool = False):
        tower, proj = (
            (self.vision_m, self.vision_proj_m) if momentum else (self.vision, self.vision_proj)
        )
        states = tower(pixel_values=pixel_values).last_hidden_state
        return states, F.normalize(proj(states[:, 0]), dim=-1)

    def encode_text(self, input_ids, attention_mask, momentum: bool = False):
        tower, proj = (self.text_m, self.text_proj_m) if momentum else (self.text, self.text_proj)
        states = tower(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return states, F.normalize(proj(states[:, 0]), dim=-1)

    def fuse(self, text_states, attention_mask, image_states, momentum=False, attentions=False):
        """The multimodal encoder: every word attends to the words and the image tokens."""
        fusion = self.fusion_m if momentum else self.fusion
        atts = torch.ones(image_states.shape[:2], dtype=torch.long, device=image_states.device)
        out = fusion(
            encoder_embeds=text_states,
            attention_mask=attention_mask,
            encoder_hidden_states=image_states,
            encoder_attention_mask=atts,
            is_decoder=False,
            output_attentions=attentions,
        )
        return out if attentions else out.last_hidden_state

    def itm_logits(self, fused: torch.Tensor) -> torch.Tensor:
        return self.itm_head(fused[:, 0])

    def clamp_temp(self) -> None:
        with torch.no_grad():
            self.temp.clamp_(0.001, 0.5)

    def forward(self, batch: dict, step):
        """All the losses of one step (see objectives.py): DDP wraps this forward."""
        from .objectives import losses

        return losses(self, batch, step)


# ---------------------------------------------------------------------------- configs


def configs(
    tokenizer,
    *,
    width,
    vision_layers,
    text_layers,
    fusion_layers,
    heads,
    patch,
    image_size,
    generator_fraction,
    max_positions=40,
):
    """ViT, BERT, fusion and generator configs for a new model over ``tokenizer``."""

    from mltk.vl.towers import bert_config, blip_text_config, vit_config

    vision = vit_config(
        width=width, layers=vision_layers, heads=heads, image_size=image_size, patch=patch
    )
    text = bert_config(
        tokenizer, width=width, layers=text_layers, heads=heads, max_positions=max_positions
    )
    fusion = blip_text_config(
        tokenizer,
        width=width,
        layers=fusion_layers,
        heads=heads,
        encoder_width=width,
        max_positions=max_positions,
    )
    return vision, text, fusion, generator_like(text, generator_fraction, len(tokenizer))


def generator_like(text, fraction: float, vocab: int):
    """ELECTRA's generator: the text tower's depth at ``fraction`` of its width (a quarter of
    the heads, or one)."""
    from transformers import BertConfig

    heads = text.num_attention_heads
    gheads = max(1, heads // 4)
    width = max(gheads, int(round(text.hidden_size * fraction / gheads)) * gheads)
    return BertConfig(
        vocab_size=vocab,
        hidden_size=width,
        num_hidden_layers=text.num_hidden_layers,
        num_attention_heads=gheads,
        intermediate_size=4 * width,
        max_position_embeddings=text.max_position_embeddings,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=text.pad_token_id,
    )


def fusion_like(text, vision, layers: int, tokenizer):
    """A fusion config of the text tower's shape with cross-attention to ``vision``'s width."""
    from mltk.vl.towers import blip_text_config

    cfg = blip_text_config(
        tokenizer,
        width=text.hidden_size,
        layers=layers,
        heads=text.num_attention_heads,
        encoder_width=vision.hidden_size,
        max_positions=text.max_position_embeddings,
    )
    cfg.intermediate_size = text.intermediate_size
    cfg.vocab_size = text.vocab_size
    return cfg


def load_vision(model: EpicModel, folder: Path) -> None:
    """The image tower's weights from a Hugging Face ViT folder (its pooler dropped)."""
    from transformers import ViTModel

    vit = ViTModel.from_pretrained(folder, add_pooling_layer=False, use_safetensors=True)
    model.vision.load_state_dict(vit.state_dict())


def load_text(model: EpicModel, folder: Path) -> list[str]:
    """The text tower from a Hugging Face BERT folder's first layers and, as ALBEF starts its
    fusion, the fusion layers' self-attention and feed-forward weights from the layers after
    them (cross-attention starts fresh). Returns the fusion tensors so filled."""
    from transformers import BertModel

    bert = BertModel.from_pretrained(folder, add_pooling_layer=False, use_safetensors=True)
    state = bert.state_dict()
    n = model.text.config.num_hidden_layers
    mine = model.text.state_dict()
    model.text.load_state_dict({k: state[k] for k in mine})
    filled = []
    fusion = model.fusion.state_dict()
    with torch.no_grad():
        for k, v in fusion.items():
            parts = k.split(".")
            if parts[:2] != ["encoder", "layer"]:
                continue
            src = ".".join(["encoder", "layer", str(int(parts[2]) + n), *parts[3:]])
            if src in state and state[src].shape == v.shape:
                v.copy_(state[src])
                filled.append(k)
    model.fusion.load_state_dict(fusion)
    return filled


# ---------------------------------------------------------------------------- save, load


def save(model: EpicModel, folder: Path, tokenizer, meta: dict) -> None:
    """Write the model into ``folder`` (use inside ``mltk.atomic.build_dir``)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOWERS:
        getattr(model, name).save_pretrained(folder / name)
    if model.generator is not None:
        model.generator.save_pretrained(folder / "generator")
    heads = {}
    for name in ("vision_proj", "text_proj", "itm_head", "mlm_head", "token_head"):
        for k, v in getattr(model, name).state_dict().items():
            heads[f"{name}.{k}"] = v.detach().contiguous().cpu()
    heads["temp"] = model.temp.detach().reshape(1).cpu()
    save_file(heads, str(folder / HEADS))
    moment = {}
    for _, m in PAIRS:
        for k, v in getattr(model, m).state_dict().items():
            moment[f"{m}.{k}"] = v.detach().contiguous().cpu()
    for k in ("image_queue", "text_queue", "queue_ptr"):
        moment[k] = getattr(model, k).detach().contiguous().cpu()
    save_file(moment, str(folder / MOMENTUM))
    tokenizer.save_pretrained(folder)
    record = {
        "format": FORMAT,
        "embed_dim": model.embed_dim,
        "queue": model.queue_size,
        "momentum": model.momentum,
        "mean": model.mean.flatten().tolist(),
        "std": model.std.flatten().tolist(),
        **meta,
    }
    (folder / META).write_text(json.dumps(record, indent=1) + "\n")


def is_model(folder: Path) -> bool:
    folder = Path(folder)
    return (folder / META).is_file() and all((folder / t / "config.json").is_file() for t in TOWERS)


def load(folder: Path) -> tuple[EpicModel, object, dict]:
    """(model, tokenizer, epic.json) of a saved model; momentum copies from the file when it
    is there, else equal to the online weights."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer, BertForMaskedLM

    folder = Path(folder)
    meta = json.loads((folder / META).read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{folder / META} has format {meta.get('format')}, not {FORMAT}")
    cfgs = [AutoConfig.from_pretrained(folder / t) for t in TOWERS]
    gen = folder / "generator"
    gen_cfg = AutoConfig.from_pretrained(gen) if (gen / "config.json").is_file() else None
    model = EpicModel(
        *cfgs,
        gen_cfg,
        embed_dim=meta["embed_dim"],
        queue=meta["queue"],
        momentum=meta["momentum"],
        mean=tuple(meta["mean"]),
        std=tuple(meta["std"]),
    )
    from transformers import BertModel, BlipTextModel, ViTModel

    classes = {"vision": ViTModel, "text": BertModel, "fusion": BlipTextModel}
    for t in TOWERS:
        loaded = classes[t].from_pretrained(
            folder / t, add_pooling_layer=False, use_safetensors=True
        )
        getattr(model, t).load_state_dict(loaded.state_dict())
    if gen_cfg is not None:
        gen_model = BertForMaskedLM.from_pretrained(gen, use_safetensors=True)
        model.generator.load_state_dict(gen_model.state_dict())
    heads = load_file(str(folder / HEADS))
    with torch.no_grad():
        model.temp.copy_(heads.pop("temp").reshape(()))
    for name in ("vision_proj", "text_proj", "itm_head", "mlm_head", "token_head"):
        part = {k[len(name) + 1 :]: v for k, v in heads.items() if k.startswith(name + ".")}
        getattr(model, name).load_state_dict(part)
    model.make_momentum()
    if (folder / MOMENTUM).is_file():
        moment = load_file(str(folder / MOMENTUM))
        for _, m in PAIRS:
            part = {k[len(m) + 1 :]: v for k, v in moment.items() if k.startswith(m + ".")}
            getattr(model, m).load_state_dict(part)
        for k in ("image_queue", "text_queue", "queue_ptr"):
            getattr(model, k).copy_(moment[k])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model, tokenizer, meta


def parameter_count(model: EpicModel, generator: bool = False) -> int:
    """Parameters of the online model (the towers and heads; the generator if asked)."""
    skip = {m for _, m in PAIRS} | ({"generator"} if not generator else set())
    return sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] not in skip)
