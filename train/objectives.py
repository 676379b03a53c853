"""Training objectives as objects: what each needs from a corpus, what it trains on, what it does at
each optimizer step, what it adds to the loss, and how the model card and `--help` describe it.

- `sft`: loss on the completion only (prompt tokens masked);
- `lm`: loss on every token, the prompt too (plain language modelling of the record; on MCQ level 1
  it stayed at chance where `sft` learned, see the README);
- `nocot`: answer only, the chain of thought left out (the standard fine-tuning baseline);
- `icot`: stepwise internalization of the chain of thought (`train.icot`): CoT tokens removed
  from its start as training goes on, with removal smoothing and an optimizer reset at each removal;
- `aux`: answer only plus the running-sum auxiliary loss (`train.aux`): linear heads on attention
  head outputs regress the running sums at each answer digit;
- `remove-norm`: a `--base` model fine-tuned while its norms are replaced by fixed scales, one at a time
  (`train.remove_norm`); it saves the LayerNorm-free twin.

An objective is a frozen dataclass whose fields are its own settings, with `train.config.setting`
metadata: `zoo-train` offers them as options (`--icot-per-epoch`, `--aux-layer`, ...), and the run's
settings (`train.config.RunConfig`) carry them flattened under those names. `OBJECTIVES` maps each
name to its default instance; `objective(name, values)` builds one. The trainer and the loop only
call the hooks of the base class, so a new objective is one class here. Importing this module
loads no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

from cards.errors import UsageError
from cards.generator import TrainingView
from train.config import FINITE_POSITIVE, OBJECTIVE, POSITIVE, Check, check_fields, setting

AUX_FILE = "aux_heads.safetensors"
POSITIONS = ("previous", "answer")  # where aux heads read ĉ_k: the position that predicts c_k, or c_k's (train.aux)


def has_chain_of_thought(view: TrainingView) -> bool:
    return view.chain_of_thought


def has_running_sums(view: TrainingView) -> bool:
    return type(view).running_sums is not TrainingView.running_sums


@dataclass(frozen=True)
class Objective:
    """`sft`, and the hooks every objective answers (this base class's answers are sft's)."""

    name: ClassVar[str] = "sft"
    summary: ClassVar[str] = "loss on the completion only (the SQL, the CoT and answer, the label)"  # for --help
    text: ClassVar[str] = "supervised fine-tuning, loss on the completion only (prompt tokens masked)"  # the card
    keeps_cot: ClassVar[bool] = True  # trains on the chain of thought (else it is dropped at encoding)
    needs: ClassVar[tuple[str, Callable[[TrainingView], bool]] | None] = None  # what the corpus must provide
    needs_base: ClassVar[bool] = False  # fine-tunes a trained model only (--base)

    def __post_init__(self):
        check_fields(self)

    def settings(self) -> dict:
        """Its own settings by option name (JSON-ready)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def check(self, view: TrainingView, corpus: str) -> None:
        """UsageError if the corpus's view lacks what this objective needs; `corpus` names the corpus kind."""
        if self.needs and not self.needs[1](view):
            raise UsageError(f"--objective {self.name} needs a corpus with {self.needs[0]} "
                             f"({_providers(self.needs[1])}); this one is {corpus}")

    def trainable(self, model, data, seed: int):
        """The module the loop trains (`train.loop.Trainable`): the model, and any extra loss. May raise
        UsageError for settings that do not fit the model or the data."""
        from train.loop import Trainable

        return Trainable(model)

    def check_steps(self, trainable, steps: int) -> None:
        """UsageError if the run's `steps` optimizer steps cannot do what this objective must."""

    def micro_batch(self, data, indices: list[int], pad_id: int, step: int, per_epoch: int, seed: int,
                    stream: int) -> dict:
        """The tensors of one micro-batch (`stream` numbers it within the step, across processes)."""
        from train.data import collate

        return collate(data, indices, pad_id)

    def resets_optimizer(self, step: int, per_epoch: int, data) -> bool:
        """Whether the optimizer state is cleared before step `step`."""
        return False

    def log(self, step: int, per_epoch: int, data) -> dict:
        """Values of its own for the log line written after step `step`."""
        return {}

    def save(self, out: Path, trainable, extra_state: dict) -> None:
        """Files of its own beside the saved model (the state of the trainable's extra module)."""

    def compare(self, model, tokenizer, records: list[dict], view: TrainingView, base: str | None,
                batch_size: int) -> dict:
        """Metrics of its own added to the final evaluation of the saved `model` on `records`."""
        return {}


