"""LayerNorm-free twins (`train.remove_norm`, `--objective remove-norm`): the export is faithful, each norm of a
twin is an affine map (and the final norm splits the residual stream's components exactly), E keeps float16
weights finite, the schedule freezes norms in the stated order at the stated steps, and bad use is one line.

What "affine" means here: for every norm module N of an exported twin and random inputs x, y at the scale
the norm saw, N(t*x + (1-t)*y) = t*N(x) + (1-t)*N(y) for t in {0.3, 2.5, -1} (attention and MLPs are not
affine and are not tested); and the logits equal the sum over residual components c (embeddings, each
block's output minus its input) of lm_head(N(c) - N(0)), plus lm_head(N(0)), N the final norm. Both fail
for the original model, which the tests also check.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

from cards.errors import UsageError
from conftest import one_line_error
from train import remove_norm as rn
from train.cli import train_main

CONFIGS = {
    "gpt2": lambda: GPT2Config(n_layer=2, n_embd=24, n_head=4, vocab_size=40, n_positions=32,
                               bos_token_id=0, eos_token_id=0),
    "llama": lambda: LlamaConfig(num_hidden_layers=2, hidden_size=24, intermediate_size=40, num_attention_heads=4,
                                 num_key_value_heads=2, vocab_size=40, max_position_embeddings=32,
                                 bos_token_id=0, eos_token_id=0, pad_token_id=1),
}


def tiny(arch: str):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(CONFIGS[arch]()).eval()
    with torch.no_grad():  # trained-looking norms: weights and biases away from 1 and 0
        for _, module in rn.norm_modules(model):
            module.weight.uniform_(0.5, 2.0)
            if getattr(module, "bias", None) is not None:
                module.bias.uniform_(-0.5, 0.5)
    return model


def frozen_and_twin(arch: str):
    """(ids, logits of the model with every norm at its measured fixed scale, the exported twin, original)."""
    model = tiny(arch)
    original = tiny(arch)
    ids = torch.randint(2, 40, (3, 12), generator=torch.Generator().manual_seed(1))
    switch = rn.NormSwitch(model, every=1)
    model.train()
    switch.at(0, torch.ones_like(ids))
    for n in range(len(switch.names)):  # measure at step n: norm n is measured with norms 0..n-1 frozen
        switch.at(n, torch.ones_like(ids))
        model(ids)
    model.eval()
    switch.at(10**6, None)
    with torch.no_grad():
        frozen = model(ids).logits
    scales = switch.scales()
    switch.remove()
    rn.export_fixed_scales(model, scales)
    return ids, frozen, model, original


@pytest.mark.parametrize("arch", CONFIGS)
def test_export_is_faithful_and_marked(arch, tmp_path):
    ids, frozen, twin, _ = frozen_and_twin(arch)
    with torch.no_grad():
        assert torch.allclose(twin(ids).logits, frozen, atol=1e-5, rtol=1e-5)
    twin.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()  # plain transformers, no custom code
    info = rn.fixed_scale_info(loaded.config)
    assert info == rn.fixed_scale_info(tmp_path) and info["fixed_scale"]
    assert set(info["scales"]) == {name for name, _ in rn.norm_modules(loaded)}
    assert getattr(loaded.config, rn.EPS_KEYS[arch]) == info["eps"]
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, frozen, atol=1e-5, rtol=1e-5)
    assert rn.fixed_scale_info(tiny(arch).config) is None


@pytest.mark.parametrize("arch", CONFIGS)
def test_eps_keeps_float16_weights_finite(arch):
    _, _, twin, _ = frozen_and_twin(arch)
    eps = rn.fixed_scale_info(twin.config)["eps"]
    assert math.log(eps, 4) == int(math.log(eps, 4))  # a power of 4: sqrt(E) is exact
    biggest = max(float(m.weight.detach().abs().max()) for _, m in rn.norm_modules(twin))
    assert rn.FP16_LIMIT / 4 <= biggest < rn.FP16_LIMIT  # the largest E under the bound, not a smaller one
    assert torch.isfinite(torch.cat([m.weight.half() for _, m in rn.norm_modules(twin)])).all()
    assert rn.fixed_scale_info(twin.config)["rel_error"] < rn.MAX_REL_ERROR
    with pytest.raises(Exception, match="error below"):  # a scale range no single E can serve
        rn.choose_eps({"a": 1e-3, "b": 1e3}, {"a": 1.0, "b": 1.0})


@pytest.mark.parametrize("arch", CONFIGS)
def test_each_norm_of_a_twin_is_affine(arch):
    _, _, twin, original = frozen_and_twin(arch)
    info = rn.fixed_scale_info(twin.config)

    def affine_gap(module, scale) -> float:
        g = torch.Generator().manual_seed(2)
        x, y = (torch.randn(5, 24, generator=g) * scale for _ in range(2))
        with torch.no_grad():
            return max(float((module(t * x + (1 - t) * y) - (t * module(x) + (1 - t) * module(y))).abs().max()
                             / module(x).abs().max()) for t in (0.3, 2.5, -1.0))

    for (name, module), (_, before) in zip(rn.norm_modules(twin), rn.norm_modules(original)):
        scale = info["scales"][name]
        assert affine_gap(module, scale) < 1e-5, name
        assert affine_gap(before, scale) > 1e-2, name  # a real norm is not affine: the test can fail


def components_sum_gap(model, ids) -> float:
    """Max |logits - (sum of lm_head(N(c) - N(0)) over residual components c + lm_head(N(0)))|, relative."""
    blocks = model.transformer.h if hasattr(model, "transformer") else model.model.layers
    final = model.transformer.ln_f if hasattr(model, "transformer") else model.model.norm
    parts = []
    hooks = [b.register_forward_hook(lambda m, args, out: parts.append((out[0] if isinstance(out, tuple) else out)
                                                                        - args[0])) for b in blocks]
    embed = []
    hooks.append(blocks[0].register_forward_pre_hook(lambda m, args: embed.append(args[0])))
    with torch.no_grad():
        logits = model(ids).logits
        zero = final(torch.zeros_like(embed[0]))
        total = model.lm_head(zero) + sum(model.lm_head(final(c) - zero) for c in embed + parts)
    for h in hooks:
        h.remove()
    return float((total - logits).abs().max() / logits.abs().max())


@pytest.mark.parametrize("arch", CONFIGS)
def test_residual_components_add_up_through_the_final_norm(arch):
    ids, _, twin, original = frozen_and_twin(arch)
    assert components_sum_gap(twin, ids) < 1e-5
    assert components_sum_gap(original, ids) > 1e-2


def test_norm_order_and_schedule():
    names = [name for name, _ in rn.norm_modules(tiny("gpt2"))]
    assert names == ["transformer.h.0.ln_2", "transformer.h.1.ln_2", "transformer.h.0.ln_1", "transformer.h.1.ln_1",
                     "transformer.ln_f"]
    llama = [name for name, _ in rn.norm_modules(tiny("llama"))]
    assert llama[0] == "model.layers.0.post_attention_layernorm" and llama[-1] == "model.norm"
    assert rn.schedule(5, 7) == [7, 14, 21, 28, 35]
    assert [rn.frozen_count(s, 5, 7) for s in (0, 6, 7, 13, 14, 34, 35, 99)] == [0, 0, 1, 1, 2, 4, 5, 5]


def test_bad_models_are_usage_errors():
    model = tiny("gpt2")
    for i in range(2):
        model.transformer.h[i].ln_1 = model.transformer.h[i].ln_2 = torch.nn.Identity()
    model.transformer.ln_f = torch.nn.Identity()
    with pytest.raises(UsageError, match="has no normalisation layers"):
        rn.norm_modules(model)
    _, _, twin, _ = frozen_and_twin("gpt2")
    with pytest.raises(UsageError, match="already a fixed-scale twin"):
        rn.RemoveNormTrainable(twin, 5)


def test_remove_norm_without_base_is_one_line(corpora, tmp_path, cli):
    status, _, err = cli(train_main, "--data", corpora / "sql", "--objective", "remove-norm", "--out", tmp_path / "x")
    assert "fine-tunes a trained model: give --base" in one_line_error(status, err)
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def twin_run(corpora, tmp_path_factory):
    """A tiny llama trained 4 steps on `sql`, then made a twin with --remove-every 3 (5 norms, 20 steps)."""
    root = tmp_path_factory.mktemp("twin")
    quiet = ["--no-progress", "--log-every", "1", "--batch-size", "4"]
    assert train_main(["--data", str(corpora / "sql"), "--preset", "tiny", "--arch", "llama", "--layers", "2",
                       "--max-steps", "4", "--no-eval", "--out", str(root / "base"), *quiet]) == 0
    assert train_main(["--data", str(corpora / "sql"), "--base", str(root / "base"), "--objective", "remove-norm",
                       "--remove-every", "3", "--max-steps", "20", "--lr", "1e-4", "--eval-limit", "2",
                       "--out", str(root / "twin"), *quiet]) == 0
    return root / "twin"


def test_run_freezes_norms_in_order_and_saves_a_twin(twin_run):
    log = [json.loads(line) for line in (twin_run / "log.jsonl").read_text().splitlines()]
    steps = [e for e in log if "loss" in e]
    assert [e["step"] for e in steps] == list(range(1, 21))
    order = [name for name, _ in rn.norm_modules(AutoModelForCausalLM.from_pretrained(twin_run))]
    for entry in steps:  # the entry of step s (1-based) holds the norms frozen during 0-based step s - 1
        assert entry["norms_frozen"] == order[:min((entry["step"] - 1) // 3, 5)]
    assert steps[2]["norms_frozen"] == [] and steps[3]["norms_frozen"] == order[:1]
    assert steps[14]["norms_frozen"] == order[:4] and steps[15]["norms_frozen"] == order
    info = rn.fixed_scale_info(twin_run)
    assert set(info["scales"]) == set(order) and all(s > 0 for s in info["scales"].values())
    metrics = json.loads((twin_run / "metrics.json").read_text())
    assert {"loss", "base_loss", "loss_increase", "exact_match", "base_exact_match"} <= set(metrics)
    assert metrics["loss_increase"] == pytest.approx(metrics["loss"] - metrics["base_loss"])


def test_too_few_steps_is_one_line(twin_run, corpora, tmp_path, cli):
    base = twin_run.parent / "base"
    status, _, err = cli(train_main, "--data", corpora / "sql", "--base", base, "--objective", "remove-norm",
                         "--remove-every", "10", "--max-steps", "20", "--out", tmp_path / "y", "--no-progress")
    assert "cannot remove 5 norms every 10 steps" in one_line_error(status, err)


def test_a_recipe_row_names_its_base_row(tmp_path):
    from cards import recipe
    from cards.errors import IntegrityError

    rows = {r.name: r for r in recipe.read_recipe()}
    twins = [r for r in rows.values() if r.name.endswith("-lnfree")]
    assert {r.base for r in twins} == {"tinysql-l1-nano", "multmath-3x3-aux-nano", "multmath-3x3-nocot-nano",
                                       "multmath-3x3-icot-nano"}
    for row in twins:
        assert row.tier == rows[row.base].tier == "cpu" and row.corpus == rows[row.base].corpus
        argv = row.train_argv(tmp_path / "c", tmp_path / "o")
        assert argv[argv.index("--base") + 1] == row.base and row.objective == "remove-norm"
    good = {"corpora": {"c": "multmath-gen --digits 2x2 -n 100"},
            "checkpoints": [{"name": "a", "tier": "gpu", "corpus": "c", "train": "--preset tiny"}]}
    for extra, fault in [({"base": "zz", "train": ""}, "base 'zz' is not an earlier row"),
                         ({"base": "a", "train": "--preset tiny"}, "takes no --preset"),
                         ({"base": "a", "train": "", "tier": "cpu"}, "a cpu row's base must be a cpu row"),
                         ({"train": "--base a"}, "--base is zoo build's to decide")]:
        bad = json.loads(json.dumps(good))
        bad["checkpoints"].append({"name": "b", "tier": "gpu", "corpus": "c", **extra})
        (tmp_path / "r.json").write_text(json.dumps(bad))
        with pytest.raises(IntegrityError, match=fault):
            recipe.read_recipe(tmp_path / "r.json")
