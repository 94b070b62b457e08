"""Growth operators on transformers' ``CLIPModel``, the shared encoder's ties, and parameter
inheriting with momentum (PIM).

Every operator maps a state dict to the state dict of a bigger model built from a new
``CLIPConfig``: no hand-written towers. The exact ones preserve the model's function before any
training (the tests hold logits to 1e-5):

- ``deepen``: a layer inserted below the shared block of a tower, a copy of the layer under it
  with ``self_attn.out_proj`` and ``mlp.fc2`` zeroed: in CLIP's pre-LayerNorm residual blocks
  (x + attn(LN(x)), then x + mlp(LN(x))) it is the identity. ``init="copy"`` keeps the copy as
  it is (stacking, as bert2BERT does: not function-preserving; the deviation is reported).
- ``widen``: width x k for an integer k duplicates every hidden unit, attention head (heads x k,
  the same head size) and MLP unit, and divides the weights that read a duplicated unit by its
  number of copies. LayerNorm stays exact: the mean and variance of k copies of a vector are
  the vector's. Other factors use Net2Net's random mapping (new units copy random old ones):
  approximate under LayerNorm. ``noise`` breaks the copies' symmetry (identical copies get
  identical gradients forever) with zero-sum noise across each unit's copies on the weights
  that read them, which keeps the function exact.
- ``share``: layers appended on top of both towers whose attention and MLP are one module
  (cross-modal fusion by shared weights), with each tower's own LayerNorms; they start as the
  identity (zeroed output projections). The towers must have equal widths, heads and MLP sizes.

The shared encoder is recorded as ``shared_layers`` (the top s layers of both towers share
``self_attn`` and ``mlp``). ``save_pretrained`` refuses tensors shared between two keys, so
:func:`save_model` writes untied copies (a valid ``CLIPModel`` with the same function, which
``CLIPModel.from_pretrained`` loads) and the tie count in ``mltk_growclip.json``;
:func:`load_model` re-ties them.

PIM (:func:`inherit`): the paper's exact rule could not be checked against its text here; both
readings are built. ``interpolate`` (the default) pulls the inherited weights towards a fresh
initialisation of the grown architecture, theta = m * theta_inherited + (1 - m) * theta_fresh:
it keeps m of the earlier knowledge and moves the start off the old minimum. ``extrapolate``
continues along the previous arrival's change, theta = theta_inherited + m * (theta_end -
theta_start) with both ends grown by the same operators. m = 1 (interpolate) and m = 0
(extrapolate) are plain inheritance.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel

TIES_FILE = "mltk_growclip.json"
TOWERS = ("text", "vision")
_PREFIX = {"text": "text_model", "vision": "vision_model"}


# ----------------------------------------------------------------------------- architecture


@dataclass(frozen=True)
class Arch:
    """What the growth operators change: per tower depth, width, heads, MLP size; and the
    number of shared top layers."""

    text_layers: int
    vision_layers: int
    text_width: int
    vision_width: int
    text_heads: int
    vision_heads: int
    text_mlp: int
    vision_mlp: int
    shared: int = 0

    def describe(self) -> str:
        t = f"text {self.text_layers}x{self.text_width}"
        v = f"vision {self.vision_layers}x{self.vision_width}"
        return f"{t}, {v}" + (f", {self.shared} shared" if self.shared else "")


def arch_of(config: CLIPConfig, shared: int = 0) -> Arch:
    t, v = config.text_config, config.vision_config
    return Arch(
        t.num_hidden_layers,
        v.num_hidden_layers,
        t.hidden_size,
        v.hidden_size,
        t.num_attention_heads,
        v.num_attention_heads,
        t.intermediate_size,
        v.intermediate_size,
        shared,
    )


def parameter_count(model: torch.nn.Module) -> int:
    """Distinct parameters (a shared module counts once)."""
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- ties


def tie(model: CLIPModel, shared: int) -> CLIPModel:
    """Make the top ``shared`` layers of the vision tower use the text tower's attention and
    MLP modules (their LayerNorms stay their own)."""
    if shared:
        check_shareable(model.config)
        text, vision = model.text_model.encoder.layers, model.vision_model.encoder.layers
        if shared > min(len(text), len(vision)):
            raise ValueError(f"cannot share {shared} layers: the towers have fewer")
        for i in range(1, shared + 1):
            vision[-i].self_attn = text[-i].self_attn
            vision[-i].mlp = text[-i].mlp
    return model


def shared_count(model: CLIPModel) -> int:
    """How many top layers the towers share (0 if none)."""
    text, vision = model.text_model.encoder.layers, model.vision_model.encoder.layers
    s = 0
    while s < min(len(text), len(vision)) and text[-s - 1].self_attn is vision[-s - 1].self_attn:
        s += 1
    return s


def check_shareable(config: CLIPConfig) -> None:
    t, v = config.text_config, config.vision_config
    pairs = [
        ("width", t.hidden_size, v.hidden_size),
        ("heads", t.num_attention_heads, v.num_attention_heads),
        ("MLP size", t.intermediate_size, v.intermediate_size),
    ]
    for name, a, b in pairs:
        if a != b:
            raise ValueError(
                f"shared layers need equal {name} in both towers; text has {a}, vision {b}"
            )


def save_model(model: CLIPModel, folder: Path, tokenizer=None, extra: dict | None = None) -> None:
    """A Hugging Face CLIP folder: untied copies of any shared layers, and the tie count in
    ``mltk_growclip.json``."""
    folder = Path(folder)
    shared = shared_count(model)
    plain = copy.deepcopy(model)
    layers = plain.vision_model.encoder.layers
    for i in range(1, shared + 1):  # deepcopy kept the ties: give vision its own copies
        layers[-i].self_attn = copy.deepcopy(layers[-i].self_attn)
        layers[-i].mlp = copy.deepcopy(layers[-i].mlp)
    plain.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    (folder / TIES_FILE).write_text(
        json.dumps({"format": 1, "shared_layers": shared, **(extra or {})}, indent=1) + "\n"
    )


def read_ties(folder: Path) -> dict:
    path = Path(folder) / TIES_FILE
    return json.loads(path.read_text()) if path.is_file() else {"shared_layers": 0}


def load_model(folder: Path) -> CLIPModel:
    """``CLIPModel.from_pretrained`` and the shared layers re-tied; the untied copies must be
    equal (else the folder was edited and the towers no longer share)."""
    model = CLIPModel.from_pretrained(folder, attn_implementation="sdpa")
    shared = int(read_ties(folder).get("shared_layers", 0))
    text, vision = model.text_model.encoder.layers, model.vision_model.encoder.layers
    for i in range(1, shared + 1):
        for part in ("self_attn", "mlp"):
            a, b = getattr(text[-i], part).state_dict(), getattr(vision[-i], part).state_dict()
            if any(not torch.equal(a[k], b[k]) for k in a):
                raise ValueError(
                    f"{TIES_FILE} says the top {shared} layers are shared, but layer -{i}'s "
                    f"{part} differs between the towers"
                )
    return tie(model, shared)


# ----------------------------------------------------------------------------- state dicts


def _state(model: CLIPModel) -> dict[str, torch.Tensor]:
    """The state dict with shared modules written under both towers (untied view)."""
    return {k: v.detach().clone() for k, v in model.state_dict(keep_vars=False).items()}


def _build(config: CLIPConfig, state: dict, shared: int) -> CLIPModel:
    torch_state = torch.random.get_rng_state()
    model = CLIPModel(config)  # random init, then overwritten (the RNG is restored: no draw)
    torch.random.set_rng_state(torch_state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"state does not fit the grown model: {missing[:3]} {unexpected[:3]}")
    return tie(model, shared)


def _layer_keys(state: dict, tower: str) -> dict[int, dict[str, torch.Tensor]]:
    pat = re.compile(rf"^{_PREFIX[tower]}\.encoder\.layers\.(\d+)\.(.+)$")
    out: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in state.items():
        m = pat.match(k)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = v
    return out


def _set_layers(state: dict, tower: str, layers: list[dict[str, torch.Tensor]]) -> dict:
    prefix = f"{_PREFIX[tower]}.encoder.layers."
    out = {k: v for k, v in state.items() if not k.startswith(prefix)}
    for i, layer in enumerate(layers):
        out.update({f"{prefix}{i}.{k}": v for k, v in layer.items()})
    return out


def _identity(layer: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A layer whose residual branches add nothing: output projections zeroed."""
    out = {k: v.clone() for k, v in layer.items()}
    for k in (
        "self_attn.out_proj.weight",
        "self_attn.out_proj.bias",
        "mlp.fc2.weight",
        "mlp.fc2.bias",
    ):
        out[k] = torch.zeros_like(out[k])
    return out


