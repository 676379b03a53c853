"""The generator interface, the registry of generators, and the command line they all share.

A generator is one object (a `Generator` subclass) that declares everything the rest of the
project needs to know about a corpus:

- `name`, `version`, `task` (in words) and `description` (for `--help`);
- `levels`: the level ladder as data, `{level: what it adds}` (for `--help`, the card, the README);
- `Options`: a frozen dataclass of its settings, validated in `__post_init__` (Python callers get
  the same `UsageError` as the command line);
- `make_item(options, level, index) -> Candidate`: the pure per-index function the corpus core
  (`cards.corpus`) runs in workers; the candidate carries the record, its de-duplication key and
  its leakage key;
- `schema(options)`: the record schema;
- `card(options, levels, reports, folder) -> CardFacts`: the facts its dataset card states;
- `view`: its *training view* (`TrainingView`): how a record splits into prompt, chain of thought
  and answer, what exact match compares, and its own metrics.

`command_main(generator)` is the whole console script: the common options (`--level`; `-n`, the
examples per level in all, split 80/10/10 unless `--num-train`/`--num-valid`/`--num-test` give a
split's exact count; `--seed`, `--out`, `--overwrite`, `--num-proc`, `--tokenizer`) plus the
generator's own (`add_arguments`). `--tokenizer NAME` (`tokenizer=` from Python) adds the column
`attribution_tokens` to a generator whose records have `attribution`: the same targets in token
indices of that tokenizer (`cards.attribution.WithTokenSpans`); the card and the metadata name it.
Before any work it refuses, as one-line errors: an option given as an empty string, more than
`max_examples` examples per configuration (and whatever `check` refuses), and an output folder
`cards.dataset_folder.check_target` refuses (`--overwrite` replaces only an empty folder or a corpus
folder this project wrote).
Python callers use `generate(name, out, ...)`; `get(name)` looks a generator up; `register`
adds one (a test, a plugin) without touching any other file.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from cards.cli import Parser, non_negative_int, parse_levels, positive_int, refuse_empty, run
from cards.corpus import SPLIT_FRACTIONS, SPLITS, Candidate, Config, Report, build, split_sizes, summary
from cards.dataset_folder import check_target
from cards.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

BUILTIN = {"tinysql": "tinysql.generator", "multmath": "multmath.generator", "mcq": "mcq.generator",
           "facts": "facts.generator", "assoc": "assoc.generator"}
_REGISTRY: dict[str, "Generator"] = {}


# --- what a generator hands over -------------------------------------------------------------------


class TrainingView:
    """How a record trains and is scored. This base class is the generic prompt/completion view: any
    corpus with `prompt` and `completion` columns trains and evaluates through it."""

    columns: ClassVar[tuple[str, ...]] = ("prompt", "completion")
    chain_of_thought: ClassVar[bool] = False  # records carry a CoT that icot/nocot can remove
    answer_prefix: ClassVar[str] = ""  # tokenised apart from the rest of the answer (e.g. multmath's " ####")
    digit_tokenizer: ClassVar[bool] = False  # a model from scratch gets one token per digit
    prompt_special_tokens: ClassVar[bool] = True  # prompts get the tokenizer's special tokens (a chat template
    # writes its own)

    def pieces(self, record: dict) -> tuple[str, str, str]:
        """(prompt, chain of thought, answer) text; the answer starts with `answer_prefix`."""
        return record["prompt"], "", record["completion"]

    def gold(self, record: dict) -> str:
        """What exact match compares a completion with."""
        return record["completion"].strip()

    def answer(self, output: str) -> str:
        """The part of a greedy completion that exact match reads."""
        return output.strip()

    def metrics(self, records: list[dict], outputs: list[str]) -> dict:
        """Metrics beyond exact match, from the records and their greedy completions."""
        return {}

    def choices(self, record: dict) -> tuple[list[str], int] | None:
        """The continuations to score by likelihood and the gold one's index (multiple choice), or None."""
        return None

    def running_sums(self, record: dict) -> list[int] | None:
        """Per answer digit, the auxiliary-loss regression target, or None when the corpus has none."""
        return None


