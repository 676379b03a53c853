"""The TinySQL generator: its options, levels, schema, card facts and training view (`cards.generator`)."""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cards.corpus import SPLIT_FRACTIONS
from cards.errors import UsageError
from cards.generator import CardFacts, Generator, TrainingView, validate_choice, validate_seed
from tinysql import compat, vocabulary
from tinysql import levels as ladder

if TYPE_CHECKING:
    import pyarrow as pa

# The modules that make, check and describe items (pyarrow, sqlglot, huggingface_hub behind them) are
# imported where they are first used, so that `tinysql-gen --help` and the argument checks stay quick.

FORMATS = ("alpaca", "chat", "both")
DIALECTS = ("sqlite", "postgres", "mysql", "duckdb", "bigquery", "snowflake", "tsql", "spark", "trino", "oracle")


@dataclass(frozen=True)
class Options:
    seed: int = 0
    synonyms: bool = False
    dialect: str = "sqlite"
    format: str = "alpaca"
    validate: bool = True  # off only in bench/, to measure what the checks cost
    compat: str = "none"  # "original": the original TinySQL's command sets and record shapes (tinysql.compat)

    def __post_init__(self):
        validate_seed(self.seed)
        validate_choice("dialect", self.dialect, DIALECTS)
        validate_choice("format", self.format, FORMATS)
        validate_choice("compat", self.compat, compat.MODES)


class TinySQLView(TrainingView):
    """Prompt and SQL completion; the TinySQL scorer adds normalised and execution match."""

    columns = ("prompt", "completion", "sql_statement", "create_statement")

    def metrics(self, records: list[dict], outputs: list[str]) -> dict:
        from tinysql.score import score_one

        scores = [score_one(r["sql_statement"], o.strip(), r["create_statement"], r.get("dialect") or "sqlite")
                  for r, o in zip(records, outputs)]
        n = max(len(scores), 1)
        return {"normalized_match": sum(s["normalized"] for s in scores) / n,
                "execution_match": sum(s["execution"] for s in scores) / n}


class TinySQL(Generator):
    name = "tinysql"
    task = "text-to-SQL"
    description = ("Generate a progressively harder text-to-SQL corpus whose labels are parsed, executed and "
                   "checked against the request before they are kept.")
    levels = ladder.NOTES  # {level: what it adds}, from the table in tinysql.levels
    Options = Options
    view = TinySQLView()

    examples = """\
  tinysql-gen --level 3                       # 10,000 level-3 items into ./tinysql-level3
  tinysql-gen --level 1-8 -n 5000 --synonyms  # one config per level
  tinysql-gen --level 5 --dialect postgres --format chat --out /tmp/l5
Load the result with datasets.load_dataset("<out>") or load_dataset("<out>", "level5")."""

    def make_item(self, options: Options, level: int, index: int):
        from tinysql import generate as items

        return items.make_record(options, level, index)

    def check(self, options: Options, levels: list, sizes: dict[str, int]) -> None:
        beyond = [level for level in levels if level not in compat.COMMAND_SETS]
        if options.compat == "original" and beyond:
            raise UsageError(f"--compat original makes levels 1-5 (the original's command sets), not level "
                             f"{beyond[0]}")

    def split_fractions(self, options: Options) -> dict[str, float]:
        return compat.SPLIT_FRACTIONS if options.compat == "original" else SPLIT_FRACTIONS

    def configs(self, options: Options, levels: list, sizes: dict[str, int]) -> list:
        from tinysql import generate as items

        configs = super().configs(options, levels, sizes)
        for config, name, level in zip(configs, self._config_names(options, levels), levels):
            config.name = name
            config.make = functools.partial(items.make_record, options, level)  # make_item without its import
        return configs

    def _config_names(self, options: Options, levels: list) -> list[str]:
        if options.compat == "original":
            return [compat.dataset_name(level, options.synonyms) for level in levels]
        return [self.config_name(level) for level in levels]

    def default_out(self, args, levels: list) -> str:
        if args.compat == "original" and len(levels) == 1:
            return compat.dataset_name(levels[0], args.synonyms)
        return super().default_out(args, levels)

    def schema(self, options: Options) -> pa.Schema:
        import pyarrow as pa

        from cards import attribution
        from tinysql import generate as items

        return items.schema(options.format).append(pa.field(*attribution.FIELD))

    def prepare(self, options: Options, levels: list, num_proc: int) -> None:
        if num_proc > 1:
            vocabulary.pools()  # once, before the workers fork, instead of once per worker

    def add_arguments(self, p) -> None:
        p.add_argument("--synonyms", action="store_true",
                       help="name tables (80%% of the time) and columns (50%%) by English synonyms in the request")
        p.add_argument("--format", choices=FORMATS, default="alpaca",
                       help="alpaca: prompt/completion columns in the TinySQL one-line format; chat: a messages "
                            "column; both (default alpaca)")
        p.add_argument("--dialect", choices=DIALECTS, default="sqlite",
                       help="SQL dialect of the labels and contexts, transpiled with sqlglot (default sqlite)")
        p.add_argument("--compat", choices=compat.MODES, default="none",
                       help="original: levels 1-5 as the original TinySQL's command sets CS1-CS5 (their clause "
                            "frequencies and field counts, kept valid), its JSON shapes of table_fields, select and "
                            "order_by, configs named cs<N>_dataset[_synonyms], splits 76.5/13.5/10 (default none)")
        p.add_argument("--no-validate", action="store_true", help=argparse.SUPPRESS)  # for bench/ only

    def options_from(self, args) -> Options:
        return Options(seed=args.seed, synonyms=args.synonyms, dialect=args.dialect, format=args.format,
                       validate=not args.no_validate, compat=args.compat)

    def card(self, options: Options, levels: list, reports, folder) -> CardFacts:
        from cards.card import example_record, levels_name, package_template
        from tinysql import attribution as spans
        from tinysql import generate as items
        from tinysql import validate as checks

        original = options.compat == "original"
        notes = compat.COMMAND_SETS if original else ladder.LEVELS
        return CardFacts(
            pretty_name="TinySQL " + levels_name(levels) + (" (original TinySQL layout)" if original else ""),
            checks=list(checks.CHECKS) + [spans.CHECKED] if options.validate else [],
            config_notes=dict(zip(self._config_names(options, levels), (notes[level].adds for level in levels))),
            fields={**items.FIELD_DOCS, **(compat.FIELD_DOCS if original else {}), "attribution": spans.FIELD_DOC},
            tags=["text-to-sql", "synthetic", "interpretability", "tinysql"],
            packages=["sqlglot", "faker", "pyarrow"],
            template=package_template("tinysql", "card.md"),
            context={"options": options, "level_table": (compat.table if original else ladder.table)(levels),
                     "example": example_record(folder, reports), "departures": compat.DEPARTURES},
        )


GENERATOR = TinySQL()
