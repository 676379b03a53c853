"""Independent checks that a TinySQL label is right, run before a record is kept.

Each check returns a rejection reason or None: the SQL parses with sqlglot; every table and column
it names exists in the context; aggregates are legal (no bare column beside an aggregate without
GROUP BY; SUM/AVG only over numbers); it executes in SQLite against the context's tables filled
with sample rows and returns at least one row; the English request mentions every table, column,
literal, aggregate, direction and limit the SQL needs; and, for another `--dialect`, the emitted
SQL parses in that dialect and, transpiled back, returns the same rows.
"""

from __future__ import annotations

import re
import sqlite3
from functools import cache, lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from tinysql import vocabulary
from tinysql.english import EVIDENCE
from tinysql.query import Context, create_sql

CHECKS = [
    "the SQL parses with sqlglot (SQLite dialect)",
    "every table and column it names exists in the context's CREATE TABLE statements (or is a CTE or an alias "
    "the query defines)",
    "aggregates are legal in strict engines: no bare column beside an aggregate unless GROUP BY lists it, "
    "SUM/AVG only over numeric columns",
    "it executes in SQLite against the context's tables filled with 6-10 sample rows each (realistic faker "
    "values, ~10% NULLs, foreign keys that match) and returns at least one row (the tables are the vocabulary's "
    "DDL, of which each context's CREATE TABLE is a column subset; the columns the query reads are filled, "
    "every column for a `*`)",
    "the English request names every table, column and literal the SQL uses (by name or the chosen synonym) and "
    "states every aggregate, sort direction, DISTINCT, set operation and LIMIT",
    "with --dialect other than sqlite: the emitted SQL parses in that dialect and, transpiled back to SQLite, "
    "returns the same rows",
]


@cache
def _connection() -> sqlite3.Connection:
    """One in-memory database per process holding every vocabulary table with all its columns."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    for table in vocabulary.load().tables.values():
        connection.execute(create_sql(table.name, list(table.columns)))
    return connection


def execute(sql: str, context: Context, read: frozenset[str] | None = None) -> list[tuple]:
    """Run `sql` over the context's sample rows, inside a transaction that is rolled back.

    The rows fill the context's columns of the vocabulary's tables (a column outside the context stays
    NULL, and `check_names` has already refused any reference to one), which spares a CREATE TABLE
    per item; the context's own CREATE statements are the same DDL restricted to its columns. With `read`
    (the column names the query mentions, from its parse), only those columns are filled: a column the
    query never reads cannot change its rows, and fewer values are bound. The rows (dicts) bind by name, so
    no tuple is built per row.
    """
    connection = _connection()
    connection.execute("BEGIN")
    try:
        for table in context.tables:
            columns = context.columns[table]
            if read is not None:
                columns = [c for c in columns if c in read] or columns[:1]  # COUNT(*) alone: the rows still count
            connection.executemany(_insert(table, tuple(columns)), context.rows[table])
        return connection.execute(sql).fetchall()
    finally:
        connection.execute("ROLLBACK")


@lru_cache(maxsize=1 << 12)
def _insert(table: str, columns: tuple[str, ...]) -> str:
    """The INSERT of those columns of `table`, with a named parameter per column."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"


@cache
def _sqlite_parser() -> tuple:
    dialect = Dialect.get_or_raise("sqlite")
    return dialect.tokenizer_class(dialect=dialect), dialect.parser_class(dialect=dialect)


def parse(sql: str) -> exp.Expression:
    """sqlglot's parse of one SQLite statement, with the tokenizer and parser built once per process."""
    tokenizer, parser = _sqlite_parser()
    trees = parser.parse(tokenizer.tokenize(sql), sql)
    if len(trees) != 1 or trees[0] is None:
        raise sqlglot.errors.ParseError(f"expected one statement, got {len(trees)}")
    return trees[0]


def _nodes(tree: exp.Expression) -> dict[type, list[exp.Expression]]:
    """The tree's nodes bucketed by type, from one walk."""
    buckets: dict[type, list[exp.Expression]] = {}
    for node in tree.walk():
        buckets.setdefault(type(node), []).append(node)
    return buckets


def check_names(nodes: dict, context: Context) -> str | None:
    """'unknown_identifier' if the query names a table or column the context does not define."""
    ctes = {cte.alias_or_name for cte in nodes.get(exp.CTE, ())}
    aliases = {alias.alias for alias in nodes.get(exp.Alias, ())}
    tables = nodes.get(exp.Table, ())
    table_aliases = {t.alias: t.name for t in tables if t.alias}
    if any(t.name not in context.columns and t.name not in ctes for t in tables):
        return "unknown_identifier"
    all_columns = {c for t in context.tables for c in context.columns[t]}
    for column in nodes.get(exp.Column, ()):
        qualifier = table_aliases.get(column.table, column.table)
        if qualifier:
            if column.name not in context.columns.get(qualifier, ()):
                return "unknown_identifier"
        elif column.name not in all_columns and column.name not in aliases:
            return "unknown_identifier"
    return None