@dataclass
class CardFacts:
    """What a dataset card states, as data: the template renders it (`cards.card`)."""

    pretty_name: str
    checks: list[str]  # the checks that ran on every kept record; empty when none did
    config_notes: dict[str, str]
    fields: dict[str, str]
    leakage_group: str = "records sharing a normalised label"
    task_categories: list[str] = field(default_factory=lambda: ["text-generation"])
    tags: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    license: str = "cc-by-4.0"
    template: str | None = None  # the generator's own card section: a Jinja template (package resource text)
    context: dict[str, Any] = field(default_factory=dict)  # what that template reads


class Generator:
    """The interface. Subclasses set the class attributes and implement `make_item`, `schema`, `card`."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    task: ClassVar[str]
    description: ClassVar[str]
    examples: ClassVar[str] = ""  # example commands, the end of --help
    levels: ClassVar[dict[int, str]]
    Options: ClassVar[type]
    view: ClassVar[TrainingView] = TrainingView()
    chunk: ClassVar[int] = 128  # indices per work unit of the corpus core
    max_examples: ClassVar[int] = 10_000_000  # the most examples one configuration may ask for
    tokenizer_help: ClassVar[str] = ""  # what else `--tokenizer` does for this generator, for --help

    # -- the corpus --
    def make_item(self, options, level, index: int) -> Candidate:
        raise NotImplementedError

    def schema(self, options) -> pa.Schema:
        raise NotImplementedError

    def card(self, options, levels: list, reports: list[Report], folder: Path) -> CardFacts:
        raise NotImplementedError

    def config_name(self, level) -> str:
        return f"level{level}"

    def default_levels(self) -> list:
        return [min(self.levels)]

    def configs(self, options, levels: list, sizes: dict[str, int]) -> list[Config]:
        """One configuration per level; override for sizes that depend on the level, or a plan per config."""
        return [Config(self.config_name(level), functools.partial(self.make_item, options, level), dict(sizes),
                       chunk=self.chunk) for level in levels]

    def check(self, options, levels: list, sizes: dict[str, int]) -> None:
        """Refuse, before any work, a request that cannot be met (UsageError)."""

    def split_fractions(self, options) -> dict[str, float]:
        """How `-n` examples are shared among the splits (default 80/10/10)."""
        return SPLIT_FRACTIONS

    def prepare(self, options, levels: list, num_proc: int) -> None:
        """Load what every worker needs, once, before the workers fork."""

    def write_files(self, folder: Path, options, levels: list, reports: list[Report]) -> None:
        """Files beside the parquet data (written into the not-yet-renamed output folder)."""

    # -- the command line --
    def levels_help(self) -> str:
        """The `levels:` part of --help: the ladder, one line per level."""
        return "\n".join(f"  {n}  {text.replace('`', '')}" for n, text in self.levels.items())

    def epilog(self) -> str:
        return f"levels:\n{self.levels_help()}\n\nexamples:\n{self.examples}"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The generator's own options (the common ones are added by `command_parser`)."""

    def options_from(self, args: argparse.Namespace):
        """The Options of parsed arguments."""
        return self.Options(seed=args.seed)

    def add_size_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--level", default=str(min(self.levels)),
                            help=f"level {min(self.levels)}-{max(self.levels)}, a range like 1-4, or a list like "
                                 f"1,3 (default {min(self.levels)}); several levels give one config each")
        parser.add_argument("-n", "--num-examples", type=positive_int, default=10_000, metavar="N",
                            help="examples per level in all, split 80/10/10 into train/validation/test (default "
                                 f"10000, at most {self.max_examples:,})")
        for flag, split in zip(("--num-train", "--num-valid", "--num-test"), SPLITS):
            parser.add_argument(flag, type=non_negative_int, metavar="N",
                                help=f"exactly N {split} examples per level, instead of its share of -n")

    def levels_from(self, args: argparse.Namespace) -> list:
        return parse_levels(args.level, min(self.levels), max(self.levels))

    def sizes_from(self, args: argparse.Namespace) -> dict[str, int]:
        shares = split_sizes(args.num_examples, self.split_fractions(self.options_from(args)))
        given = dict(zip(SPLITS, (args.num_train, args.num_valid, args.num_test)))
        return {split: shares[split] if given[split] is None else given[split] for split in SPLITS}

    def default_out(self, args: argparse.Namespace, levels: list) -> str:
        return f"{self.name}-level{args.level.replace(',', '_')}"


