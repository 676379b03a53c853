"""TransformerLens and transformers 4.x compatibility: `cards.zoo.load_hooked` on tiny models of every
family (built from config with non-standard sizes and saved by the trainer's own save path) gives the
transformers model's logits and generations without a BOS; the aux heads' reading of a trained run
is reproduced from `hook_z`; saved checkpoints name a tokenizer class and rotary keys that transformers 4.x
reads; nnsight traces, ablates and generates on a checkpoint. The TransformerLens and nnsight tests skip
where they are not installed (the `interp` extra)."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cards.errors import UsageError
from cards.hooked import adds_bos, checkpoint_folder
from cards.zoo import load_hooked
from train import aux, presets
from train.aux import AuxHeads
from train.tokenizer import PORTABLE_CLASS, train_tokenizer

from conftest import TINY_TEXTS as TEXTS
from conftest import saved_tiny_model

PROMPT = "SELECT id FROM users WHERE name = 7 * 8"
# shapes no published model has: odd widths, grouped-query attention, a local window shorter than the
# prompt, a rotary base and llama3 scaling other than transformers 4's defaults, an untied output matrix
SHAPES = {
    "gpt2": dict(hidden=48, heads=3, mlp=80),
    "gpt-neo": dict(layers=3, hidden=48, heads=4, mlp=96, window=4),
    "llama": dict(hidden=96, heads=6, kv_heads=3, mlp=160, rope_theta=5e5, llama3_rope=True, tied=False),
    "qwen2": dict(hidden=48, heads=4, kv_heads=2, mlp=80, rope_theta=1e6, norm_eps=1e-6),
}


def tiny(folder, arch: str, digits: bool = False):
    """A random model of family `arch` saved by the trainer's save path (`conftest.saved_tiny_model`)."""
    saved_tiny_model(folder, arch, SHAPES[arch], seed=1, noise=0.1, digits=digits)
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {arch: tiny(root / arch, arch) for arch in presets.ARCHS}


@pytest.fixture(scope="module")
def lens():
    return pytest.importorskip("transformer_lens")


# transformers 4.x can read what the trainer saves (checked by hand under transformers 4.57)


@pytest.mark.parametrize("digits", [False, True])
def test_saved_tokenizer_names_a_class_every_admitted_transformers_loads(tmp_path, digits):
    folder = tiny(tmp_path / "m", "llama", digits)
    saved = json.loads((folder / "tokenizer_config.json").read_text())
    assert saved["tokenizer_class"] == PORTABLE_CLASS == "PreTrainedTokenizerFast"
    again = AutoTokenizer.from_pretrained(folder)
    fresh = train_tokenizer(TEXTS, digits=digits, vocab_size=300)
    for text in TEXTS[:3]:
        assert again(text)["input_ids"] == fresh(text)["input_ids"]
    assert (again.pad_token, again.eos_token, again.bos_token) == ("<|pad|>", "<|endoftext|>", "<|endoftext|>")


def test_saved_config_repeats_the_rotary_settings_under_transformers_4_keys(checkpoints):
    llama = json.loads((checkpoints["llama"] / "config.json").read_text())
    assert llama["rope_theta"] == llama["rope_parameters"]["rope_theta"] == 5e5
    assert llama["rope_scaling"] == {k: v for k, v in llama["rope_parameters"].items() if k != "rope_theta"}
    assert llama["rope_scaling"]["rope_type"] == "llama3"
    qwen2 = json.loads((checkpoints["qwen2"] / "config.json").read_text())
    assert qwen2["rope_theta"] == 1e6 and "rope_scaling" not in qwen2
    assert "rope_theta" not in json.loads((checkpoints["gpt2"] / "config.json").read_text())
    reloaded = AutoModelForCausalLM.from_pretrained(checkpoints["llama"]).config.rope_parameters
    assert reloaded == llama["rope_parameters"]  # transformers 5 reads the same settings back


# load_hooked: bad input


def test_without_transformer_lens_load_hooked_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformer_lens", None)  # import transformer_lens now raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'interp-zoo\[interp\]'") as caught:
        load_hooked("tinysql-l1-nano")
    assert "\n" not in str(caught.value)


def test_a_name_or_folder_that_is_not_a_checkpoint_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such checkpoint folder"):
        checkpoint_folder(tmp_path / "missing")
    with pytest.raises(UsageError, match="not a checkpoint folder"):
        checkpoint_folder(tmp_path)
    with pytest.raises(UsageError, match="unknown checkpoint 'tinysql-l9'"):
        checkpoint_folder("tinysql-l9")


def test_bos_is_prepended_only_for_a_tokenizer_that_adds_one():
    from tokenizers import processors

    tokenizer = train_tokenizer(TEXTS, digits=False, vocab_size=300)
    assert not adds_bos(tokenizer)
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", tokenizer.bos_token_id)])
    assert adds_bos(tokenizer)


# load_hooked: the transformers model's numbers


