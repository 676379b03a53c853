"""LayerNorm-free twins: normalisation layers replaced by fixed scales, and the standard format they ship in.

A norm layer divides by a statistic of its input: LayerNorm by the standard deviation sqrt(var + eps)
(after centring, which is linear), RMSNorm by the root mean square sqrt(mean(x^2) + eps). The
`remove-norm` objective (`train.objectives.RemoveNorm`) fine-tunes a trained model while these layers
are replaced, one at a time on a schedule (`schedule`), by a fixed scale s: the running average (EMA,
`EMA_DECAY` per step) of the statistic, measured on the real tokens of the training batches
(`NormSwitch`, forward hooks on the model's own norm modules). Order (`norm_modules`): every MLP norm
(first layer to last), then every attention norm, then the final norm; one more every `--remove-every`
steps, the first after `--remove-every` steps of measurement.

The twin format (`export_fixed_scales`): a standard transformers checkpoint whose norms compute
x*w/s. The config's epsilon (`layer_norm_epsilon` or `rms_norm_eps`) becomes one huge E for every
norm and each weight is multiplied by sqrt(E)/s, so x/sqrt(var+E) * w*sqrt(E)/s = x*w/s to within
var/(2E) relative error (var + E rounds to E in float32 when var < E * 6e-8). E is the largest
power of 4 keeping every exported weight below `FP16_LIMIT` (a float16 release cannot overflow);
an E too small for the scales (relative error s^2/(2E) above `MAX_REL_ERROR` for the largest s) is an
IntegrityError. `config.json` gets the marker `interp_zoo_norm`: {"fixed_scale": true, "eps": E,
"scales": {module name: s}, "rel_error": that error}; `fixed_scale_info` reads it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from cards.errors import IntegrityError, UsageError
from train.loop import Trainable

MARKER = "interp_zoo_norm"
EPS_KEYS = {"gpt2": "layer_norm_epsilon", "gpt_neo": "layer_norm_epsilon", "llama": "rms_norm_eps",
            "qwen2": "rms_norm_eps"}
MLP_NORMS, ATTENTION_NORMS = ("ln_2", "post_attention_layernorm"), ("ln_1", "input_layernorm")
FP16_LIMIT = 60000.0
MAX_REL_ERROR = 1e-4  # float16 storage rounds every weight by up to 5e-4 anyway
EMA_DECAY = 0.95  # ~20-step memory: the statistic drifts as earlier norms are frozen and weights move


def fixed_scale_info(config) -> dict | None:
    """The twin marker of a config (a transformers config, a dict, or a config.json / folder path), or None."""
    if isinstance(config, (str, Path)):
        path = Path(config)
        config = json.loads((path / "config.json" if path.is_dir() else path).read_text(encoding="utf-8"))
    value = config.get(MARKER) if isinstance(config, dict) else getattr(config, MARKER, None)
    return dict(value) if isinstance(value, dict) and value.get("fixed_scale") else None


def is_rms(module) -> bool:
    return type(module).__name__.endswith("RMSNorm")


def is_norm(module) -> bool:
    return isinstance(module, nn.LayerNorm) or is_rms(module)


def norm_modules(model) -> list[tuple[str, object]]:
    """(name, module) of every norm layer in removal order: MLP norms, attention norms (each from the first
    layer to the last), then the rest (the final norm). UsageError for a model without norms, of an
    unsupported family, or with a norm this order does not place."""
    kind = getattr(model.config, "model_type", None)
    if kind not in EPS_KEYS:
        raise UsageError(f"remove-norm: model type {kind!r} is not supported (only {', '.join(EPS_KEYS)})")
    found = [(name, m) for name, m in model.named_modules() if is_norm(m)]
    if not found:
        raise UsageError(f"remove-norm: the {kind} model has no normalisation layers")
    groups: list[list] = [[], [], []]
    for name, module in found:
        last = name.rsplit(".", 1)[-1]
        in_layer = any(part.isdigit() for part in name.split("."))
        if in_layer and last not in MLP_NORMS + ATTENTION_NORMS:
            raise UsageError(f"remove-norm: norm {name} is neither an MLP nor an attention norm")
        groups[0 if last in MLP_NORMS else 1 if last in ATTENTION_NORMS else 2].append((name, module))
    return [pair for group in groups for pair in group]


def schedule(n_norms: int, every: int) -> list[int]:
    """The optimizer step before which each norm (in `norm_modules` order) is frozen: every, 2*every, ..."""
    return [(k + 1) * every for k in range(n_norms)]


def frozen_count(step: int, n_norms: int, every: int) -> int:
    """How many norms are frozen at optimizer step `step` (0-based)."""
    return min(step // every, n_norms)


def _eps_attribute(module) -> str:
    return "variance_epsilon" if is_rms(module) else "eps"


def choose_eps(scales: dict[str, float], weights: dict[str, float]) -> float:
    """E: the largest power of 4 with max|w|*sqrt(E)/s < FP16_LIMIT for every norm (`weights`: max |w| per norm),
    which keeps the float16 release finite; IntegrityError if at that E the relative error s^2/(2E) of a
    norm whose input has its mean statistic s is above MAX_REL_ERROR."""
    room = min(scales[n] / max(weights[n], 1e-30) for n in scales) * FP16_LIMIT
    if not math.isfinite(room) or room <= 0:
        raise IntegrityError("remove-norm: a fixed scale is not a positive finite number")
    eps = 4.0 ** math.floor(math.log2(room))
    if rel_error(scales, eps) > MAX_REL_ERROR:
        raise IntegrityError(f"remove-norm: no epsilon keeps float16 weights finite and the error below "
                             f"{MAX_REL_ERROR:g} (E = {eps:g} gives {rel_error(scales, eps):.2g}): the scales "
                             f"span {min(scales.values()):.3g} to {max(scales.values()):.3g}")
    return eps


def rel_error(scales: dict[str, float], eps: float) -> float:
    """The largest relative error var/(2E) of a twin's norm whose input has its mean statistic (var = s^2)."""
    return max(scales.values()) ** 2 / (2 * eps)