def check_aggregates(nodes: dict) -> str | None:
    """Reject bare columns beside aggregates without GROUP BY, and SUM/AVG over non-numbers."""
    vocab = vocabulary.load()
    for function in nodes.get(exp.Sum, []) + nodes.get(exp.Avg, []):
        column = function.find(exp.Column)
        if column is not None and column.name in vocab.columns and vocab.columns[column.name].kind not in ("int", "real"):
            return "aggregate_type"
    for select in nodes.get(exp.Select, ()):
        bare = [e.unalias() for e in select.expressions if not e.find(exp.AggFunc)]
        if bare and len(bare) < len(select.expressions):
            grouped = {g.sql() for g in (select.args.get("group") or exp.Group()).expressions}
            if any(b.sql() not in grouped for b in bare):
                return "bare_column_with_aggregate"
    return None


_TOKEN = re.compile(r"[a-z0-9]+(?:[.:-][a-z0-9]+)*")


def _words(text: str) -> str:
    """Lower-cased word tokens joined by single spaces, padded so that phrases match whole words."""
    return " " + " ".join(_TOKEN.findall(text.lower())) + " "


_phrase = lru_cache(maxsize=1 << 16)(_words)  # the same names, values and evidence words come back item after item


def check_mentions(spec: dict, english: str, names: dict) -> str | None:
    """'prompt_missing_element' unless the request mentions everything the SQL needs."""
    text = _words(english)
    required: list[tuple[str, ...]] = [(names["tables"][t["table"]],) for t in spec["tables"]]
    refs = [r for r in spec["select"] + spec["group_by"]]
    refs += [a["column"] for a in spec["aggregates"] if a["column"]]
    refs += [o["column"] for o in spec["order_by"] if "column" in o]
    conditions = list(spec["where"]["conditions"]) if spec["where"] else []
    nested = spec["nested"] or {}
    conditions += nested.get("where", {}).get("conditions", []) + nested.get("subquery_where", {}).get("conditions", [])
    refs += [c["column"] for c in conditions] + [j[side] for j in spec["joins"] for side in ("left", "right")]
    refs += [nested[k] for k in ("column", "subquery_column") if k in nested]
    required += [(names["columns"][f"{t}.{c}"],) for t, c in refs]
    for condition in conditions:
        values = condition["value"] if isinstance(condition["value"], list) else [condition["value"]]
        required += [(str(v),) for v in values if v is not None]
    for aggregate in spec["aggregates"] + ([spec["having"]] if spec["having"] else []):
        required.append(EVIDENCE[aggregate["func"]])
    if spec["having"]:
        required.append((str(spec["having"]["value"]),))
    required += [EVIDENCE[o["direction"]] for o in spec["order_by"]]
    if spec["distinct"]:
        required.append(EVIDENCE["DISTINCT"])
    if spec["limit"] is not None:
        required.append((str(spec["limit"]),))
    if nested.get("kind") == "set_operation":
        required.append(EVIDENCE[nested["operator"]])
    if nested.get("kind") == "scalar_subquery":
        required.append(EVIDENCE[nested["func"]])
    if nested.get("kind") == "cte":
        required.append((nested["name"],))
    for options in required:
        if not any(_phrase(option) in text for option in options):
            return "prompt_missing_element"
    return None


def validate(sql: str, spec: dict, context: Context, english: str, names: dict,
             dialect_sql: str | None = None, dialect: str = "sqlite") -> str | None:
    """The first failed check's reason, or None when the label passes every check."""
    try:
        tree = parse(sql)
    except sqlglot.errors.SqlglotError:
        return "parse_error"
    nodes = _nodes(tree)
    reason = check_names(nodes, context) or check_aggregates(nodes)
    if reason:
        return reason
    read = None if exp.Star in nodes else frozenset(c.name for c in nodes.get(exp.Column, ()))
    try:
        rows = execute(sql, context, read)
    except sqlite3.Error:
        return "execution_error"
    if not rows:
        return "empty_result"
    reason = check_mentions(spec, english, names)
    if reason or dialect_sql is None or dialect == "sqlite":
        return reason
    try:
        back = sqlglot.transpile(dialect_sql, read=dialect, write="sqlite")[0]
        if execute(back, context) != rows:  # every column: `read` is the columns of `sql`, not of `back`
            return "dialect_mismatch"
    except (sqlglot.errors.SqlglotError, sqlite3.Error):
        return "dialect_mismatch"
    return None