@pytest.mark.parametrize("arch", presets.ARCHS)
def test_hooked_logits_and_generation_equal_the_transformers_model(lens, checkpoints, arch):
    folder = checkpoints[arch]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model = load_hooked(folder)
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    assert not adds_bos(tokenizer) and model.cfg.default_prepend_bos is False
    assert model.to_tokens(PROMPT).tolist() == ids.tolist()  # no BOS: what the model was trained on
    with torch.no_grad():
        expected = hf(ids).logits
        assert torch.allclose(model(ids), expected, atol=1e-5, rtol=1e-4)
        assert torch.allclose(model(PROMPT), expected, atol=1e-5, rtol=1e-4)
    new = 6
    text = model.generate(PROMPT, max_new_tokens=new, do_sample=False, stop_at_eos=False, verbose=False)
    greedy = hf.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False)
    assert text == tokenizer.decode(greedy[0])


def test_a_zoo_name_loads_its_verified_shipped_copy(lens):
    from cards import zoo

    entry = zoo.find("multmath-3x3-aux-nano")
    if not (entry and zoo.shipped_copy(entry)):
        pytest.skip("no shipped copy of multmath-3x3-aux-nano here")
    hf, tokenizer = zoo.load("multmath-3x3-aux-nano")
    model = load_hooked("multmath-3x3-aux-nano")
    ids = tokenizer("1 2 3 * 4 5 6 ||", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model(ids), hf.float()(ids).logits, atol=1e-4, rtol=1e-4)


def aux_readings(folder, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The saved aux heads' predictions at every position of `texts`: by the trainer's AuxHeads on the
    transformers model, and from TransformerLens' hook_z of the same heads ([batch, position, head] each)."""
    saved = aux.load(folder)
    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    trainer = AuxHeads(hf, saved.layer, saved.heads, saved.scale)
    trainer.load_state_dict({"weight": saved.weight, "scale": torch.tensor(saved.scale)})
    ids = AutoTokenizer.from_pretrained(folder)(texts, return_tensors="pt")["input_ids"]
    hook = f"blocks.{saved.layer}.attn.hook_z"
    with torch.no_grad():
        hf(ids)
        expected = trainer.predict(torch.arange(ids.shape[1]).expand(len(texts), -1))
        _, cache = load_hooked(folder).run_with_cache(ids, names_filter=hook)
    z = cache[hook][:, :, saved.heads]  # [batch, position, chosen head, d_head]
    return (z * saved.weight).sum(-1), expected


def test_the_aux_heads_reading_is_reproduced_from_hook_z(lens, corpora, tmp_path):
    from train.cli import train_main

    out = tmp_path / "aux"
    assert train_main(["--data", str(corpora / "mm"), "--preset", "tiny", "--objective", "aux", "--aux-heads", "1,3",
                       "--max-steps", "3", "--batch-size", "16", "--no-eval", "--no-progress", "--out", str(out)]) == 0
    assert (aux.load(out).layer, aux.load(out).heads) == (1, [1, 3])
    read, expected = aux_readings(out, ["1 2 * 3 4 || #### 4 0 8 0", "9 9 * 9 9 || #### 1 0 8 9"])
    assert read.shape == expected.shape and (read.shape[0], read.shape[2]) == (2, 2) and expected.abs().max() > 0
    assert torch.allclose(read, expected, atol=1e-5, rtol=1e-4)


def test_the_shipped_aux_models_reading_is_reproduced_from_hook_z(lens):
    from cards import zoo

    entry = zoo.find("multmath-3x3-aux-nano")
    if not (entry and zoo.shipped_copy(entry)):
        pytest.skip("no shipped copy of multmath-3x3-aux-nano here")
    read, expected = aux_readings(zoo.download("multmath-3x3-aux-nano"), ["1 2 3 * 4 5 6 || #### 4 0 8 0 6 0"])
    assert torch.allclose(read, expected, atol=1e-4, rtol=1e-4) and expected.abs().max() > 0.1


def test_nnsight_traces_ablates_and_generates_on_a_checkpoint(checkpoints):
    """The README's nnsight example on a tiny llama: a trace gives the model's logits, zeroing head 0 of
    the last layer's attention output gives what the same ablation by a torch hook gives, and generation
    is the model's greedy decoding."""
    nnsight = pytest.importorskip("nnsight")
    folder = checkpoints["llama"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model = nnsight.LanguageModel(folder, tokenizer=tokenizer, dtype=torch.float32)  # TransformersModel from 0.8 on
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    d_head = hf.config.head_dim
    with model.trace(PROMPT):
        logits = model.lm_head.output.save()
    with model.trace(PROMPT):
        model.model.layers[1].self_attn.o_proj.input[:, :, :d_head] = 0
        ablated = model.lm_head.output.save()

    def zero_head_0(module, inputs):
        return (torch.cat([torch.zeros_like(inputs[0][..., :d_head]), inputs[0][..., d_head:]], -1),)

    with torch.no_grad():
        assert torch.allclose(logits, hf(ids).logits, atol=1e-6)
        hook = hf.model.layers[1].self_attn.o_proj.register_forward_pre_hook(zero_head_0)
        expected = hf(ids).logits
        hook.remove()
    assert torch.allclose(ablated, expected, atol=1e-6) and not torch.allclose(ablated, logits, atol=1e-3)
    with model.generate(PROMPT, max_new_tokens=6, min_new_tokens=6, do_sample=False) as tracer:
        tokens = tracer.result.save()
    assert tokens.tolist() == hf.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=False).tolist()
