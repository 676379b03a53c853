"""The zoo recipe: every checkpoint the zoo has or can have, and the commands that make it.

`cards/recipe.json` (another file with `ZOO_RECIPE`) names the corpora (a generator command without
`--out`) and the checkpoints: a name, a tier (`cpu`: trained on a 2-core machine and shipped with the
project; `gpu`: one command away), the corpus it trains on and its `zoo-train` options without
`--data` and `--out`. A row that fine-tunes another row's checkpoint names it as `base` (zoo build
passes `--base NAME`, which `zoo-train` resolves to the zoo's copy): it must be an earlier row, of the
cpu tier when the row is. `zoo build` (`cards.build`) runs these rows; `zoo list` shows the rows that
are not built yet next to the registry's entries. `Row` also answers what a row is (task, level,
preset, objective) from its commands alone, so a row can be listed before it exists.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cards.errors import IntegrityError, UsageError

TIERS = ("cpu", "gpu")
GENERATORS = {"tinysql-gen": "tinysql", "multmath-gen": "multmath", "mcq-gen": "mcq", "facts-gen": "facts",
              "assoc-gen": "assoc"}
NOT_IN_A_ROW = ("--data", "--out", "--resume", "--overwrite", "--base")  # zoo build supplies or decides these


@dataclass(frozen=True)
class Row:
    name: str
    tier: str
    corpus: str  # the corpus's name (its folder's name under the build folder)
    corpus_command: str  # the generator command, without --out
    train: str  # the zoo-train options, without --data and --out
    base: str | None = None  # the row whose checkpoint this one fine-tunes

    @property
    def task(self) -> str:
        return GENERATORS[shlex.split(self.corpus_command)[0]]

    @property
    def level(self) -> str | None:
        """The corpus config trained on, as the registry names it (level3, 4x4)."""
        config = option_value(self.train, "--config")
        if config:
            return config
        digits = option_value(self.corpus_command, "--digits")
        level = option_value(self.corpus_command, "--level")
        return digits or (f"level{level}" if level and level.isdigit() else level)

    @property
    def preset(self) -> str | None:
        return option_value(self.train, "--preset")

    @property
    def objective(self) -> str:
        return option_value(self.train, "--objective") or "sft"

    def corpus_argv(self, out: Path) -> list[str]:
        return [*shlex.split(self.corpus_command), "--out", str(out)]

    def train_argv(self, corpus: Path, out: Path) -> list[str]:
        base = ["--base", self.base] if self.base else []
        return ["--data", str(corpus), *base, *shlex.split(self.train), "--out", str(out)]

    @property
    def build_command(self) -> str:
        return f"zoo build --only {self.name}"


def option_value(command: str, option: str) -> str | None:
    """The value `option` has in `command` (a shell command line), or None."""
    words = shlex.split(command)
    return words[words.index(option) + 1] if option in words[:-1] else None


def recipe_path() -> Path:
    return Path(os.environ.get("ZOO_RECIPE") or str(resources.files("cards") / "recipe.json"))


def read_recipe(path: str | os.PathLike | None = None) -> list[Row]:
    """The recipe's rows, checked: unique names, known tiers, corpora and generators, and no option that
    zoo build decides (IntegrityError naming the first fault)."""
    file = Path(path) if path else recipe_path()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        corpora, rows = data["corpora"], data["checkpoints"]
        result = [Row(r["name"], r["tier"], r["corpus"], corpora.get(r["corpus"], ""), r["train"], r.get("base"))
                  for r in rows]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IntegrityError(f"recipe {file} is not a zoo recipe ({err})") from err
    seen: dict[str, Row] = {}
    for row in result:
        fault = (("a second row has this name" if row.name in seen else None)
                 or (f"tier {row.tier!r} is not one of {', '.join(TIERS)}" if row.tier not in TIERS else None)
                 or (f"corpus {row.corpus!r} is not in corpora" if not row.corpus_command else None)
                 or (f"the corpus command does not start with {' or '.join(GENERATORS)}"
                     if shlex.split(row.corpus_command)[0] not in GENERATORS else None)
                 or next((f"{o} is zoo build's to decide" for o in NOT_IN_A_ROW
                          if o in shlex.split(row.train) + shlex.split(row.corpus_command)), None)
                 or _base_fault(row, seen))
        if fault:
            raise IntegrityError(f"recipe {file}: {row.name}: {fault}")
        seen[row.name] = row
    return result


def _base_fault(row: Row, earlier: dict[str, Row]) -> str | None:
    if row.base is None:
        return None
    if not isinstance(row.base, str) or row.base not in earlier:
        return f"base {row.base!r} is not an earlier row"
    if row.preset:
        return "a row with a base takes no --preset"
    if row.tier == "cpu" and earlier[row.base].tier != "cpu":
        return f"a cpu row's base must be a cpu row ({row.base} is {earlier[row.base].tier})"
    return None


def select(rows: list[Row], tier: str | None = None, only: list[str] | None = None,
           task: str | None = None) -> list[Row]:
    """The rows of `tier`, `task` and the names `only` (all of them where not given); a UsageError for an
    unknown name (with the closest ones) or a selection that matches nothing."""
    names = [row.name for row in rows]
    for name in only or []:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            raise UsageError(f"--only {name}: not a recipe row" + (f" (closest: {', '.join(close)})" if close else ""))
    tasks = sorted({row.task for row in rows})
    if task and task not in tasks:
        raise UsageError(f"--task {task}: the recipe's tasks are {', '.join(tasks)}")
    chosen = [row for row in rows if (not tier or row.tier == tier) and (not only or row.name in only)
              and (not task or row.task == task)]
    if not chosen:
        raise UsageError("no recipe row matches " + " ".join(
            f"--{k} {v}" for k, v in (("tier", tier), ("only", " ".join(only or [])), ("task", task)) if v))
    return chosen
