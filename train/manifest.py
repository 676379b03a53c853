"""The run manifest: what a finished `zoo-train` run records about itself, and the names of a run
folder's files that other modules refer to.

`RunManifest` is written by the trainer to OUT/training_args.json and read back by the zoo
(`cards.zoo.entry_from_folder`) and the benchmarks: the run's settings (`train.config.RunConfig`,
with the learning rate and warm-up steps as used), the command that reproduces it, what the
corpus card recorded (generator, config, generator command) and what the run measured (steps,
time, hardware, parameter counts). Importing this module loads no torch (`cards.hub` imports it).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from cards.errors import IntegrityError, UsageError
from train.config import RunConfig

MANIFEST = "training_args.json"
CHECKPOINTS = "checkpoints"  # the resumable training states of a run: never part of the published folder
RESUME = "run.json"  # in CHECKPOINTS: the settings a resumed run must repeat (RunConfig.fingerprint)


@dataclass
class RunManifest:
    config: RunConfig  # the settings as run (learning rate and warm-up steps filled in)
    command: str  # the zoo-train command, naming the corpus and the output folder as `corpus` and the folder name
    corpus: str  # the corpus as cards name it: its folder's name or its Hub id
    generator: str | None  # the generator its card records (None: generic prompt/completion text)
    corpus_config: str | None  # the config trained on
    corpus_command: str | None  # the generator command that makes the corpus (writing to `corpus`)
    eval_split: str | None  # the split of the final evaluation (None: the corpus had none)
    steps: int
    steps_per_epoch: int
    seconds: float
    hardware: str
    mixed_precision: str
    parameters: dict  # total, embedding, non_embedding
    architecture: str  # the transformers model_type
    vocab_size: int

    def to_json(self) -> str:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return json.dumps({**values, "config": self.config.to_dict()}, indent=2) + "\n"

    def write(self, folder: Path) -> None:
        (Path(folder) / MANIFEST).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_folder(cls, folder: str | Path) -> "RunManifest":
        """The manifest of a finished run; UsageError if there is none, IntegrityError if it is malformed."""
        file = Path(folder) / MANIFEST
        if not file.is_file():
            raise UsageError(f"{folder} is not a finished zoo-train folder (no {MANIFEST})")
        try:
            values = json.loads(file.read_text(encoding="utf-8"))
            return cls(**{**values, "config": RunConfig.from_dict(values["config"])})
        except (ValueError, KeyError, TypeError) as err:
            raise IntegrityError(f"{file}: not a zoo-train run manifest ({err})") from err
