"""The settings of a training run: `RunConfig`, the one definition of every setting and its default.

Each field's metadata (`setting`) holds its help text, its group, its check and whether it is
*neutral*: a neutral setting cannot change the trained weights (where the run is written, how
often it logs, evaluates or checkpoints). Everything else is derived from these fields: the
`zoo-train` options (`train.cli`), the checks Python callers get too (`RunConfig(...)` raises
`UsageError`), the fingerprint a resumed run must match (`fingerprint`), the model card's training
table (`card_table`) and the command that reproduces a run (`command`). The objective is an
object with settings of its own (`train.objectives`); they are flattened into the same dicts,
under their option names (`icot_per_epoch`, `aux_layer`, ...).

Importing this module loads neither torch nor transformers.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from cards.errors import UsageError
from train import presets

if TYPE_CHECKING:
    from train.objectives import Objective

CORPUS, MODEL, OBJECTIVE, TRAINING, EVALUATION, OUTPUT = (
    "corpus", "model", "objective", "training", "evaluation and logging", "output")
GROUPS = (CORPUS, MODEL, OBJECTIVE, TRAINING, EVALUATION, OUTPUT)


@dataclass(frozen=True)
class Check:
    """What a value must be (for the error message) and the test."""

    text: str
    ok: Callable[[Any], bool]


LAYOUTS = ("ours", "original")  # sequence layouts of a multiplication corpus (train.data.in_layout)
POSITIVE = Check("a positive number", lambda v: v > 0)
NON_NEGATIVE = Check("a number >= 0", lambda v: v >= 0)
FINITE_POSITIVE = Check("a positive finite number", lambda v: 0 < v < math.inf)


def setting(help: str, group: str, *, type: type = str, neutral: bool = False, choices=None,
            check: Check | None = None, parse: Callable[[str], Any] | None = None, exclusive: str | None = None,
            command: bool = True, metavar: str | None = None) -> dict:
    """Field metadata of a run setting. `type` is the Python type of a value; `parse` turns command-line
    text into one (default: `type`); fields sharing an `exclusive` name exclude each other on the
    command line; `command=False` leaves the setting out of the recorded command."""
    return {"help": help, "group": group, "type": type, "neutral": neutral, "choices": choices, "check": check,
            "parse": parse or type, "exclusive": exclusive, "command": command, "metavar": metavar}


def flag(f: dataclasses.Field) -> str:
    """The command-line option of a field (`--no-NAME` for a switch that is on by default)."""
    name = f.name.replace("_", "-")
    return f"--no-{name}" if f.metadata["type"] is bool and f.default is True else f"--{name}"


def check_fields(obj) -> None:
    """UsageError for the first field of the dataclass `obj` whose value is of the wrong type, not
    among its choices or failing its check (None means unset and is not checked)."""
    for f in dataclasses.fields(obj):
        value, meta = getattr(obj, f.name), f.metadata
        if value is None or not meta or dataclasses.is_dataclass(value):
            continue  # unset, or a settings object (the objective) that checks itself
        wanted, value = meta["type"], _coerced(value, meta["type"])
        object.__setattr__(obj, f.name, value)
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise UsageError(f"{flag(f)}: expected {wanted.__name__}, got {value!r}")
        choices = meta["choices"]() if callable(meta["choices"]) else meta["choices"]
        if choices is not None and value not in choices:
            raise UsageError(f"{flag(f)}: {value!r} is not one of {', '.join(map(str, choices))}")
        if meta["check"] is not None and not meta["check"].ok(value):
            raise UsageError(f"{flag(f)}: expected {meta['check'].text}, got {value!r}")


def _coerced(value, wanted: type):
    """A tuple for a list (JSON has no tuples), a float for an int where a float is wanted."""
    if wanted is tuple and isinstance(value, list):
        return tuple(value)
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _option_words(f: dataclasses.Field, value, default) -> list[str]:
    """How a setting appears in a command: nothing at its default, a bare switch, or the option and its value."""
    if value == default:
        return []
    if f.metadata["type"] is bool:
        return [flag(f)]
    return [flag(f), ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]


def _objective_names() -> list[str]:
    from train.objectives import OBJECTIVES

    return list(OBJECTIVES)


def _lr_help() -> str:
    by_lr: dict[float, list[str]] = {}
    for name, shape in presets.PRESETS.items():
        by_lr.setdefault(shape.lr, []).append(name)
    rates = ", ".join(f"{lr:g} for {'/'.join(names)}" for lr, names in by_lr.items())
    return f"peak learning rate (default: {presets.BASE_LR:g} with --base, {rates})"


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a `zoo-train` run. `train.run(RunConfig(data=..., out=..., preset="tiny"))` is the
    command line from Python; `objective` is a name or an objective object (`train.objectives`)."""

    data: str = field(metadata=setting("corpus folder or Hub dataset id", CORPUS, metavar="DIR_OR_ID"))
    out: str = field(metadata=setting("output folder (must not exist, unless --resume/--overwrite)", OUTPUT,
                                      neutral=True))
    config: str | None = field(default=None, metadata=setting("corpus config (default: the corpus's default)",
                                                              CORPUS))
    train_samples: int | None = field(default=None, metadata=setting(
        "use only the first N training records", CORPUS, type=int, check=POSITIVE))
    max_length: int = field(default=512, metadata=setting("drop longer examples", CORPUS, type=int, check=POSITIVE))
    layout: str = field(default="ours", metadata=setting(
        "sequence layout of a multiplication corpus: ours ('A * B || COT #### C') or original (the ICoT code's "
        "' A * B <eos> COT <eos> #### C <eos>', meant for GPT-2's tokenizer: --tokenizer or --base)", CORPUS,
        choices=LAYOUTS))
    preset: str | None = field(default=None, metadata=setting(
        "train from scratch with this shape", MODEL, choices=tuple(presets.PRESETS), exclusive="model"))
    base: str | None = field(default=None, metadata=setting(
        "fine-tune this model (Hub id or local folder)", MODEL, exclusive="model", metavar="ID_OR_DIR"))
    arch: str | None = field(default=None, metadata=setting(
        "family of a --preset model (default: the preset's own)", MODEL, choices=presets.ARCHS))
    layers: int | None = field(default=None, metadata=setting("override the preset's number of layers", MODEL,
                                                              type=int, check=POSITIVE))
    hidden: int | None = field(default=None, metadata=setting("override the preset's width (MLP stays 4x)", MODEL,
                                                              type=int, check=POSITIVE))
    heads: int | None = field(default=None, metadata=setting("override the preset's number of attention heads",
                                                             MODEL, type=int, check=POSITIVE))
    tokenizer: str | None = field(default=None, metadata=setting(
        "tokenizer of a --preset model (Hub id or local folder; a pad token is added if it has none) instead of one "
        "trained on the corpus", MODEL, metavar="ID_OR_DIR"))
    vocab_size: int = field(default=4096, metadata=setting(
        "BPE vocabulary trained from scratch (a digit corpus always gets one token per digit)", MODEL, type=int,
        check=POSITIVE))
    objective: Objective | str = field(default="sft", metadata=setting("training objective", OBJECTIVE,
                                                           choices=_objective_names))
    epochs: int = field(default=1, metadata=setting("passes over the training split", TRAINING, type=int,
                                                    check=POSITIVE, exclusive="length"))
    max_steps: int | None = field(default=None, metadata=setting("optimizer steps (instead of --epochs)", TRAINING,
                                                                 type=int, check=POSITIVE, exclusive="length"))
    batch_size: int = field(default=32, metadata=setting("examples per micro-batch per process", TRAINING,
                                                         type=int, check=POSITIVE))
    grad_accum: int = field(default=1, metadata=setting("micro-batches per optimizer step", TRAINING, type=int,
                                                        check=POSITIVE))
    lr: float | None = field(default=None, metadata=setting(_lr_help(), TRAINING, type=float,
                                                            check=FINITE_POSITIVE))
    schedule: str = field(default="linear", metadata=setting(
        "learning-rate schedule after warm-up", TRAINING,
        choices=("linear", "cosine", "constant", "constant_with_warmup")))
    warmup_steps: int | None = field(default=None, metadata=setting(
        "warm-up steps (default: min(50, a tenth of the steps))", TRAINING, type=int, check=NON_NEGATIVE))
    weight_decay: float = field(default=0.01, metadata=setting("AdamW weight decay", TRAINING, type=float,
                                                               check=NON_NEGATIVE))
    max_grad_norm: float = field(default=1.0, metadata=setting("gradient clipping", TRAINING, type=float,
                                                               check=FINITE_POSITIVE))
    precision: str = field(default="auto", metadata=setting(
        "mixed precision (auto: bf16 on GPUs that have it, else fp32)", TRAINING,
        choices=("auto", "no", "bf16", "fp16")))
    seed: int = field(default=0, metadata=setting("model init, data order, removal smoothing", TRAINING, type=int))
    eval_split: str = field(default="test", metadata=setting(
        "split evaluated at the end (else test, else validation)", EVALUATION, neutral=True))
    eval_limit: int | None = field(default=None, metadata=setting(
        "evaluate only the first N records of that split (default: all; 0: no final evaluation)", EVALUATION,
        type=int, check=NON_NEGATIVE, neutral=True, exclusive="final"))
    eval: bool = field(default=True, metadata=setting("no final evaluation (the same as --eval-limit 0)", EVALUATION,
                                                      type=bool, neutral=True, exclusive="final"))
    eval_every: int | None = field(default=None, metadata=setting(
        "evaluate on validation records every N steps", EVALUATION, type=int, check=POSITIVE, neutral=True))
    eval_samples: int = field(default=200, metadata=setting("records per --eval-every evaluation", EVALUATION,
                                                            type=int, check=POSITIVE, neutral=True))
    eval_batch_size: int = field(default=64, metadata=setting("prompts per generation batch", EVALUATION, type=int,
                                                              check=POSITIVE, neutral=True))
    log_every: int = field(default=10, metadata=setting("steps per log.jsonl line", EVALUATION, type=int,
                                                        check=POSITIVE, neutral=True))
    tensorboard: bool = field(default=False, metadata=setting(
        "also write TensorBoard events to OUT/runs (needs: pip install 'interp-zoo[tensorboard]')", EVALUATION,
        type=bool, neutral=True))
    progress: bool = field(default=True, metadata=setting("no progress bars", EVALUATION,
                                                          type=bool, neutral=True, command=False))
    save_every: int | None = field(default=None, metadata=setting(
        "checkpoint the full training state every N steps", OUTPUT, type=int, check=POSITIVE, neutral=True))
    resume: bool = field(default=False, metadata=setting("continue the run in OUT from its newest checkpoint",
                                                         OUTPUT, type=bool, neutral=True, command=False))
    overwrite: bool = field(default=False, metadata=setting(
        "replace OUT if it exists and is empty or a zoo-train run folder (never the current, home or a parent folder)",
        OUTPUT, type=bool, neutral=True, command=False))
    keep_checkpoints: bool = field(default=False, metadata=setting("keep OUT/checkpoints after the run", OUTPUT,
                                                                   type=bool, neutral=True))

    def __post_init__(self):
        from train.objectives import objective

        for name in ("data", "out", "base"):
            if isinstance(getattr(self, name), Path):
                object.__setattr__(self, name, str(getattr(self, name)))
        check_fields(self)
        object.__setattr__(self, "objective", objective(self.objective))
        if self.objective.needs_base and not self.base:
            raise UsageError(f"--objective {self.objective.name} fine-tunes a trained model: give --base")
        if (self.preset is None) == (self.base is None):
            raise UsageError("give exactly one of --preset (train from scratch) and --base (fine-tune)")
        if self.base and (self.arch or self.layers or self.hidden or self.heads):
            raise UsageError("--arch, --layers, --hidden and --heads only apply to --preset models")
        if self.base and self.tokenizer:
            raise UsageError("--tokenizer only applies to --preset models (a --base model keeps its own)")
        if self.max_steps is not None and self.epochs != 1:
            raise UsageError("--epochs and --max-steps exclude each other")
        if self.resume and self.overwrite:
            raise UsageError("--resume and --overwrite exclude each other")
        if not self.eval and self.eval_limit is not None:
            raise UsageError("--no-eval and --eval-limit exclude each other")

    @property
    def evaluates(self) -> bool:
        """Whether the run ends with an evaluation (`--no-eval` and `--eval-limit 0` skip it)."""
        return self.eval and self.eval_limit != 0

    # -- derived views ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Every setting, the objective as its name followed by its own settings (JSON-ready)."""
        values = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "objective":
                values["objective"] = value.name
                values.update(value.settings())
            else:
                values[f.name] = list(value) if isinstance(value, tuple) else value
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        from train.objectives import objective

        names = {f.name for f in dataclasses.fields(cls)} - {"objective"}
        return cls(**{k: v for k, v in values.items() if k in names},
                   objective=objective(values.get("objective", "sft"), values))

    def fingerprint(self) -> dict:
        """The settings that can change the trained weights: what a resumed run must repeat."""
        neutral = {f.name for f in dataclasses.fields(self) if f.metadata["neutral"]}
        return {k: v for k, v in self.to_dict().items() if k not in neutral}

    def command(self) -> str:
        """The `zoo-train` command of this run: every setting that differs from its default, the objective's
        own settings right after `--objective`."""
        words = ["zoo-train"]
        for f in dataclasses.fields(self):
            if f.name == "objective":
                words += _option_words(f, self.objective.name, f.default)
                for g in dataclasses.fields(self.objective):
                    words += _option_words(g, getattr(self.objective, g.name), g.default)
            elif f.metadata["command"]:
                words += _option_words(f, getattr(self, f.name), f.default)
        return shlex.join(words)

    def card_table(self) -> dict:
        """The training settings a model card lists: the objective, its settings and the training group."""
        rows = {"objective": self.objective.name, **self.objective.settings()}
        for f in dataclasses.fields(self):
            if f.metadata["group"] == TRAINING and getattr(self, f.name) is not None:
                rows[f.name] = getattr(self, f.name)
        if self.max_steps:
            rows.pop("epochs")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in rows.items()}

    # -- what a run derives from the settings ------------------------------------------------------

    def steps_per_epoch(self, examples: int, world: int = 1) -> int:
        """Optimizer steps per epoch: the epoch's batches (the last one may be short) shared by the processes."""
        return math.ceil(examples / self.batch_size) // world // self.grad_accum

    def total_steps(self, examples: int, world: int = 1) -> int:
        return self.max_steps or self.epochs * self.steps_per_epoch(examples, world)

    def resolved(self, examples: int, world: int = 1) -> "RunConfig":
        """This config with the defaults that depend on the model and the data filled in: the learning rate
        and the warm-up steps. UsageError if the data are smaller than one optimizer step."""
        if self.steps_per_epoch(examples, world) == 0:
            raise UsageError(f"the training split ({examples} examples) is smaller than one optimizer step "
                             f"(--batch-size {self.batch_size} x --grad-accum {self.grad_accum} x {world} processes)")
        lr = self.lr or (presets.BASE_LR if self.base else presets.PRESETS[self.preset].lr)
        warmup = self.warmup_steps if self.warmup_steps is not None else min(50, self.total_steps(examples, world) // 10)
        return dataclasses.replace(self, lr=lr, warmup_steps=warmup)