# ----------------------------------------------------------------------------- operators


def deepen(model: CLIPModel, tower: str, n: int = 1, init: str = "zero") -> CLIPModel:
    """``n`` layers inserted under the shared block of ``tower`` ("text", "vision" or "both")."""
    if init not in ("zero", "copy"):
        raise ValueError(f"init must be zero or copy; got {init!r}")
    shared = shared_count(model)
    state, config = _state(model), copy.deepcopy(model.config)
    for t in TOWERS if tower == "both" else (tower,):
        layers = [v for _, v in sorted(_layer_keys(state, t).items())]
        at = len(layers) - shared  # under the shared block
        source = layers[at - 1] if at > 0 else layers[0]
        new = [
            _identity(source) if init == "zero" else {k: v.clone() for k, v in source.items()}
            for _ in range(n)
        ]
        layers = layers[:at] + new + layers[at:]
        state = _set_layers(state, t, layers)
        getattr(config, f"{t}_config").num_hidden_layers = len(layers)
    return _build(config, state, shared)


def share(model: CLIPModel, n: int = 1) -> CLIPModel:
    """``n`` shared identity layers appended on top of both towers."""
    check_shareable(model.config)
    shared = shared_count(model)
    state, config = _state(model), copy.deepcopy(model.config)
    text_layers = [v for _, v in sorted(_layer_keys(state, "text").items())]
    for t in TOWERS:
        layers = [v for _, v in sorted(_layer_keys(state, t).items())]
        for _ in range(n):
            fused = _identity(text_layers[-1])  # one attention and MLP for both towers
            own = {k: v.clone() for k, v in layers[-1].items() if k.startswith("layer_norm")}
            layers.append(
                {**{k: v for k, v in fused.items() if not k.startswith("layer_norm")}, **own}
            )
        state = _set_layers(state, t, layers)
        getattr(config, f"{t}_config").num_hidden_layers = len(layers)
    # the shared block moves up: its old layers stay shared, the new ones join them
    return _build(config, state, shared + n)


