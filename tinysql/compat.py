"""The original-TinySQL compatibility mode (`tinysql-gen --compat original`): its command sets as data,
their sampler, and the record columns in the original's shapes.

The original (withmartian/TinySQL) publishes five command sets, `cs1_dataset` ... `cs5_dataset` (and
`_synonyms` variants), split 76.5 / 13.5 / 10 %. `COMMAND_SETS` holds what each one contains and how
often; the rates, counts and shares are measured on its generator. `sample_spec` draws a query of that
shape from an item's random stream (with the helpers of `tinysql.query`), keeping every label valid
where the original's are not; `DEPARTURES` says where and why, for the dataset card.
`original_columns` writes `table_fields`, `select` and `order_by` as the JSON the original's field
model loads (`{name, type, synonym, use_synonym}`, `{name, aggregate, synonym, use_synonym}`,
`{name, asc}` or null). The English request, the context and the alpaca prompt are the project's own,
which already have the original's form.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache

from tinysql import vocabulary
from tinysql.query import AGGREGATES_BY_KIND, Context, chance, is_key, join_edges, new_spec, pick_columns, sample_rows

MODES = ("none", "original")
SPLIT_FRACTIONS = {"train": 0.765, "validation": 0.135, "test": 0.10}  # its 0.1 test, then 0.15 of the rest
WIDEST = 12  # columns of the main table: 2-12, uniform
JOINED_WIDEST = 4  # columns of a joined table: 1-4, uniform
BARE_RATE = 0.36  # share of CS3 select items without an aggregate, measured on the original's generator
MAX_CONDITIONS = 3
COMPARISONS = ("=", ">", "<", ">=", "<=")  # the original's WHERE operators on numbers and dates; text gets LIKE '%x%'



@dataclass(frozen=True)
class CommandSet:
    number: int
    adds: str  # what it adds to the ones below, in markdown
    order_by: float = 0.0  # chance of an ORDER BY
    where: float = 0.0  # chance of a WHERE
    aggregates: bool = False  # select items get aggregates
    joins: int = 0


COMMAND_SETS = {cs.number: cs for cs in (
    CommandSet(1, "`SELECT` 1 to all columns `FROM` a table of 2-12 columns"),
    CommandSet(2, "`ORDER BY` 1 to all columns, one shared direction, on 90 % of items", order_by=0.9),
    CommandSet(3, "aggregates `SUM/AVG/MIN/MAX/COUNT(col) AS AGG_col` on 64 % of select items; `ORDER BY` on "
                  "90 %", order_by=0.9, aggregates=True),
    CommandSet(4, "`WHERE` with 1-3 `AND`-ed conditions (`= > < >= <=`, `LIKE '%x%'`) on 80 % of items; "
                  "`ORDER BY` on 90 %", order_by=0.9, where=0.8),
    CommandSet(5, "`JOIN` of a second table (1-4 columns) on a key; `WHERE` on 80 %, `ORDER BY` on 90 %",
               order_by=0.9, where=0.8, joins=1),
)}

DEPARTURES = [
    "Every label is valid SQL that runs: where a CS3 item mixes aggregates and bare columns (the original's "
    "are invalid there on strict engines), the bare columns are also its `GROUP BY` (and the request says "
    "\"for each ...\"), and they come before the aggregates in the select list; such an item's `ORDER BY` "
    "names its group columns or aggregate aliases, an all-aggregate item's its aliases (2.5 keys on average "
    "at CS3, against the original's 4.0 columns of the table).",
    "Aggregates suit the column's type (SUM/AVG on numbers; MIN/MAX on numbers, text and dates; COUNT on "
    "anything; keys only COUNT); the original falls back to COUNT for parameterised types such as "
    "`VARCHAR(255)` (COUNT is 55 % of its CS3 aggregates, 50 % here, mostly over keys, booleans and text). "
    "Never `COUNT(*)`, as in the original.",
    "Tables and columns come from this project's vocabulary, whose tables have 6-13 related columns: an "
    "item's table is drawn among those with at least the drawn width (2-12), instead of random unrelated "
    "fields; a table's synonym is the one the request uses, else one of its own.",
    "CS4/CS5 WHERE literals come from one of the context's sample rows, which meets every condition, and "
    "suit the column's type (the original compares e.g. integers with BLOB columns; a boolean is compared "
    "with TRUE or FALSE).",
    "CS5 always joins (the original joins only when two columns share a type, 73 % of its items), on a "
    "foreign key to the other table's `id`; both `CREATE TABLE`s are in the context (the original gives "
    "only the first) and every column is qualified `table.column` in the SQL (the original's bare names "
    "can be ambiguous). Its `select` and `order_by` JSON give bare column names, of the first table.",
    "The original's lenient metric (`tinysql-score --metric original`) knows no `GROUP BY`, so it scores the "
    "grouped CS3 labels themselves below 1 (0.94 on average; 38 % of CS3 labels score 1.0); every CS1, CS2 "
    "and ungrouped CS3 label scores 1.0.",
    "`command_set` is the level: the original's CS3 records say 2 (its CS3 generator calls CS2's).",
    "`table_fields`' `use_synonym` is true where the request names that column by its synonym (always "
    "false in the original, which records it on `select` only).",
]


def dataset_name(level: int, synonyms: bool) -> str:
    """The original's dataset name for `level`: `cs3_dataset`, `cs3_dataset_synonyms`."""
    return f"cs{level}_dataset" + ("_synonyms" if synonyms else "")


