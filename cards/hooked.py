"""TransformerLens models of zoo checkpoints: `load_hooked(NAME_OR_DIR)`, re-exported by `cards.zoo`.

A zoo NAME is got as `cards.zoo.download` gets it (local cache, shipped copy, Hub; sha256-checked); a
folder is any checkpoint that `AutoModelForCausalLM.from_pretrained` loads. TransformerLens is an
optional extra (`pip install 'interp-zoo[interp]'`); without it `load_hooked` raises a UsageError.

- TransformerLens 3 and later (pip gives 4.x): a `TransformerBridge` around the transformers model
  (`boot_transformers` on the folder). Its generation with the KV cache diverges from the model's (a
  TransformerLens bug, seen in 4.3), so this bridge's `generate` defaults to `use_past_kv_cache=False`.
- TransformerLens 2.x (no bridge): a `HookedTransformer` built from the checkpoint's own config
  (`hooked_config`: any size, grouped-query attention, rotary settings, GPT-Neo's local attention) and
  its weights converted by TransformerLens' converter for the family, with no Hub access. gpt2, gpt-neo,
  llama and qwen2, the zoo's families (`train.presets.ARCHS`).

Either way the weights are not processed (no LayerNorm folding or centring), so logits and hook
activations are the transformers model's, and `default_prepend_bos` is what the checkpoint was trained
with: the tokenizer's own special tokens (`adds_bos`), which for a tokenizer trained from scratch is no
BOS (a BOS the model never saw moves its outputs).

A LayerNorm-free twin (config marker `interp_zoo_norm`, `train.remove_norm`) loads with normalisation off
(`fix_scales`): every norm computes the affine map it stands for, (x - mean) / s * w + b (LayerNorm) or
x / s * w (RMSNorm), with no statistic of x. Its `hook_scale` reads the constant s (a permanent hook, so
`cache.apply_ln_to_stack` divides by s) and its `w` is the trained weight (the checkpoint's w*sqrt(E)/s
times s/sqrt(E)), so the shipped huge epsilon E plays no part. The same on both TransformerLens majors:
4.x has no HookedTransformer, and its config-built native model lacks GPT-Neo's local attention, GPT-2's
per-layer attention scaling and an unembedding bias, so the bridge keeps its norm modules, now affine.
Direct logit attribution through the final norm is then exact (`cards.dla`).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from cards.errors import IntegrityError, UsageError

EXTRA = "pip install 'interp-zoo[interp]'"
# TransformerLens 2.x weight converters by transformers model_type
CONVERTERS = {"gpt2": "convert_gpt2_weights", "gpt_neo": "convert_neo_weights", "llama": "convert_llama_weights",
              "qwen2": "convert_qwen2_weights"}
# transformers names of the norm before attention, before the MLP (layer {}) and the final norm, by model_type
NORM_NAMES = {"gpt2": ("transformer.h.{}.ln_1", "transformer.h.{}.ln_2", "transformer.ln_f"),
              "gpt_neo": ("transformer.h.{}.ln_1", "transformer.h.{}.ln_2", "transformer.ln_f"),
              "llama": ("model.layers.{}.input_layernorm", "model.layers.{}.post_attention_layernorm", "model.norm"),
              "qwen2": ("model.layers.{}.input_layernorm", "model.layers.{}.post_attention_layernorm", "model.norm")}


def load_hooked(name_or_dir: str | Path, device: str | None = None, dtype=None):
    """A TransformerLens model of a zoo checkpoint (NAME) or a checkpoint folder (DIR), in float32 unless
    `dtype` says otherwise: a `TransformerBridge` (TransformerLens 3+) or a `HookedTransformer` (2.x)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lens = _transformer_lens()
    folder = checkpoint_folder(name_or_dir)
    dtype = dtype or torch.float32
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if hasattr(lens, "TransformerBridge"):
        model = lens.TransformerBridge.boot_transformers(str(folder), dtype=dtype, tokenizer=tokenizer, device=device)
        model.generate = _without_kv_cache(model.generate)
    else:
        hf = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        model = hooked_transformer(lens, hf, tokenizer, device, dtype)
    model.cfg.default_prepend_bos = adds_bos(tokenizer)
    fix_scales(model, json.loads((folder / "config.json").read_text(encoding="utf-8")))
    return model


def checkpoint_folder(name_or_dir: str | Path) -> Path:
    """The folder of a checkpoint: DIR itself (it must hold a config.json), else the zoo checkpoint NAME."""
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(f"{path}: not a checkpoint folder (no config.json)")
        return path
    if path.exists() or "/" in str(name_or_dir) or str(name_or_dir).startswith((".", "~")):
        raise UsageError(f"{name_or_dir}: no such checkpoint folder")
    from cards.zoo import download

    return download(str(name_or_dir))


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts a BOS in front of a text (its own special tokens, as training used them)."""
    with_special = tokenizer("a")["input_ids"]
    return (tokenizer.bos_token_id is not None and with_special[:1] == [tokenizer.bos_token_id]
            and len(with_special) > len(tokenizer("a", add_special_tokens=False)["input_ids"]))


def fix_scales(model, config: dict) -> None:
    """Normalisation off in a hooked model of a twin (`config` is its config.json; nothing for another model):
    each norm's `hook_scale` gets a permanent hook returning its fixed scale s and its weight is multiplied
    by s/sqrt(E). IntegrityError if the marker does not name exactly the model's norms."""
    import torch

    from train.remove_norm import fixed_scale_info

    info = fixed_scale_info(config)
    if info is None:
        return
    modules = hooked_norms(model, config.get("model_type"))
    scales = info.get("scales") or {}
    if set(scales) != set(modules):
        raise IntegrityError(f"twin marker: its scales name {', '.join(sorted(set(scales) ^ set(modules))[:3])}, "
                             "not the model's norms")
    for name, module in modules.items():
        scale = float(scales[name])
        with torch.no_grad():
            module.w.mul_(scale / math.sqrt(float(info["eps"])))
        module.hook_scale.add_perma_hook(functools.partial(_constant, scale=scale))
        if getattr(module, "use_native_layernorm_autograd", False):
            module.use_native_layernorm_autograd = False  # the bridge's own arithmetic, which reads hook_scale


