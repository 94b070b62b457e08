"""Growth operators keep the function (logits within 1e-5) before and after save/load; the
shared encoder's ties survive a save that transformers would refuse; PIM's rules."""

from __future__ import annotations

import pytest
import torch
from mltk_plugins.growclip import growth as G
from mltk_plugins.growclip.search import apply
from transformers import CLIPModel


def logits(model, batch):
    with torch.no_grad():
        return model.eval()(**batch).logits_per_image


EXACT = [
    ["depth+1:text"],
    ["depth+1:vision"],
    ["depth+2"],
    ["width2"],
    ["width3:text"],
    ["shared+1"],
    ["shared+1", "width2"],
    ["width2", "shared+2", "depth+1"],
]


@pytest.mark.parametrize("ops", EXACT, ids=["&".join(o) for o in EXACT])
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_exact_operators_preserve_logits_before_and_after_save_load(
    tiny, batch, tmp_path, ops, noise
):
    before = logits(tiny, batch)
    grown = apply(tiny, ops, noise=noise, seed=3)
    assert G.parameter_count(grown) > G.parameter_count(tiny)
    torch.testing.assert_close(logits(grown, batch), before, atol=1e-5, rtol=0)
    G.save_model(grown, tmp_path / "m")
    loaded = G.load_model(tmp_path / "m")
    torch.testing.assert_close(logits(loaded, batch), before, atol=1e-5, rtol=0)
    assert G.shared_count(loaded) == G.shared_count(grown)
    # a plain transformers load (untied copies) is a valid CLIPModel with the same function
    plain = CLIPModel.from_pretrained(tmp_path / "m")
    torch.testing.assert_close(logits(plain, batch), before, atol=1e-5, rtol=0)


def test_width_two_has_the_parameters_of_a_model_built_that_wide(tiny, tokenizer):
    from mltk.vl.towers import clip_config

    grown = G.widen(tiny, 2)
    built = CLIPModel(
        clip_config(tokenizer, width=64, layers=2, heads=4, projection=32, max_positions=16)
    )
    assert G.parameter_count(grown) == G.parameter_count(built)
    assert grown.config.text_config.num_attention_heads == 4  # heads x2, same head size
    assert grown.config.text_config.intermediate_size == 4 * 64


def test_noise_breaks_the_symmetry_of_copies(tiny):
    w = G.widen(tiny, 2, noise=0.0).text_model.encoder.layers[0].mlp.fc2.weight
    assert torch.equal(w[:, :128], w[:, 128:])  # identical copies: identical gradients forever
    n = G.widen(tiny, 2, noise=0.05).text_model.encoder.layers[0].mlp.fc2.weight
    assert not torch.allclose(n[:, :128], n[:, 128:])
    torch.testing.assert_close(n[:, :128] + n[:, 128:], w[:, :128] + w[:, 128:])  # zero-sum


def test_inexact_operators_change_the_function_and_say_how_much(tiny, batch):
    before = logits(tiny, batch)
    for grown in (G.widen(tiny, 1.5, seed=1), G.deepen(tiny, "vision", 1, init="copy")):
        dev = (logits(grown, batch) - before).abs().max().item()
        assert 1e-4 < dev < 50  # approximate: reported, not hidden


def test_shared_layers_are_one_module_and_transformers_refuses_to_save_them(tiny, tmp_path):
    grown = G.share(tiny, 1)
    text, vision = grown.text_model.encoder.layers, grown.vision_model.encoder.layers
    assert text[-1].self_attn is vision[-1].self_attn and text[-1].mlp is vision[-1].mlp
    assert text[-1].layer_norm1 is not vision[-1].layer_norm1  # modality-specific norms
    assert G.parameter_count(grown) < sum(p.numel() for p in grown.state_dict().values())
    with pytest.raises(RuntimeError):
        grown.save_pretrained(tmp_path / "raw")
    G.save_model(grown, tmp_path / "ok")
    loaded = G.load_model(tmp_path / "ok")
    lt, lv = loaded.text_model.encoder.layers, loaded.vision_model.encoder.layers
    assert lt[-1].mlp is lv[-1].mlp and G.shared_count(loaded) == 1


def test_a_tie_map_over_layers_that_differ_is_refused(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    G.save_model(G.share(tiny, 1), tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    state = load_file(path)
    key = next(k for k in state if k.startswith("vision_model.encoder.layers.2.mlp.fc1.weight"))
    state[key] = state[key] + 1
    save_file(state, path, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="differs between the towers"):
        G.load_model(tmp_path / "m")


def test_shared_layers_need_equal_widths(tiny):
    with pytest.raises(ValueError, match="equal width"):
        G.share(G.widen(tiny, 2, "text"), 1)
    with pytest.raises(ValueError, match="widen both"):
        G.widen(G.share(tiny, 1), 2, "text")


def test_depth_layers_go_under_the_shared_block(tiny):
    grown = G.deepen(G.share(tiny, 1), "text")
    assert grown.config.text_config.num_hidden_layers == 4 and G.shared_count(grown) == 1


# ----------------------------------------------------------------------------- PIM


def test_pim_at_the_momentum_that_disables_it_is_plain_inheritance(tiny):
    grown = G.widen(tiny, 2)
    ref = {k: v.clone() for k, v in grown.state_dict().items()}
    G.inherit(grown, 1.0, "interpolate")
    assert all(torch.equal(ref[k], v) for k, v in grown.state_dict().items())
    change = {k: torch.ones_like(v) for k, v in grown.named_parameters()}
    G.inherit(grown, 0.0, "extrapolate", change=change)
    assert all(torch.equal(ref[k], v) for k, v in grown.state_dict().items())


def test_pim_rules_against_a_hand_computation(tiny):
    grown = G.deepen(tiny, "both")
    fresh = G.fresh_like(grown, seed=5)
    ref = {k: v.detach().clone() for k, v in grown.named_parameters()}
    G.inherit(grown, 0.7, "interpolate", fresh=fresh)
    for k, v in grown.named_parameters():
        want = (
            ref[k] if k == "logit_scale" else 0.7 * ref[k] + 0.3 * dict(fresh.named_parameters())[k]
        )
        torch.testing.assert_close(v, want)
    change = {k: torch.full_like(v, 2.0) for k, v in grown.named_parameters()}
    before = {k: v.detach().clone() for k, v in grown.named_parameters()}
    G.inherit(grown, 0.25, "extrapolate", change=change)
    for k, v in grown.named_parameters():
        torch.testing.assert_close(v, before[k] if k == "logit_scale" else before[k] + 0.5)
    with pytest.raises(ValueError):
        G.inherit(grown, 0.5, "sideways")


def test_a_fresh_initialisation_keeps_the_ties_and_draws_from_its_seed(tiny):
    shared = G.share(tiny, 1)
    a, b = G.fresh_like(shared, 1), G.fresh_like(shared, 1)
    assert G.shared_count(a) == 1
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