def export_fixed_scales(model, scales: dict[str, float]) -> None:
    """Turn `model` in place into its twin: every norm's weight times sqrt(E)/s, its epsilon and the config's E,
    and the config marker. `scales` names every norm module (`norm_modules`) with its fixed scale s."""
    norms = dict(norm_modules(model))
    if set(scales) != set(norms):
        missing = sorted(set(norms) ^ set(scales))
        raise UsageError(f"remove-norm: the scales do not match the model's norms ({', '.join(missing[:3])})")
    if fixed_scale_info(model.config):
        raise UsageError("remove-norm: the model is already a fixed-scale twin")
    scales = {name: float(scales[name]) for name in norms}
    eps = choose_eps(scales, {n: float(m.weight.detach().abs().max()) for n, m in norms.items()})
    with torch.no_grad():
        for name, module in norms.items():
            module.weight.mul_(math.sqrt(eps) / scales[name])
            setattr(module, _eps_attribute(module), eps)
    setattr(model.config, EPS_KEYS[model.config.model_type], eps)
    setattr(model.config, MARKER, {"fixed_scale": True, "eps": eps, "scales": scales,
                                   "rel_error": rel_error(scales, eps)})


def export_folder(folder: Path, scales: dict[str, float]) -> None:
    """Rewrite a saved run folder's weights and config.json as the twin (`export_fixed_scales`)."""
    from transformers import AutoModelForCausalLM

    from train.output import SHARD, add_transformers4_rope

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    export_fixed_scales(model, scales)
    model.save_pretrained(folder, max_shard_size=SHARD)
    add_transformers4_rope(folder / "config.json")