def hooked_norms(model, kind: str | None) -> dict:
    """{transformers module name: the hooked model's norm module} (blocks.i.ln1, blocks.i.ln2, ln_final)."""
    if kind not in NORM_NAMES:
        raise IntegrityError(f"twin marker on a {kind} model; twins are {', '.join(NORM_NAMES)}")
    attention, mlp, final = NORM_NAMES[kind]
    modules = {final: model.ln_final}
    for i, block in enumerate(model.blocks):
        modules |= {attention.format(i): block.ln1, mlp.format(i): block.ln2}
    return modules


def _constant(value, hook, scale: float):
    import torch

    return torch.full_like(value, scale)


def _transformer_lens():
    try:
        import transformer_lens
    except ImportError as err:
        raise UsageError(f"load_hooked needs TransformerLens, an optional extra: {EXTRA}") from err
    return transformer_lens


def _without_kv_cache(generate):
    """`generate` with `use_past_kv_cache=False` unless the caller passes it."""

    @functools.wraps(generate)
    def call(*args, use_past_kv_cache: bool = False, **kwargs):
        return generate(*args, use_past_kv_cache=use_past_kv_cache, **kwargs)

    return call


# --- TransformerLens 2.x --------------------------------------------------------------------------


def hooked_transformer(lens, hf, tokenizer, device, dtype):
    """A HookedTransformer with the weights of the transformers model `hf`, unprocessed."""
    from transformer_lens import pretrained

    kind = hf.config.model_type
    if kind not in CONVERTERS:
        raise UsageError(f"load_hooked: no TransformerLens 2.x converter for a {kind} model (known: "
                         f"{', '.join(CONVERTERS)}); TransformerLens 3+ loads more: pip install -U transformer-lens")
    cfg = lens.HookedTransformerConfig(**hooked_config(hf.config), dtype=dtype, device=device or "cpu",
                                       original_architecture=hf.config.architectures[0])
    state = getattr(pretrained.weight_conversions, CONVERTERS[kind])(hf, cfg)
    model = lens.HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=True)
    model.load_and_process_state_dict(state, fold_ln=False, center_writing_weights=False, center_unembed=False,
                                      fold_value_biases=False, refactor_factored_attn_matrices=False)
    return model


def hooked_config(config) -> dict:
    """HookedTransformerConfig settings for a transformers config of the zoo's families, read from the
    config itself (sizes, norms, positions, activation) rather than from TransformerLens' table of named
    models."""
    kind = config.model_type
    if kind == "gpt2":
        return dict(d_model=config.n_embd, n_heads=config.n_head, d_head=config.n_embd // config.n_head,
                    d_mlp=config.n_inner or 4 * config.n_embd, n_layers=config.n_layer, n_ctx=config.n_positions,
                    d_vocab=config.vocab_size, eps=config.layer_norm_epsilon, act_fn=config.activation_function,
                    normalization_type="LN", positional_embedding_type="standard",
                    scale_attn_by_inverse_layer_idx=config.scale_attn_by_inverse_layer_idx)
    if kind == "gpt_neo":
        return dict(d_model=config.hidden_size, n_heads=config.num_heads, d_head=config.hidden_size // config.num_heads,
                    d_mlp=config.intermediate_size or 4 * config.hidden_size, n_layers=config.num_layers,
                    n_ctx=config.max_position_embeddings, d_vocab=config.vocab_size, eps=config.layer_norm_epsilon,
                    act_fn=config.activation_function, normalization_type="LN", positional_embedding_type="standard",
                    attn_types=list(config.attention_layers), use_local_attn=True, window_size=config.window_size,
                    use_attn_scale=False)  # GPT-Neo does not divide attention scores by sqrt(d_head)
    d_head = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kv = config.num_key_value_heads
    return dict(d_model=config.hidden_size, n_heads=config.num_attention_heads, d_head=d_head,
                n_key_value_heads=kv if kv != config.num_attention_heads else None, d_mlp=config.intermediate_size,
                n_layers=config.num_hidden_layers, n_ctx=config.max_position_embeddings, d_vocab=config.vocab_size,
                eps=config.rms_norm_eps, act_fn=config.hidden_act, normalization_type="RMS", final_rms=True,
                gated_mlp=True, positional_embedding_type="rotary", rotary_dim=d_head, rotary_adjacent_pairs=False,
                **_rope(config))


def _rope(config) -> dict:
    """Rotary base and llama3 frequency scaling, from `rope_parameters` (transformers 5) or `rope_theta` and
    `rope_scaling` (transformers 4)."""
    rope = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10_000.0))
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind == "default":
        return {"rotary_base": theta}
    if kind != "llama3":
        raise UsageError(f"load_hooked: TransformerLens 2.x has no {kind!r} rotary scaling")
    return {"rotary_base": theta, "use_NTK_by_parts_rope": True, "NTK_by_parts_factor": rope["factor"],
            "NTK_by_parts_low_freq_factor": rope["low_freq_factor"],
            "NTK_by_parts_high_freq_factor": rope["high_freq_factor"],
            "NTK_original_ctx_len": rope["original_max_position_embeddings"]}