def _unit_map(old: int, new: int, gen: torch.Generator) -> torch.Tensor:
    """For each new unit, the old unit it copies: tiled for a multiple, else Net2Net's random
    mapping (the old units first, then random ones)."""
    if new % old == 0:
        return torch.arange(new) % old
    return torch.cat([torch.arange(old), torch.randint(old, (new - old,), generator=gen)])


def _zero_sum(noise: torch.Tensor, in_map: torch.Tensor, old: int) -> torch.Tensor:
    """Noise over the input dim made to sum to zero over each old unit's copies."""
    groups = torch.zeros(noise.shape[0], old, dtype=noise.dtype)
    groups.index_add_(1, in_map, noise)
    counts = torch.bincount(in_map, minlength=old).to(noise.dtype)
    return noise - (groups / counts)[:, in_map]


class _Widener:
    def __init__(self, old_w, new_w, old_heads, old_mlp, gen, noise_gen, noise):
        head = old_w // old_heads
        if new_w % head:
            raise ValueError(f"width {new_w} is not a multiple of the head size {head}")
        self.new_heads = new_w // head
        self.new_mlp = old_mlp * new_w // old_w
        self.h = _unit_map(old_w, new_w, gen)  # hidden units
        hm = _unit_map(old_heads, self.new_heads, gen)  # whole heads
        self.q = (hm[:, None] * head + torch.arange(head)).reshape(-1)  # their dims
        self.m = _unit_map(old_mlp, self.new_mlp, gen)
        self.old = {"h": old_w, "q": old_w, "m": old_mlp}
        self.gen, self.noise = noise_gen, noise  # noise has its own stream: the maps of
        # a grown model and of its change (PIM's extrapolation, grown without noise) agree

    def vector(self, v, space="h"):
        return v[getattr(self, space)].clone()

    def linear(self, w, out_space, in_space):
        """W'[o, i] = W[g_out(o), g_in(i)] / copies(g_in(i)) (+ zero-sum noise)."""
        out_map = getattr(self, out_space) if out_space else torch.arange(w.shape[0])
        in_map = getattr(self, in_space)
        counts = torch.bincount(in_map, minlength=self.old[in_space]).to(w.dtype)
        out = w[out_map][:, in_map] / counts[in_map]
        if self.noise > 0:
            eps = torch.randn(out.shape, generator=self.gen, dtype=w.dtype) * self.noise * w.std()
            out = out + _zero_sum(eps, in_map, self.old[in_space])
        return out