class NormSwitch:
    """Forward hooks on a model's norms: measure each one's statistic (EMA over real tokens, training mode
    only) until its step comes, then compute its output with the fixed scale instead. `ema` (a tensor, one
    value per norm, 0 = not measured yet, in `state`) is what a checkpoint keeps; `at(step, mask)` sets the
    step and the attention mask of the next forward."""

    def __init__(self, model, every: int, state: "NormState | None" = None):
        self.norms, self.every = norm_modules(model), every
        self.state = state or NormState(len(self.norms))
        self.step, self.mask = 0, None
        self.handles = [m.register_forward_hook(self._hook(k)) for k, (_, m) in enumerate(self.norms)]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.norms]

    def at(self, step: int, mask) -> None:
        self.step, self.mask = step, mask

    def frozen(self) -> list[str]:
        return self.names[:frozen_count(self.step, len(self.norms), self.every)]

    def scales(self) -> dict[str, float]:
        return {name: float(s) for name, s in zip(self.names, self.ema)}

    @property
    def ema(self):
        return self.state.ema  # read through the module: moving it to a device replaces the tensor

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def _hook(self, k: int):
        def hook(module, args, output):
            x = args[0]
            if k < frozen_count(self.step, len(self.norms), self.every):
                return fixed(module, x, self.ema[k].clone())  # a copy: later measurements write the buffer
            if module.training:
                self._measure(module, k, x)
            return None

        return hook

    def _measure(self, module, k: int, x) -> None:
        with torch.no_grad():
            eps = getattr(module, _eps_attribute(module))
            x = x.float()
            square = x.pow(2) if is_rms(module) else (x - x.mean(-1, keepdim=True)).pow(2)
            stat = (square.mean(-1) + eps).sqrt()
            mask = self.mask if self.mask is not None and self.mask.shape == stat.shape else None
            value = (stat * mask).sum() / mask.sum() if mask is not None else stat.mean()
            old = self.ema[k]
            self.ema[k] = torch.where(old > 0, EMA_DECAY * old + (1 - EMA_DECAY) * value, value)


def fixed(module, x, scale):
    """The norm `module` with its statistic replaced by `scale`: (x - mean) / s * w + b, or x / s * w."""
    if is_rms(module):
        return (x.float() / scale).to(x.dtype) * module.weight
    centred = x - x.mean(-1, keepdim=True)
    out = centred / scale.to(x.dtype) * module.weight
    return out + module.bias if module.bias is not None else out


class NormState(nn.Module):
    """The fixed scales being measured (buffer `ema`, one per norm in removal order), as the trainable's extra
    module: a checkpoint keeps them and the loop returns them as its extra state."""

    def __init__(self, n_norms: int):
        super().__init__()
        self.register_buffer("ema", torch.zeros(n_norms))


class RemoveNormTrainable(Trainable):
    """The model with its norms switched (`NormSwitch`): each batch carries its optimizer step (`norm_step`)."""

    def __init__(self, model, every: int):
        if fixed_scale_info(model.config):
            raise UsageError("remove-norm: the model is already a fixed-scale twin")
        state = NormState(len(norm_modules(model)))
        super().__init__(model, state, 0.0, "norm")
        self.switch = NormSwitch(model, every, state)

    def forward(self, input_ids, attention_mask, labels, norm_step):
        self.switch.at(int(norm_step), attention_mask)
        lm = self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        return lm, {"lm_loss": lm.detach()}


@torch.no_grad()
def mean_loss(model, tokenizer, records, view, batch_size: int = 64) -> float:
    """Token-weighted cross-entropy (nats) of `model` on the completions of `records`, as trained (answer
    only, prompt masked): the loss the goal of a twin is stated in."""
    from train.data import collate, encode

    context = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    enc, _ = encode(records, view, tokenizer, keep_cot=False, max_length=context)
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    for start in range(0, len(enc), batch_size):
        batch = collate(enc, list(range(start, min(start + batch_size, len(enc)))), tokenizer.pad_token_id)
        mask = batch["attention_mask"].to(device)
        logits = model(input_ids=batch["input_ids"].to(device), attention_mask=mask).logits
        labels = batch["labels"][:, 1:].to(device)
        total += float(nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels,
                                                   ignore_index=-100, reduction="sum"))
        tokens += int((labels != -100).sum())
    return total / max(tokens, 1)


def compare(twin, tokenizer, records, view, base: str, batch_size: int = 64) -> dict:
    """The twin's loss beside the base model's loss and metrics on the same records (`base_` keys)."""
    from train.data import use_tokenizer
    from train.evaluate import evaluate
    from train.trainer import load_pretrained

    model, base_tokenizer = load_pretrained("--base", base)
    model.to(next(twin.parameters()).device).eval()
    use_tokenizer(view, base_tokenizer)
    before = evaluate(model, base_tokenizer, records, view, batch_size, False)
    before["loss"] = mean_loss(model, base_tokenizer, records, view, batch_size)
    use_tokenizer(view, tokenizer)
    after = mean_loss(twin, tokenizer, records, view, batch_size)
    return {"loss": after, "loss_increase": after - before["loss"],
            **{f"base_{k}": v for k, v in before.items() if isinstance(v, float)}}