@dataclass(frozen=True)
class NoCot(Objective):
    name = "nocot"
    summary = "answer only, the chain of thought left out (the standard fine-tuning baseline)"
    text = "answer-only training (no chain of thought), the standard fine-tuning baseline"
    keeps_cot = False
    needs = ("a chain of thought", has_chain_of_thought)


@dataclass(frozen=True)
class WholeText(Objective):
    name = "lm"
    summary = "loss on every token, the prompt too (language modelling of the whole record)"
    text = "language modelling of the whole record: loss on the prompt and the completion"

    def micro_batch(self, data, indices, pad_id, step, per_epoch, seed, stream):
        from train.data import collate

        return collate(data, indices, pad_id, prompt_loss=True)


@dataclass(frozen=True)
class Icot(Objective):
    icot_per_epoch: int = field(default=8, metadata=setting("CoT tokens removed per epoch", OBJECTIVE, type=int,
                                                            check=POSITIVE))
    icot_lambda: float = field(default=4.0, metadata=setting("removal smoothing lambda; inf = off", OBJECTIVE,
                                                             type=float, check=POSITIVE))

    name = "icot"
    summary = ("remove --icot-per-epoch CoT tokens per epoch from the start of the CoT, with removal smoothing "
               "P(k) ~ exp(-lambda k) and an optimizer reset at each removal")
    text = ("stepwise internalization of the chain of thought (implicit CoT): CoT tokens removed from the start of "
            "the CoT as training goes on, with removal smoothing and an optimizer reset at each removal")
    needs = ("a chain of thought", has_chain_of_thought)

    def micro_batch(self, data, indices, pad_id, step, per_epoch, seed, stream):
        from train import icot
        from train.data import collate

        removed = icot.removals(step, per_epoch, self.icot_per_epoch, self.icot_lambda, data.max_cot, len(indices),
                                seed, stream)
        return collate(data, indices, pad_id, removed)

    def resets_optimizer(self, step, per_epoch, data):
        from train import icot

        return icot.resets_at(step, per_epoch, self.icot_per_epoch, data.max_cot)

    def log(self, step, per_epoch, data):
        from train import icot

        return {"cot_removed": min(icot.scheduled(step, per_epoch, self.icot_per_epoch), data.max_cot)}


def _int_list(text: str) -> tuple[int, ...]:
    import argparse

    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


DISTINCT = Check("distinct heads (0, 1, ...)", lambda v: len(v) > 0 and len(set(v)) == len(v)
                 and all(isinstance(h, int) and h >= 0 for h in v))


@dataclass(frozen=True)
class Aux(Objective):
    aux_layer: int = field(default=-1, metadata=setting("layer whose heads are read (-1: the last)", OBJECTIVE,
                                                        type=int))
    aux_heads: tuple = field(default=(0, 1), metadata=setting("comma-separated heads of that layer", OBJECTIVE,
                                                              type=tuple, parse=_int_list, check=DISTINCT))
    aux_weight: float = field(default=1.0, metadata=setting(
        "lambda of the MSE term; the running sums are divided by their RMS over the training set", OBJECTIVE,
        type=float, check=FINITE_POSITIVE))
    aux_position: str = field(default="previous", metadata=setting(
        "where ĉ_k is read: previous = the position that predicts c_k (where c_k = ĉ_k mod 10 is written), answer = "
        "the position of token c_k (where the aux-loss paper's probe reads it)", OBJECTIVE, choices=POSITIONS))

    name = "aux"
    summary = ("answer only + the running-sum loss: linear heads on the outputs of --aux-heads of --aux-layer "
               "regress the running sums at each answer digit (read at --aux-position); loss = LM + --aux-weight * MSE")
    text = ("answer-only training plus the running-sum auxiliary loss (linear regression heads on attention-head "
            "outputs predicting the running sums)")
    keeps_cot = False
    needs = ("running sums", has_running_sums)

    def trainable(self, model, data, seed):
        import torch

        from train.aux import AuxHeads, check_digit_tokens, target_scale
        from train.loop import Trainable

        n_layers, n_heads = model.config.num_hidden_layers, model.config.num_attention_heads
        if not -n_layers <= self.aux_layer < n_layers:
            raise UsageError(f"--aux-layer {self.aux_layer}: the model has {n_layers} layers")
        if any(h >= n_heads for h in self.aux_heads):
            raise UsageError(f"--aux-heads {','.join(map(str, self.aux_heads))}: expected distinct heads from 0 "
                             f"to {n_heads - 1}")
        check_digit_tokens(data)
        torch.manual_seed(seed)
        heads = AuxHeads(model, self.aux_layer % n_layers, list(self.aux_heads), target_scale(data.running_sums))
        return Trainable(model, heads, self.aux_weight, "aux")

    def micro_batch(self, data, indices, pad_id, step, per_epoch, seed, stream):
        from train.aux import targets
        from train.data import collate

        return {**collate(data, indices, pad_id), **targets(data, indices, self.aux_position)}

    def save(self, out, trainable, extra_state):
        from train import aux

        aux.save(out, trainable.extra, extra_state, self.aux_weight, self.aux_position)