def table(numbers=None) -> str:
    """The markdown table of the command sets `numbers` (default all), for the card."""
    rows = [f"| {n} | {COMMAND_SETS[n].adds} | {COMMAND_SETS[n].joins + 1} |" for n in (numbers or COMMAND_SETS)]
    return "\n".join(["| level | adds | tables |", "|---|---|---|", *rows])


# ---------------------------------------------------------------------------------------------
# Sampling


@cache
def _tables_by_width() -> dict[int, tuple[str, ...]]:
    """For each width 2-12, the vocabulary's tables with at least that many columns."""
    vocab = vocabulary.load()
    return {w: tuple(t for t in vocab.tables if len(vocab.tables[t].columns) >= w) for w in range(2, WIDEST + 1)}


@cache
def _joins_by_width() -> dict[int, tuple[tuple[str, str, str, str], ...]]:
    """For each width, every (main table, child, foreign key, parent) whose main table is that wide."""
    vocab = vocabulary.load()
    sides = [(main, *edge) for edge in join_edges() for main in (edge[0], edge[2])]
    return {w: tuple(s for s in sides if len(vocab.tables[s[0]].columns) >= w) for w in range(2, WIDEST + 1)}


def sample_context(rng: random.Random, joins: int) -> tuple[Context, list[dict]]:
    """The main table with 2-12 columns (uniform), and for a join a second table with 1-4."""
    width = rng.randint(2, WIDEST)
    if not joins:
        main = rng.choice(_tables_by_width()[width])
        columns = {main: pick_columns(rng, main, set(), width)}
        join_specs = []
    else:
        main, child, fk, parent = rng.choice(_joins_by_width()[width])
        other = parent if main == child else child
        required = {child: {fk}, parent: {"id"}}
        columns = {main: pick_columns(rng, main, required[main], width)}
        available = len(vocabulary.load().tables[other].columns)
        columns[other] = pick_columns(rng, other, required[other], rng.randint(1, min(JOINED_WIDEST, available)))
        join_specs = [{"table": other, "left": [child, fk], "right": [parent, "id"]}]
    rows = {t: sample_rows(rng, columns[t]) for t in columns}
    return Context(list(columns), columns, rows, {}, "qualified" if joins else "bare"), join_specs


def sample_spec(rng: random.Random, level: int) -> tuple[dict, Context]:
    """A query of command set `level`, drawn as the original draws it, kept valid (see DEPARTURES)."""
    rules = COMMAND_SETS[level]
    context, join_specs = sample_context(rng, rules.joins)
    spec = new_spec(level, context, join_specs)
    refs = context.refs(context.tables[0])
    chosen = rng.sample(refs, rng.randint(1, len(refs)))
    if rules.aggregates:
        _fill_aggregates(rng, spec, context, chosen)
    else:
        spec["select"] = chosen
    if chance(rng, rules.where):
        spec["where"] = _sample_where(rng, spec, context)
    if chance(rng, rules.order_by):
        spec["order_by"] = _sample_order(rng, spec, refs)
    return spec, context


def _fill_aggregates(rng: random.Random, spec: dict, context: Context, chosen: list[list[str]]) -> None:
    for ref in chosen:
        if rng.random() < BARE_RATE:
            spec["select"].append(ref)
            continue
        func = "COUNT" if is_key(ref) else rng.choice(AGGREGATES_BY_KIND[context.kind(ref)])
        spec["aggregates"].append({"func": func, "column": ref, "alias": f"{func}_{ref[1]}"})
    if spec["aggregates"]:
        spec["group_by"] = list(spec["select"])


def _sample_where(rng: random.Random, spec: dict, context: Context) -> dict | None:
    """1-3 AND-ed conditions on columns of the main table, all met by one of its rows (that joins, in
    CS5), so that the query returns rows as the original's always may."""
    main = context.tables[0]
    anchor = rng.choice(_joined_rows(spec, context))
    usable = [[main, c] for c in context.columns[main] if anchor[c] is not None]
    if not usable:
        return None
    chosen = rng.sample(usable, rng.randint(1, min(MAX_CONDITIONS, len(usable))))
    return {"connector": "AND", "conditions": [_condition(rng, context, r, anchor[r[1]]) for r in chosen]}


