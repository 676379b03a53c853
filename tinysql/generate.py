"""One TinySQL record per index: sample a query, write its English, render and check its SQL.

`make_item(options, level, index)` is the pure per-index function; `make_record` adds its attribution spans
and is what the corpus core runs in workers (`tinysql.generator` declares it, with the options, schema and
card, to `cards.generator`).
`sample(options, level, index)` is the same item with the structured query and context it was
written from (what other generators build on, e.g. mcq's SQL questions).
"""

from __future__ import annotations

import json
from typing import NamedTuple

import pyarrow as pa
import sqlglot

from cards.corpus import Candidate, item_rng
from tinysql import compat
from tinysql.attribution import with_targets
from tinysql import validate as checks
from tinysql.english import choose_names, describe
from tinysql.query import Context, column_sql, column_types, create_sql, sample_spec, to_sql

INSTRUCTION = "### Instruction: {english} ### Context: {context} ### Response: "
_SORTED_JSON = json.JSONEncoder(sort_keys=True).encode  # json.dumps(..., sort_keys=True), without a new encoder per call


class Sampled(NamedTuple):
    candidate: Candidate  # the record, or the reason it was rejected
    spec: dict  # the structured query (the record's `clauses`, without `names`)
    context: Context  # its tables, columns and sample rows
    names: dict  # the word the request uses for each table and column (`clauses["names"]`)


def make_item(options, level: int, index: int) -> Candidate:
    """The candidate record at `index` of `level`: a pure function of (options, level, index)."""
    return sample(options, level, index).candidate


def make_record(options, level: int, index: int) -> Candidate:
    """`make_item` with the record's attribution spans filled and checked: what `tinysql-gen` writes."""
    item = sample(options, level, index)
    return with_targets(item.candidate, options.format, item.spec, item.names)


def sample(options, level: int, index: int) -> Sampled:
    """The item at `index` of `level` (`options` a `tinysql.generator.Options`) with its query and context."""
    rng = item_rng(options.seed, "tinysql", f"level{level}", index)
    spec, context = (compat.sample_spec if options.compat == "original" else sample_spec)(rng, level)
    names = choose_names(rng, context, options.synonyms)
    return Sampled(_candidate(options, level, index, rng, spec, context, names), spec, context, names)


def _candidate(options, level: int, index: int, rng, spec: dict, context: Context, names: dict) -> Candidate:
    english = describe(rng, spec, context, names)
    sql = to_sql(spec, context)
    creates = [create_sql(t, context.columns[t]) for t in context.tables]
    out_sql, out_creates = sql, creates
    if options.dialect != "sqlite":
        try:
            out_sql = sqlglot.transpile(sql, read="sqlite", write=options.dialect)[0]
            out_creates = [sqlglot.transpile(c, read="sqlite", write=options.dialect)[0] for c in creates]
        except sqlglot.errors.SqlglotError:
            return Candidate(None, "dialect_error")
    if options.validate:
        reason = checks.validate(sql, spec, context, english, names, out_sql, options.dialect)
        if reason:
            return Candidate(None, reason)
    create = "; ".join(out_creates)
    main = spec["tables"][0]["table"]
    first = context.tables[0]  # the first CREATE TABLE (at level 8 not always the main table)
    fields = _fields(out_creates[0]) if options.dialect != "sqlite" else column_types(first, context.columns[first])
    record = {
        "id": f"tinysql-l{level}-s{options.seed}-{index:09d}",
        "level": level,
        "command_set": level,
        "table_name": main,
        "table_name_synonym": names["tables"][main],
        "table_name_use_synonym": names["tables"][main] != main,
        "create_statement": create,
        "english_prompt": english,
        "sql_statement": out_sql,
        "dialect": options.dialect,
        "table_fields": json.dumps([f"{c} {t}" for c, t in fields]),
        "select": json.dumps([column_sql(r, context) for r in spec["select"]] + [a["alias"] for a in spec["aggregates"]]),
        "order_by": json.dumps([[o.get("alias") or column_sql(o["column"], context), o["direction"]]
                                for o in spec["order_by"]]),
        "clauses": json.dumps({**spec, "names": names}),
    }
    if options.compat == "original":
        record.update(compat.original_columns(rng, spec, context, names, [t for _, t in fields]))
    if options.format in ("alpaca", "both"):
        record["prompt"] = INSTRUCTION.format(english=english, context=create)
        record["completion"] = out_sql
    if options.format in ("chat", "both"):
        record["messages"] = [
            {"role": "user", "content": f"{english}\n\nTables:\n{create}"},
            {"role": "assistant", "content": out_sql},
        ]
    return Candidate(record, prompt_key=f"{english}\n{create}", group_key=_label_key(spec, create))


def _fields(create: str) -> list[tuple[str, str]]:
    """(name, type) of each column of one CREATE TABLE statement (in another dialect than SQLite's)."""
    body = create[create.index("(") + 1: create.rindex(")")]
    return [tuple(part.strip().split(" ", 1)) for part in _split_top_level(body)]


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def _label_key(spec: dict, create: str) -> str:
    """The normalised label with its schema: AND/OR operand order does not make a different label."""
    canonical = {**spec, "where": _sorted_where(spec["where"])}
    if spec["nested"] and spec["nested"].get("where"):
        canonical["nested"] = {**spec["nested"], "where": _sorted_where(spec["nested"]["where"])}
    return create + "\n" + _SORTED_JSON(canonical)


def _sorted_where(where: dict | None) -> dict | None:
    """A copy of `where` with its conditions in a canonical order (the spec itself is left alone)."""
    if not where:
        return where
    return {**where, "conditions": sorted(where["conditions"], key=_SORTED_JSON)}


def schema(fmt: str) -> pa.Schema:
    fields = [
        ("id", pa.string()), ("level", pa.int32()), ("command_set", pa.int32()), ("table_name", pa.string()),
        ("table_name_synonym", pa.string()), ("table_name_use_synonym", pa.bool_()),
        ("create_statement", pa.string()), ("english_prompt", pa.string()), ("sql_statement", pa.string()),
        ("dialect", pa.string()), ("table_fields", pa.string()), ("select", pa.string()),
        ("order_by", pa.string()), ("clauses", pa.string()),
    ]
    if fmt in ("alpaca", "both"):
        fields += [("prompt", pa.string()), ("completion", pa.string())]
    if fmt in ("chat", "both"):
        fields.append(("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))))
    return pa.schema(fields)


FIELD_DOCS = {
    "id": "stable id: generator, level, seed and candidate index",
    "level / command_set": "the level (1-8); `command_set` repeats it under the published name",
    "table_name, table_name_synonym, table_name_use_synonym": "the main table and how the request calls it",
    "create_statement": "the context: one `CREATE TABLE` per table, joined by `; `",
    "english_prompt": "the request in English",
    "sql_statement": "the label, in `dialect`",
    "table_fields, select, order_by": "JSON strings, as in the published TinySQL datasets",
    "clauses": "JSON: the whole structured query (tables, joins, distinct, select, aggregates, where, group_by, "
               "having, order_by, limit, nested) with `[table, column]` references, and `names`: the word the "
               "request uses for each table and column; for building clean/corrupt pairs",
    "prompt, completion": "(format alpaca) `### Instruction: ... ### Context: ... ### Response: ` and the SQL",
    "messages": "(format chat) a user turn (request and tables) and an assistant turn (the SQL)",
}