def widen(
    model: CLIPModel, factor: float, towers: str = "both", noise: float = 0.0, seed: int = 0
) -> CLIPModel:
    """Width times ``factor`` in ``towers`` ("text", "vision" or "both"): exact for an integer
    factor (with or without ``noise``), Net2Net's random mapping otherwise."""
    shared = shared_count(model)
    if shared and towers != "both":
        raise ValueError("the towers share layers: widen both (--towers both)")
    state, config = _state(model), copy.deepcopy(model.config)
    gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator().manual_seed(seed + 1)
    maps: dict[tuple, _Widener] = {}  # equal widths get one map: shared layers stay consistent
    new_state = dict(state)
    for t in TOWERS if towers == "both" else (towers,):
        tc = getattr(config, f"{t}_config")
        old_w = tc.hidden_size
        new_w = int(round(old_w * factor))
        key = (old_w, new_w, tc.num_attention_heads, tc.intermediate_size)
        if key not in maps:
            maps[key] = _Widener(
                old_w, new_w, tc.num_attention_heads, tc.intermediate_size, gen, noise_gen, noise
            )
        wd = maps[key]
        p = _PREFIX[t]
        for k, v in state.items():
            if not k.startswith(p + "."):
                continue
            name = k[len(p) + 1 :]
            new_state[k] = _widen_tensor(name, v, wd)
        proj = "text_projection.weight" if t == "text" else "visual_projection.weight"
        new_state[proj] = wd.linear(state[proj], None, "h")
        tc.hidden_size, tc.num_attention_heads = new_w, wd.new_heads
        tc.intermediate_size = wd.new_mlp
    if shared:  # the vision copies of shared modules: the text tower's, as tie() will make them
        for i in range(1, shared + 1):
            tl = config.text_config.num_hidden_layers - i
            vl = config.vision_config.num_hidden_layers - i
            for k in list(new_state):
                pre = f"text_model.encoder.layers.{tl}."
                if k.startswith(pre) and not k[len(pre) :].startswith("layer_norm"):
                    new_state[f"vision_model.encoder.layers.{vl}.{k[len(pre) :]}"] = new_state[k]
    return _build(config, new_state, shared)


def _widen_tensor(name: str, v: torch.Tensor, wd: _Widener) -> torch.Tensor:
    if name.endswith("position_ids"):
        return v
    if name in ("embeddings.token_embedding.weight", "embeddings.position_embedding.weight"):
        return v[:, wd.h].clone()
    if name == "embeddings.class_embedding":
        return wd.vector(v)
    if name == "embeddings.patch_embedding.weight":
        return v[wd.h].clone()
    if "layer_norm" in name or "layrnorm" in name or "layernorm" in name:
        return wd.vector(v)
    m = re.match(
        r"encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc(1|2))\.(weight|bias)$", name
    )
    if not m:
        raise RuntimeError(f"no widening rule for {name}")
    module, kind = m.group(1), m.group(4)
    out_space, in_space = {
        "self_attn.q_proj": ("q", "h"),
        "self_attn.k_proj": ("q", "h"),
        "self_attn.v_proj": ("q", "h"),
        "self_attn.out_proj": ("h", "q"),
        "mlp.fc1": ("m", "h"),
        "mlp.fc2": ("h", "m"),
    }[module]
    if kind == "bias":
        return wd.vector(v, out_space)
    return wd.linear(v, out_space, in_space)


# ----------------------------------------------------------------------------- PIM


def fresh_like(model: CLIPModel, seed: int) -> CLIPModel:
    """A freshly initialised model of the same architecture (ties included)."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    fresh = tie(CLIPModel(copy.deepcopy(model.config)), shared_count(model))
    torch.random.set_rng_state(state)
    return fresh


@torch.no_grad()
def inherit(
    grown: CLIPModel,
    momentum: float,
    rule: str = "interpolate",
    *,
    fresh: CLIPModel | None = None,
    change: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
) -> CLIPModel:
    """PIM on ``grown`` (in place, returned): ``interpolate`` with ``fresh`` (default: a fresh
    initialisation from ``seed``), or ``extrapolate`` along ``change`` (the previous arrival's
    end minus start, grown like the model; None: plain inheritance). The logit scale is
    inherited as it is."""
    if rule == "interpolate":
        if momentum >= 1.0:
            return grown
        fresh = fresh if fresh is not None else fresh_like(grown, seed)
        fs = dict(fresh.named_parameters())
        for name, p in grown.named_parameters():
            if name != "logit_scale":
                p.mul_(momentum).add_(fs[name], alpha=1.0 - momentum)
        return grown
    if rule == "extrapolate":
        if momentum == 0.0 or change is None:
            return grown
        for name, p in grown.named_parameters():
            if name != "logit_scale" and name in change:
                p.add_(change[name].to(p.dtype), alpha=momentum)
        return grown
    raise ValueError(f"rule must be interpolate or extrapolate; got {rule!r}")