def _joined_rows(spec: dict, context: Context) -> list[dict]:
    """The main table's sample rows that have a partner in the joined table (all of them without a join)."""
    main = context.tables[0]
    if not spec["joins"]:
        return context.rows[main]
    (child, fk), (parent, _) = spec["joins"][0]["left"], spec["joins"][0]["right"]
    ids = {row["id"] for row in context.rows[parent]}
    if main == child:
        return [row for row in context.rows[child] if row[fk] in ids] or context.rows[main]
    keys = {row[fk] for row in context.rows[child]}
    return [row for row in context.rows[parent] if row["id"] in keys] or context.rows[main]


def _condition(rng: random.Random, context: Context, ref: list[str], value) -> dict:
    """A condition on `ref` with one of the original's operators that the row value `value` meets."""
    kind = context.kind(ref)
    if kind == "bool":
        return {"column": ref, "op": "= TRUE" if value else "= FALSE", "value": None}
    if kind == "text":
        text = str(value)
        size = min(len(text), rng.randint(3, 5))
        start = rng.randint(0, len(text) - size)
        return {"column": ref, "op": "LIKE %x%", "value": text[start:start + size]}
    below = sorted({v for v in context.values(ref) if v < value})
    above = sorted({v for v in context.values(ref) if v > value})
    op = rng.choice([op for op in COMPARISONS if (op != ">" or below) and (op != "<" or above)])
    literal = rng.choice(below) if op == ">" else rng.choice(above) if op == "<" else value
    return {"column": ref, "op": op, "value": literal}


def _sample_order(rng: random.Random, spec: dict, refs: list[list[str]]) -> list[dict]:
    """1 to all keys in a random order, one direction for all: any column of the table, or for an
    aggregate query its group columns and aggregate aliases."""
    if spec["aggregates"]:
        keys = [{"column": r} for r in spec["group_by"]] + [{"alias": a["alias"]} for a in spec["aggregates"]]
    else:
        keys = [{"column": r} for r in refs]
    chosen = rng.sample(keys, rng.randint(1, len(keys)))
    direction = rng.choice(("ASC", "DESC"))
    return [{**key, "direction": direction} for key in chosen]


# ---------------------------------------------------------------------------------------------
# The original's record columns


def original_columns(rng: random.Random, spec: dict, context: Context, names: dict,
                     types: list[str]) -> dict:
    """`table_name_synonym`, `table_fields`, `select` and `order_by` as the original writes them.

    `types` are the main table's column types as its CREATE TABLE writes them. A column's `synonym` is
    the one the request uses, else one of its own (drawn from `rng`), the same in every list."""
    vocab = vocabulary.load()
    main = context.tables[0]
    used = {c: names["columns"][f"{main}.{c}"] for c in context.columns[main]}
    synonym = {c: word if word != c else rng.choice(vocab.columns[c].synonyms) for c, word in used.items()}

    def field(column: str, **extra) -> dict:
        return {"name": column, **extra, "synonym": synonym[column], "use_synonym": used[column] != column}

    table_word = names["tables"][main]
    fields = [field(c, type=t) for c, t in zip(context.columns[main], types)]
    select = ([field(r[1], aggregate="") for r in spec["select"]] +
              [field(a["column"][1], aggregate=a["func"]) for a in spec["aggregates"]])
    order_by = None if spec["level"] == 1 else [
        {"name": o["alias"] if "alias" in o else o["column"][1], "asc": o["direction"] == "ASC"}
        for o in spec["order_by"]]
    return {
        "table_name_synonym": table_word if table_word != main else rng.choice(vocab.tables[main].synonyms),
        "table_fields": json.dumps(fields),
        "select": json.dumps(select),
        "order_by": None if order_by is None else json.dumps(order_by),
    }


FIELD_DOCS = {  # replacing tinysql.generate's entries of the same names
    "table_name, table_name_synonym, table_name_use_synonym": "the main table, a synonym of it (the one the request "
                                                              "uses, if it uses one) and whether the request uses it",
    "table_fields, select, order_by": "JSON strings in the original TinySQL's shapes: `table_fields` a list of "
                                      "`{name, type, synonym, use_synonym}` (the main table's columns, as in its "
                                      "CREATE TABLE); `select` a list of `{name, aggregate, synonym, use_synonym}` in "
                                      "select-list order (`aggregate` SUM/AVG/MIN/MAX/COUNT, or \"\" for a bare "
                                      "column); `order_by` a list of `{name, asc}` (a column or an aggregate's alias), "
                                      "`[]` without ORDER BY, null at level 1",
}