def validate_seed(seed) -> None:
    """For Options.__post_init__: the seed must be an integer."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UsageError(f"seed: expected an integer, got {seed!r}")


def validate_choice(option: str, value, allowed) -> None:
    """For Options.__post_init__: a value that must be one of `allowed`."""
    if value not in allowed:
        raise UsageError(f"{option}: {value!r} is not one of {', '.join(map(str, allowed))}")


# --- the registry ----------------------------------------------------------------------------------


def register(generator: Generator) -> Generator:
    """Add (or replace) a generator under its name; returns it."""
    _REGISTRY[generator.name] = generator
    return generator


def get(name: str) -> Generator:
    """The generator called `name` (a built-in one is imported on first use); UsageError if unknown."""
    if name not in _REGISTRY and name in BUILTIN:
        register(importlib.import_module(BUILTIN[name]).GENERATOR)
    if name not in _REGISTRY:
        raise UsageError(f"unknown generator {name!r} (known: {', '.join(names())})")
    return _REGISTRY[name]


def names() -> list[str]:
    return sorted(set(BUILTIN) | set(_REGISTRY))


# --- running one ---------------------------------------------------------------------------------------


def generate(generator: str | Generator, out: str | Path, levels: list | None = None,
             num_examples: int | None = None, sizes: dict[str, int] | None = None, num_proc: int = 1,
             overwrite: bool = False, command: str | None = None, tokenizer: str | None = None,
             **options) -> list[Report]:
    """Write a corpus folder from Python: `generate("tinysql", "l3", levels=[3], num_examples=1000, seed=1)`.

    `options` are the generator's Options fields; `sizes` gives exact per-split counts instead of
    `num_examples` (split 80/10/10); `tokenizer` is `--tokenizer` (also the Options field of a generator
    that has one). Returns the per-config reports."""
    gen = get(generator) if isinstance(generator, str) else generator
    if tokenizer is not None and "tokenizer" in {f.name for f in dataclasses.fields(gen.Options)}:
        options["tokenizer"] = tokenizer
    opts = gen.Options(**options)
    levels = list(levels) if levels else gen.default_levels()
    sizes = sizes or split_sizes(10_000 if num_examples is None else num_examples, gen.split_fractions(opts))
    return write(gen, out, opts, levels, sizes, num_proc, overwrite, command or _python_call(gen, levels, sizes, opts),
                 tokenizer)


def write(gen: Generator, out: str | Path, options, levels: list, sizes: dict[str, int], num_proc: int,
          overwrite: bool, command: str, tokenizer: str | None = None) -> list[Report]:
    """Build the corpus folder and its card; every request that cannot be met is refused before any work."""
    from cards import attribution
    from cards.card import CorpusMetadata, dataset_card

    if sum(sizes.values()) > gen.max_examples:
        raise UsageError(f"{sum(sizes.values()):,} examples per configuration asked for; {gen.name} makes at most "
                         f"{gen.max_examples:,} per configuration")
    gen.check(options, levels, sizes)
    configs, schema = gen.configs(options, levels, sizes), gen.schema(options)
    if tokenizer:
        configs, schema = _with_token_spans(gen, configs, schema, tokenizer)
    check_target(out, overwrite)
    gen.prepare(options, levels, num_proc)
    metadata = CorpusMetadata(gen.name, gen.version, options.seed, command,
                              {**_option_values(options), **({"tokenizer": tokenizer} if tokenizer else {})})

    def finish(folder: Path, reports: list[Report]) -> str:
        gen.write_files(folder, options, levels, reports)
        facts = gen.card(options, levels, reports, folder)
        if tokenizer:
            facts.fields[attribution.TOKENS_FIELD[0]] = f"{attribution.TOKENS_DOC} (tokenizer `{tokenizer}`)"
            facts.checks += [attribution.tokens_checked(tokenizer)] if facts.checks else []
            facts.packages += [p for p in ("transformers", "tokenizers") if p not in facts.packages]
        return dataset_card(facts, reports, metadata)

    return build(out, configs, schema, finish, num_proc=num_proc, overwrite=overwrite)


def _with_token_spans(gen: Generator, configs: list[Config], schema, tokenizer: str) -> tuple[list[Config], Any]:
    """`--tokenizer`: configs whose records also get `attribution_tokens`, and the schema with that column;
    refused (UsageError) for records without `attribution` or the view's text, and for a tokenizer that does
    not load, before any work."""
    from cards import attribution

    missing = [c for c in (attribution.FIELD[0], *gen.view.columns) if schema.get_field_index(c) < 0]
    if missing:
        raise UsageError(f"--tokenizer: {gen.name} records with these options have no {', '.join(missing)} column, "
                         "so no token spans can be made")
    attribution.load_tokenizer(tokenizer)  # refused here if it does not load; loaded once before workers fork
    configs = [dataclasses.replace(c, make=attribution.WithTokenSpans(c.make, gen.view, tokenizer)) for c in configs]
    return configs, attribution.with_tokens_field(schema)


def command_parser(gen: Generator) -> Parser:
    p = Parser(prog=f"{gen.name}-gen", description=gen.description, epilog=gen.epilog())
    gen.add_size_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed and options, same bytes (default 0)")
    p.add_argument("--out", help="output folder (default: named after the levels)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output folder if it exists and is empty or a corpus folder this project wrote "
                        "(never the current, home or a parent folder)")
    p.add_argument("--num-proc", type=positive_int, default=1,
                   help="worker processes (default 1), at most the number of CPUs and the chunks of work asked "
                        "for; the output does not depend on it")
    p.add_argument("--tokenizer", metavar="PATH_OR_ID",
                   help="a fast transformers tokenizer (a folder or a Hub id): records also get `attribution_tokens`, "
                        "their attribution spans in its token indices" + gen.tokenizer_help)
    gen.add_arguments(p)
    return p


def command_main(gen: Generator, argv: Sequence[str] | None = None) -> int:
    """The console script of a generator: parse, generate, print the summary line."""
    prog = f"{gen.name}-gen"

    def main(argv: Sequence[str] | None) -> int:
        parser = command_parser(gen)
        args = parser.parse_args(argv)
        refuse_empty(parser, args)
        levels = gen.levels_from(args)
        out = args.out or gen.default_out(args, levels)
        reports = write(gen, out, gen.options_from(args), levels, gen.sizes_from(args), args.num_proc,
                        args.overwrite, command_line(prog, None if argv is None else list(argv)), args.tokenizer)
        print(summary(reports, out), file=sys.stderr)
        return 0

    return run(prog, main, argv)


NEUTRAL_FLAGS = ("--overwrite",)
NEUTRAL_OPTIONS = ("--num-proc",)


def command_line(prog: str, argv: list[str] | None = None) -> str:
    """The command that was run, quoted for a shell, without the flags that cannot change the output
    (`--overwrite`, `--num-proc`), so the same corpus always carries the same card."""
    args = list(sys.argv[1:] if argv is None else argv)
    kept = []
    while args:
        arg = args.pop(0)
        if arg in NEUTRAL_OPTIONS and args:
            args.pop(0)
        elif arg not in NEUTRAL_FLAGS and not arg.startswith(tuple(f"{o}=" for o in NEUTRAL_OPTIONS)):
            kept.append(arg)
    return shlex.join([prog, *kept])


def _option_values(options) -> dict:
    return {f.name: _plain(getattr(options, f.name)) for f in dataclasses.fields(options)}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _python_call(gen: Generator, levels: list, sizes: dict[str, int], options) -> str:
    values = ", ".join(f"{k}={v!r}" for k, v in _option_values(options).items())
    return f"cards.generator.generate({gen.name!r}, out, levels={levels!r}, sizes={sizes!r}, {values})"
