"""The running-sum auxiliary loss (Bai et al. 2025): linear regression heads on attention-head outputs.

For each chosen head h of the chosen layer, a weight vector w_h (d_head → 1, no bias) reads that
head's output (the input of the attention's output projection, split into heads) at the position
that predicts answer digit c_k, and regresses the running sum ĉ_k = s_k + ⌊ĉ_{k-1}/10⌋ (the
`running_sums` column of multmath; c_k = ĉ_k mod 10, so that is where ĉ_k is needed). The loss is
the mean squared error over heads, digits and examples; the trainer adds λ times it to the LM loss.
The targets are divided by `scale`, the root mean square of ĉ over the training set (ĉ grows with
the problem size; λ, which the paper does not publish, then means the same at every size): a head
predicts ĉ_k / scale. Defaults: the first two heads of the last layer, λ = 1. The heads and the
scale are saved next to the model as `aux_heads.safetensors` (by the `aux` objective,
`train.objectives`). `targets` gives a micro-batch the read positions and the targets.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cards.errors import UsageError


def output_projection(model, layer: int) -> nn.Module:
    """The attention output projection of block `layer`, whose input is the concatenated head outputs."""
    kind = model.config.model_type
    if kind == "gpt2":
        return model.transformer.h[layer].attn.c_proj
    if kind == "gpt_neo":
        return model.transformer.h[layer].attn.attention.out_proj
    if hasattr(model, "model") and hasattr(model.model, "layers"):  # llama, qwen2 and their relatives
        return model.model.layers[layer].self_attn.o_proj
    raise ValueError(f"the aux loss does not know where the attention heads of a {kind} model are")


def target_scale(running_sums: list[list[int]]) -> float:
    """The root mean square of the running sums (1 if they are all zero)."""
    values = [v for sums in running_sums for v in sums]
    rms = math.sqrt(sum(v * v for v in values) / len(values)) if values else 0.0
    return rms or 1.0


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


class AuxHeads(nn.Module):
    """One regression vector per chosen head; `predict` reads the outputs captured by the hook."""

    def __init__(self, model, layer: int, heads: list[int], scale: float = 1.0):
        super().__init__()
        self.layer, self.heads, self.dim = layer, list(heads), head_dim(model.config)
        bound = 1 / math.sqrt(self.dim)
        self.weight = nn.Parameter(torch.empty(len(heads), self.dim).uniform_(-bound, bound))
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.scale_value = float(scale)  # as computed (the buffer holds it in float32)
        self.captured: torch.Tensor | None = None
        self.hook = output_projection(model, layer).register_forward_pre_hook(self._capture)

    def _capture(self, module, inputs):
        self.captured = inputs[0]

    def predict(self, positions: torch.Tensor) -> torch.Tensor:
        """Predicted ĉ / scale at `positions` [batch, digits]: a tensor [batch, digits, chosen heads]."""
        batch, length, _ = self.captured.shape
        per_head = self.captured.reshape(batch, length, -1, self.dim)[:, :, self.heads]  # [B, T, H, d]
        index = positions[:, :, None, None].expand(-1, -1, len(self.heads), self.dim)
        read = per_head.gather(1, index)  # [B, digits, H, d]
        return (read.float() * self.weight.float()).sum(-1)

    def loss(self, aux_positions: torch.Tensor, aux_targets: torch.Tensor, aux_mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the predictions over heads and the real (unmasked) digits (the arguments are
        the micro-batch's `targets`)."""
        error = (self.predict(aux_positions) - aux_targets[:, :, None] / self.scale) ** 2
        return error[aux_mask].mean()


def check_digit_tokens(data) -> None:
    """The aux loss needs each answer digit to be one token (one running sum per digit token)."""
    for i in range(len(data)):
        tokens = len(data.answer[i]) - data.digits_at[i] - 1
        if tokens != len(data.running_sums[i]):
            raise UsageError("--objective aux needs a tokenizer with one token per answer digit; this one "
                             f"writes {len(data.running_sums[i])} digits in {tokens} tokens")


def targets(data, indices: list[int]) -> dict[str, torch.Tensor]:
    """For the examples `indices` of an encoded split (`train.data.Encoded`, without its CoT): the positions
    that predict each answer digit, the running sums there, and which of them are real (not padding)."""
    positions = []
    for i in indices:
        first = len(data.prompt[i]) + len(data.cot[i]) + data.digits_at[i]
        positions.append([first + k - 1 for k in range(len(data.running_sums[i]))])
    sums = [data.running_sums[i] for i in indices]
    n = max(len(p) for p in positions)
    pos = torch.zeros((len(positions), n), dtype=torch.long)
    tgt = torch.zeros((len(positions), n), dtype=torch.float32)
    mask = torch.zeros((len(positions), n), dtype=torch.bool)
    for j, (p, t) in enumerate(zip(positions, sums)):
        pos[j, :len(p)], tgt[j, :len(t)], mask[j, :len(p)] = torch.tensor(p), torch.tensor(t, dtype=torch.float32), True
    return {"aux_positions": pos, "aux_targets": tgt, "aux_mask": mask}
