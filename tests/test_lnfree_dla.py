"""LayerNorm-free twins in TransformerLens: `load_hooked` gives a twin (made by `train.remove_norm`'s
export from a tiny model of each family, its fixed scales measured on the model's own activations) with
normalisation off: its logits are the transformers twin's, its norms report their fixed scale, and the
direct logit attributions of all components (`cards.dla`) sum to the logits; for the original, with real
normalisation, the same sum misses the logits. Skips without TransformerLens (the `interp` extra)."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cards import dla
from cards.errors import IntegrityError
from cards.hooked import fix_scales, hooked_norms
from cards.zoo import load_hooked
from train import presets, remove_norm

from conftest import saved_tiny_model

PROMPTS = ["SELECT id FROM users WHERE name = 7 * 8", "CREATE TABLE users (id INTEGER, name"]
SHAPES = {"gpt2": dict(hidden=48, heads=3, mlp=80), "gpt-neo": dict(layers=3, hidden=48, heads=4, mlp=96, window=4),
          "llama": dict(hidden=96, heads=6, kv_heads=3, mlp=160, tied=False),
          "qwen2": dict(hidden=48, heads=4, kv_heads=2, mlp=80)}


def measured_scales(model, ids: torch.Tensor) -> dict[str, float]:
    """Each norm's statistic (standard deviation or root mean square of its input) averaged over `ids`."""
    found, handles = {}, []
    for name, module in remove_norm.norm_modules(model):
        def hook(module, args, out, name=name):
            x = args[0] if remove_norm.is_rms(module) else args[0] - args[0].mean(-1, keepdim=True)
            found[name] = float(x.pow(2).mean(-1).sqrt().mean())
        handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model(ids)
    for handle in handles:
        handle.remove()
    return found


def tiny_pair(root, arch: str):
    """(original, twin) folders: a random model of `arch` with its 1-d weights moved off their initial values
    (so biases and norm weights count), and its twin exported with the scales measured on PROMPTS."""
    original, twin = root / arch, root / f"{arch}-lnfree"
    model, tokenizer = saved_tiny_model(original, arch, SHAPES[arch], seed=2, noise=0.2)
    shutil.copytree(original, twin)
    ids = tokenizer(PROMPTS[0], return_tensors="pt")["input_ids"]
    remove_norm.export_folder(twin, measured_scales(model, ids))
    return original, twin


@pytest.fixture(scope="module")
def lens():
    return pytest.importorskip("transformer_lens")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lnfree")
    return {arch: tiny_pair(root, arch) for arch in presets.ARCHS}


def tokens(folder) -> torch.Tensor:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return tokenizer(PROMPTS[1], return_tensors="pt")["input_ids"]


def sum_error(model, ids) -> tuple[float, float]:
    """(max |sum of DLA - logits|, max |logits|) of a hooked model on `ids`."""
    labels, attribution, logits = dla.attribution(model, ids)
    assert len(labels) == len(attribution) and labels[-1] == dla.CONSTANT
    return float((attribution.sum(0) - logits).abs().max()), float(logits.abs().max())


@pytest.mark.parametrize("arch", presets.ARCHS)
def test_a_hooked_twin_gives_the_transformers_twins_logits_with_fixed_scales(lens, pairs, arch):
    original, twin = pairs[arch]
    info = remove_norm.fixed_scale_info(twin)
    stored = AutoModelForCausalLM.from_pretrained(twin, dtype=torch.float32)
    model = load_hooked(twin)
    ids = tokens(twin)
    with torch.no_grad():
        expected = stored(ids).logits
        logits, cache = model.run_with_cache(ids)
    assert expected.abs().max() > 0.3  # logits of a realistic size, so the tolerance below means something
    assert torch.allclose(logits, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(logits, AutoModelForCausalLM.from_pretrained(original)(ids).logits, atol=1e-3)
    for name, module in hooked_norms(model, stored.config.model_type).items():
        scale, hook = info["scales"][name], module.hook_scale.name
        assert torch.allclose(cache[hook], torch.full_like(cache[hook], scale))  # it divides by s, not a statistic
        weight = stored.get_submodule(name).weight * scale / math.sqrt(info["eps"])
        assert torch.allclose(module.w, weight)  # the trained weight, not the shipped w*sqrt(E)/s


@pytest.mark.parametrize("arch", presets.ARCHS)
def test_the_dla_of_a_twin_sums_to_its_logits(lens, pairs, arch):
    twin = pairs[arch][1]
    model = load_hooked(twin)
    ids = tokens(twin)
    labels, pieces, logits = dla.decompose(model, ids)
    cfg = model.cfg
    assert len(labels) == 1 + (arch in ("gpt2", "gpt-neo")) + cfg.n_layers * (cfg.n_heads + 3)
    with torch.no_grad():
        _, cache = model.run_with_cache(ids)
    assert torch.allclose(pieces.sum(0), cache[f"blocks.{cfg.n_layers - 1}.hook_resid_post"], atol=1e-5)
    attribution = dla.attribute(model, pieces)
    assert attribution.shape == (len(labels) + 1, *logits.shape)
    still = {label for label, size in zip(labels, attribution[:-1].abs().amax(dim=(1, 2, 3))) if size == 0}
    biases = {label for label in labels if label.endswith("bias")}
    assert still == (set() if arch in ("gpt2", "gpt-neo") else biases)  # llama and qwen2 have no output biases
    error, size = sum_error(model, ids)
    assert error < 1e-5 * max(size, 1.0), (error, size)


@pytest.mark.parametrize("arch", presets.ARCHS)
def test_the_dla_of_the_original_misses_its_logits(lens, pairs, arch):
    """The same sum on the model with real normalisation: each piece normalised on its own is not its share."""
    original = pairs[arch][0]
    error, size = sum_error(load_hooked(original), tokens(original))
    assert error > 0.05 * size, (error, size)


def test_a_marker_that_does_not_name_the_models_norms_is_an_integrity_error(lens, pairs):
    folder = pairs["gpt2"][0]
    model = load_hooked(folder)
    marker = {"fixed_scale": True, "eps": 4.0 ** 10, "scales": {"transformer.ln_f": 1.0}}
    with pytest.raises(IntegrityError, match="not the model's norms"):
        fix_scales(model, {"model_type": "gpt2", remove_norm.MARKER: marker})
