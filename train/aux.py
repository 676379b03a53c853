"""The running-sum auxiliary loss (Bai et al. 2025): linear regression heads on attention-head outputs.

For each chosen head h of the chosen layer, a weight vector w_h (d_head → 1, no bias) reads that
head's output (the input of the attention's output projection, split into heads) at one position
per answer digit c_k and regresses the running sum ĉ_k = s_k + ⌊ĉ_{k-1}/10⌋ (the `running_sums`
column of multmath). Where (`--aux-position`, `train.objectives.POSITIONS`): `previous` (the default), the position
that predicts c_k, where c_k = ĉ_k mod 10 is written; `answer`, the position of the token c_k itself,
which predicts c_{k+1} (and needs ĉ_k's carry ⌊ĉ_k/10⌋ for it): where the running-sum probe of the
aux-loss paper's code reads ĉ_k. The two differ by exactly one position. The loss is
the mean squared error over heads, digits and examples; the trainer adds λ times it to the LM loss.
The targets are divided by `scale`, the root mean square of ĉ over the training set (ĉ grows with
the problem size; λ, which the paper does not publish, then means the same at every size): a head
predicts ĉ_k / scale. Defaults: the first two heads of the last layer, λ = 1. The heads and the
scale are saved next to the model as `aux_heads.safetensors` (by the `aux` objective,
`train.objectives`), with the layer, heads and read position in its metadata; `load` reads them back
(a file without a position, as written before the setting existed, read at `previous`; one without
metadata, as a float16 release copies it, takes it from the run's manifest). `targets` gives a
micro-batch the read positions and the targets.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cards.errors import IntegrityError, UsageError
from train.objectives import AUX_FILE as FILE


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
        end = data.digits_end[i] if data.digits_end is not None else len(data.answer[i]) - 1
        tokens = end - data.digits_at[i]
        if tokens != len(data.running_sums[i]):
            raise UsageError("--objective aux needs a tokenizer with one token per answer digit; this one "
                             f"writes {len(data.running_sums[i])} digits in {tokens} tokens")


def read_positions(digits_at: int, digits: int, position: str = "previous") -> list[int]:
    """Where ĉ_0 .. ĉ_{digits-1} are read in a sequence whose answer digit c_0 is token `digits_at`."""
    shift = {"previous": -1, "answer": 0}[position]
    return [digits_at + k + shift for k in range(digits)]


def targets(data, indices: list[int], position: str = "previous") -> dict[str, torch.Tensor]:
    """For the examples `indices` of an encoded split (`train.data.Encoded`, without its CoT): the read
    positions of each answer digit (`read_positions`), the running sums there, and which of them are real
    (not padding)."""
    positions = []
    for i in indices:
        first = len(data.prompt[i]) + len(data.cot[i]) + data.digits_at[i]
        positions.append(read_positions(first, len(data.running_sums[i]), position))
    sums = [data.running_sums[i] for i in indices]
    n = max(len(p) for p in positions)
    pos = torch.zeros((len(positions), n), dtype=torch.long)
    tgt = torch.zeros((len(positions), n), dtype=torch.float32)
    mask = torch.zeros((len(positions), n), dtype=torch.bool)
    for j, (p, t) in enumerate(zip(positions, sums)):
        pos[j, :len(p)], tgt[j, :len(t)], mask[j, :len(p)] = torch.tensor(p), torch.tensor(t, dtype=torch.float32), True
    return {"aux_positions": pos, "aux_targets": tgt, "aux_mask": mask}


@dataclass
class Saved:
    """The aux heads of a checkpoint: `weight` [heads, d_head] reads ĉ_k / `scale` from head `heads[j]` of
    `layer` at `position` (`read_positions`)."""

    layer: int
    heads: list[int]
    position: str
    scale: float
    weight: torch.Tensor


def save(folder: Path, heads: AuxHeads, state: dict, aux_weight: float, position: str) -> None:
    from safetensors.torch import save_file

    meta = {"layer": heads.layer, "heads": heads.heads, "weight": aux_weight, "scale": heads.scale_value,
            "position": position}
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in state.items()}
    save_file(tensors, str(Path(folder) / FILE), metadata={k: json.dumps(v) for k, v in meta.items()})


def load(folder: str | Path) -> Saved:
    """The aux heads saved in a checkpoint folder; IntegrityError if there are none or they do not say where
    they read (neither the file's metadata nor the run's manifest)."""
    from safetensors import safe_open

    file = Path(folder) / FILE
    if not file.is_file():
        raise IntegrityError(f"{folder}: no {FILE} (not a run of the aux objective)")
    with safe_open(str(file), "pt") as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items() if k != "format"}
        tensors = {k: f.get_tensor(k).float() for k in f.keys()}
    if "layer" not in meta:  # a release re-saved without the metadata: the run's manifest says it
        meta = _from_manifest(folder)
    return Saved(int(meta["layer"]), list(meta["heads"]), meta.get("position", "previous"),
                 float(tensors["scale"]), tensors["weight"])


def _from_manifest(folder: str | Path) -> dict:
    """Layer, heads and position of the aux heads as the run's manifest records them (the layer made positive)."""
    from transformers import AutoConfig

    from train.manifest import MANIFEST

    try:
        config = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))["config"]
        layers = AutoConfig.from_pretrained(folder).num_hidden_layers
        return {"layer": config["aux_layer"] % layers, "heads": config["aux_heads"],
                "position": config.get("aux_position", "previous")}
    except (OSError, ValueError, KeyError) as err:
        raise IntegrityError(f"{folder}: {FILE} does not say which heads it reads, and no run manifest does "
                             f"({type(err).__name__}: {err})") from err