@dataclass(frozen=True)
class RemoveNorm(Objective):
    remove_every: int = field(default=50, metadata=setting(
        "optimizer steps between two norm removals (the first after as many steps of measurement)", OBJECTIVE,
        type=int, check=POSITIVE))

    name = "remove-norm"
    summary = ("--base only: replace the norms by fixed scales (the EMA of what each divided by), one every "
               "--remove-every steps (MLP norms, attention norms, final norm); saves the LayerNorm-free twin")
    text = ("LayerNorm removal: the base model fine-tuned on its own corpus (answer only) while its normalisation "
            "layers were replaced one at a time by fixed scales; the saved model is its LayerNorm-free twin")
    keeps_cot = False
    needs_base = True

    def trainable(self, model, data, seed):
        from train.remove_norm import RemoveNormTrainable

        trainable = RemoveNormTrainable(model, self.remove_every)
        object.__setattr__(self, "norm_names", trainable.switch.names)  # not a setting: the log names them
        return trainable

    def check_steps(self, trainable, steps):
        needed = len(trainable.switch.names) * self.remove_every
        if steps < needed:
            raise UsageError(f"--objective remove-norm: {steps} steps cannot remove {len(trainable.switch.names)} "
                             f"norms every {self.remove_every} steps (at least {needed} are needed)")

    def micro_batch(self, data, indices, pad_id, step, per_epoch, seed, stream):
        import torch

        from train.data import collate

        return {**collate(data, indices, pad_id), "norm_step": torch.tensor(step)}

    def log(self, step, per_epoch, data):
        from train.remove_norm import frozen_count

        names = getattr(self, "norm_names", [])
        return {"norms_frozen": names[:frozen_count(step, len(names), self.remove_every)]}

    def save(self, out, trainable, extra_state):
        from train.remove_norm import export_folder

        trainable.switch.remove()
        export_folder(out, dict(zip(trainable.switch.names, extra_state["ema"].tolist())))

    def compare(self, model, tokenizer, records, view, base, batch_size):
        from train.remove_norm import compare

        return compare(model, tokenizer, records, view, base, batch_size)


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (Objective(), WholeText(), Icot(), NoCot(), Aux(), RemoveNorm())}


def objective(chosen: str | Objective, values: dict | None = None) -> Objective:
    """The objective called `chosen` with its settings taken from `values` (defaults for the rest); an
    Objective is returned as it is. UsageError for an unknown name."""
    if isinstance(chosen, Objective):
        return chosen
    if chosen not in OBJECTIVES:
        raise UsageError(f"--objective: {chosen!r} is not one of {', '.join(OBJECTIVES)}")
    default = OBJECTIVES[chosen]
    own = {f.name for f in dataclasses.fields(default)}
    return dataclasses.replace(default, **{k: v for k, v in (values or {}).items() if k in own})


def owner(option: str) -> str | None:
    """The objective whose setting `option` is (None if none has it)."""
    return next((name for name, o in OBJECTIVES.items() if option in {f.name for f in dataclasses.fields(o)}), None)


def _providers(test: Callable[[TrainingView], bool]) -> str:
    """The known generators whose view passes `test`, for an error message."""
    from cards import generator

    found = []
    for name in generator.names():
        try:
            view = generator.get(name).view
        except ImportError:  # a generator that cannot be imported here provides nothing
            continue
        if test(view):
            found.append(name)
    return ", ".join(found) or "no known generator"


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
