"""Stepwise internalization of the chain of thought (implicit CoT): which CoT tokens a training
example keeps at each step.

At optimizer step `s` of an epoch of `steps_per_epoch` steps, `scheduled(s)` =
⌊per_epoch · s / steps_per_epoch⌋ tokens are removed from the start of every CoT (published
default: 8 per epoch, spread evenly over the epoch's steps). Removal smoothing adds k extra tokens
per example with P(k) ∝ e^{-λk} (published λ = 4; λ = inf turns it off); it is drawn from a
generator seeded by (seed, step), so a resumed run draws the same. Evaluation gives the model
only the prompt, so there is no smoothing there. The optimizer is reset whenever the scheduled
removal (capped at the longest CoT) changes; once the CoT is gone the model answers directly.
"""

from __future__ import annotations

import math

import torch


def scheduled(step: int, steps_per_epoch: int, per_epoch: int) -> int:
    """CoT tokens removed from the start of the CoT at optimizer step `step` (0-based)."""
    return per_epoch * step // max(steps_per_epoch, 1)


def smoothing(lam: float, longest: int) -> torch.Tensor:
    """P(k) ∝ e^{-λk} for k = 0..longest (k = 0 only when λ is inf)."""
    if math.isinf(lam):
        return torch.tensor([1.0])
    weights = torch.exp(-lam * torch.arange(longest + 1, dtype=torch.float64))
    return weights / weights.sum()


def removals(step: int, steps_per_epoch: int, per_epoch: int, lam: float, longest: int, count: int,
             seed: int, stream: int = 0) -> list[int]:
    """Tokens removed for each of `count` examples of the micro-batch `stream` of step `step`."""
    base = scheduled(step, steps_per_epoch, per_epoch)
    if base >= longest or math.isinf(lam):
        return [min(base, longest)] * count
    generator = torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_009 + stream)
    extra = torch.multinomial(smoothing(lam, longest), count, replacement=True, generator=generator)
    return [min(base + int(k), longest) for k in extra]


def resets_at(step: int, steps_per_epoch: int, per_epoch: int, longest: int) -> bool:
    """Whether the optimizer is re-created before step `step` (the capped removal just changed)."""
    if step == 0:
        return False
    now = min(scheduled(step, steps_per_epoch, per_epoch), longest)
    return now != min(scheduled(step - 1, steps_per_epoch, per_epoch), longest)
