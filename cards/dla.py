"""Direct logit attribution (DLA) on a TransformerLens model of a zoo checkpoint (`cards.zoo.load_hooked`).

`decompose` splits the residual stream that enters the final norm into the pieces written by each
component: the token embedding, the position embedding (absolute positions only), every attention head
(its `hook_z` times its rows of W_O), each attention layer's output bias, each MLP (its output less its
bias) and each MLP's output bias. `attribute` maps each piece c through the model's own final map
f(x) = unembed(ln_final(x)) on its own: DLA(c) = f(c) - f(0), plus one last row, the constant f(0) (the
final norm's bias and the unembedding bias). Each attribution depends on its piece alone, and the rows
sum to f(sum of pieces), the logits, exactly when f is affine: for a LayerNorm-free twin (whose norms
`load_hooked` makes affine), not for a model with real normalisation, whose final norm divides by a
statistic of the whole residual stream. Works on a TransformerBridge (TransformerLens 3+) and on a
HookedTransformer (2.x).
"""

from __future__ import annotations

import torch

CONSTANT = "final bias"


def decompose(model, tokens: torch.Tensor) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(labels, pieces [n, batch, pos, d_model] summing to the final residual stream, logits) for `tokens`."""
    cfg = model.cfg
    names = ["hook_embed"] + (["hook_pos_embed"] if cfg.positional_embedding_type == "standard" else [])
    names += [f"blocks.{i}.{hook}" for i in range(cfg.n_layers) for hook in ("attn.hook_z", "hook_mlp_out")]
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    labels, pieces = ["embed"], [cache["hook_embed"]]
    if "hook_pos_embed" in names:
        labels, pieces = labels + ["pos_embed"], pieces + [cache["hook_pos_embed"]]
    for i, block in enumerate(model.blocks):
        z = cache[f"blocks.{i}.attn.hook_z"]  # [batch, pos, head, d_head]; W_O is [head, d_head, d_model]
        heads = torch.einsum("bphk,hkd->hbpd", z, block.attn.W_O.to(z.dtype))
        b_o, b_out = _bias(block.attn, "b_O", z, cfg.d_model), _bias(block.mlp, "b_out", z, cfg.d_model)
        labels += [f"L{i}H{h}" for h in range(len(heads))] + [f"L{i} attn bias", f"L{i} mlp", f"L{i} mlp bias"]
        pieces += [*heads, b_o, cache[f"blocks.{i}.hook_mlp_out"] - b_out, b_out]
    return labels, torch.stack(pieces), logits


def attribute(model, pieces: torch.Tensor) -> torch.Tensor:
    """DLA [n + 1, batch, pos, vocab]: f(c) - f(0) for each piece c, then the constant f(0)."""
    n, batch, pos, width = pieces.shape
    with torch.no_grad():
        mapped = _final_map(model, torch.cat([pieces, torch.zeros_like(pieces[:1])]).reshape(-1, pos, width))
    mapped = mapped.reshape(n + 1, batch, pos, -1)
    return torch.cat([mapped[:-1] - mapped[-1:], mapped[-1:]])


def attribution(model, tokens: torch.Tensor) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(labels with CONSTANT last, DLA [n + 1, batch, pos, vocab], logits) of `tokens`."""
    labels, pieces, logits = decompose(model, tokens)
    return labels + [CONSTANT], attribute(model, pieces), logits


def _final_map(model, x: torch.Tensor) -> torch.Tensor:
    return model.unembed(model.ln_final(x))


def _bias(module, name: str, like: torch.Tensor, width: int) -> torch.Tensor:
    """A layer's output bias (zeros where the family has none: the bridge gives None) as [batch, pos, width]."""
    bias = getattr(module, name, None)
    bias = torch.zeros(width) if bias is None else bias
    return bias.to(like.dtype).expand(like.shape[:2] + (width,))
