"""Model shapes for training from scratch: the presets, the families they can be built in, and
exact parameter counts.

A preset is a shape (layers, width, heads, MLP width, context); `--arch` picks the family it is
built in. `nano` (2 layers, 256 wide, 4 heads, rotary positions) learns TinySQL level 1 to 0.92
exact match in 6,000 steps (88 min on one CPU thread), and to 0.958 with 6,000 more
(`tinysql-l1-nano-long`): per second of CPU it learned the column-copying order faster than the
4-layer GPT-2 and llama shapes that were tried, and than a 3-layer, 8-head shape of the same width.
The large presets mirror published models: `33m` is TinyStories-33M (GPT-Neo, 4 layers, 768 wide, 16
heads, alternating global/local attention), `0.5b` is Qwen2.5-0.5B (24 layers, 896 wide, 14 query
and 2 key/value heads) and `1b` is Llama-3.2-1B (16 layers, 2048 wide, 32 query and 8 key/value
heads). Their vocabulary is the one of the tokenizer trained on the corpus, so the embedding
matrices (and the total count) are smaller than the originals'; `parameter_counts` gives the exact
numbers written in the model card. Dropout is off everywhere: runs are reproducible and resumable
bit for bit. Each preset also carries the peak learning rate a run uses unless it is given one
(`BASE_LR` when fine-tuning a `--base` model). Importing this module loads neither torch nor
transformers (the run settings, `train.config`, read the preset names from it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

ARCHS = ("gpt2", "gpt-neo", "llama", "qwen2")
BASE_LR = 2e-5  # the default peak learning rate when fine-tuning a --base model


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    mlp: int
    context: int
    arch: str  # the family used when --arch is not given
    lr: float  # the default peak learning rate
    kv_heads: int | None = None  # grouped-query attention (llama, qwen2); None = as many as heads
    tied: bool = True  # input and output embeddings share one matrix
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    window: int = 256  # gpt-neo local attention window
    llama3_rope: bool = False


PRESETS = {
    "tiny": Shape(layers=2, hidden=64, heads=4, mlp=256, context=512, arch="gpt2", lr=1e-3),
    "nano": Shape(layers=2, hidden=256, heads=4, mlp=1024, context=1024, arch="llama", lr=1e-3),
    "33m": Shape(layers=4, hidden=768, heads=16, mlp=3072, context=2048, arch="gpt-neo", lr=6e-4),
    "0.5b": Shape(layers=24, hidden=896, heads=14, kv_heads=2, mlp=4864, context=32768, arch="qwen2", lr=3e-4,
                  rope_theta=1_000_000.0, norm_eps=1e-6),
    "1b": Shape(layers=16, hidden=2048, heads=32, kv_heads=8, mlp=8192, context=131072, arch="llama", lr=3e-4,
                rope_theta=500_000.0, norm_eps=1e-5, llama3_rope=True),
}


def shape(preset: str, layers: int | None = None, hidden: int | None = None, heads: int | None = None) -> Shape:
    """The preset's shape with optional overrides (the MLP stays 4x wide when the width changes)."""
    base = PRESETS[preset]
    changes = {k: v for k, v in (("layers", layers), ("hidden", hidden), ("heads", heads)) if v is not None}
    if hidden is not None:
        changes["mlp"] = 4 * hidden
    if heads is not None and base.kv_heads is not None and heads % base.kv_heads:
        changes["kv_heads"] = heads
    result = replace(base, **changes)
    if result.hidden % result.heads:
        raise ValueError(f"the width ({result.hidden}) must be a multiple of the number of heads ({result.heads})")
    return result


def config(s: Shape, arch: str, vocab_size: int, bos: int, eos: int, pad: int):
    """The transformers config of shape `s` built in family `arch`."""
    from transformers import GPT2Config, GPTNeoConfig, LlamaConfig, Qwen2Config

    ids = dict(vocab_size=vocab_size, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
               tie_word_embeddings=s.tied)
    if arch == "gpt2":
        return GPT2Config(n_layer=s.layers, n_embd=s.hidden, n_head=s.heads, n_inner=s.mlp, n_positions=s.context,
                          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=s.norm_eps, **ids)
    if arch == "gpt-neo":
        return GPTNeoConfig(num_layers=s.layers, hidden_size=s.hidden, num_heads=s.heads, intermediate_size=s.mlp,
                            max_position_embeddings=s.context, window_size=s.window,
                            attention_types=_neo_attention(s.layers),
                            embed_dropout=0.0, attention_dropout=0.0, resid_dropout=0.0,
                            layer_norm_epsilon=s.norm_eps, **ids)
    common = dict(num_hidden_layers=s.layers, hidden_size=s.hidden, num_attention_heads=s.heads,
                  num_key_value_heads=s.kv_heads or s.heads, intermediate_size=s.mlp,
                  max_position_embeddings=s.context, rms_norm_eps=s.norm_eps, attention_dropout=0.0, **ids)
    if arch == "llama":
        # rope_theta / rope_scaling: transformers 5 reads them into rope_parameters, and 4.x (which
        # ignores rope_parameters and would silently use base 10000) reads them as they are
        scaling = None
        if s.llama3_rope:
            scaling = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192}
        return LlamaConfig(rope_theta=s.rope_theta, rope_scaling=scaling, **common)
    if arch == "qwen2":
        return Qwen2Config(rope_theta=s.rope_theta, **common)
    raise ValueError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")


def _neo_attention(layers: int) -> list:
    """GPT-Neo's alternating global/local attention (TinyStories-33M: global, local, global, local)."""
    pattern = [[["global", "local"], layers // 2]] if layers > 1 else []
    return pattern + ([[["global"], 1]] if layers % 2 else [])


def build(model_config, seed: int):
    """A freshly initialised model (the same seed gives the same weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(model_config, dtype=torch.float32)


def parameter_counts(model) -> dict[str, int]:
    """Exact counts: total (a tied matrix once), embeddings (token, position, untied output) and the rest."""
    total = sum(p.numel() for p in model.parameters())
    seen, embedding = set(), 0
    modules = [model.get_input_embeddings(), model.get_output_embeddings()]
    modules += [m for name, m in model.named_modules() if name.endswith(("wpe", "embed_positions"))]
    for module in modules:
        if module is not None and id(module.weight) not in seen:
            seen.add(id(module.weight))
            embedding += module.weight.numel()
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding}


def meta_counts(preset: str, arch: str | None = None, vocab_size: int = 4096) -> dict[str, int]:
    """Parameter counts of a preset without allocating its weights (for the card and the tests)."""
    import torch
    from transformers import AutoModelForCausalLM

    s = PRESETS[preset]
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config(s, arch or s.arch, vocab_size, 0, 0, 0))
    return parameter_counts(model)
