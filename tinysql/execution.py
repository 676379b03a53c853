"""Execution accuracy: seeded SQLite databases for a record, and comparison of query results.

`parse_tables` reads a record's CREATE TABLE statements. `record_databases` fills N_DATABASES
in-memory SQLite databases with pseudo-random rows seeded from the seed and the record, drawn from
what the queries say about the data: their literals (and the neighbours of range bounds) go into
the columns they are compared with, join columns share values, GROUP BY columns have few values in
groups of unequal size, COUNTed columns get NULLs, and rows are inserted in shuffled order.
`same_execution` runs gold and prediction on them (`run`) and compares the results
(`results_equal`): ordered when the gold's outermost query has ORDER BY (rows whose ORDER BY keys tie
may come in any order), as multisets otherwise; floats with a small tolerance; column names are
ignored.

Queries are hostile (predictions come from models and from downloaded files), so this module owns
the sandbox they run in, SQLite's own guards in one place: `sandbox(conn, tables)` locks a database
down once it is filled (an authorizer that allows only SELECT, reading the record's tables and
functions other than DENIED_FUNCTIONS: no ATTACH or VACUUM, PRAGMA, writes, schema changes,
transactions or extensions; SQLITE_LIMITS on value, statement and expression sizes; temporary data in
memory; SQLite's heap capped at MAX_SQLITE_HEAP), and `run` executes one query under a budget of VM
steps, seconds, result rows and result bytes. Whatever breaks a rule is an error (ValueError) that
says why, never a crash or a file.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import sqlite3
import string
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple, Sequence

import sqlglot
from sqlglot import exp

from tinysql.normalize import first_line, render, strip_sql, unwrap

N_DATABASES = 4  # random databases each (gold, prediction) pair is executed on
MAX_RESULT_ROWS = 50_000
MAX_RESULT_BYTES = 20_000_000  # text, blob and number bytes of one result
MAX_VM_STEPS_K = 20_000  # SQLite VM instructions (in thousands) before a query is interrupted
MAX_QUERY_SECONDS = 1.0  # wall-clock time before a query is interrupted
CHECK_EVERY = 100  # VM instructions between two checks of the step and time budgets
MAX_SQLITE_HEAP = 256 << 20  # SQLite's hard heap limit; process-wide in SQLite, so only ever lowered
SQLITE_LIMITS = {  # sqlite3.SQLITE_LIMIT_<name> of each connection (Python 3.11+; 3.10 runs without them)
    # bytes of a string, blob or row: the databases hold short values, and one call of a function
    # can take time quadratic in it (trim with a long set of characters: 25 ms at 5,000 bytes)
    "LENGTH": 5_000,
    "SQL_LENGTH": 100_000,
    "COLUMN": 200,
    "EXPR_DEPTH": 200,
    "COMPOUND_SELECT": 50,
    "FUNCTION_ARG": 64,
    "ATTACHED": 0,
    "VDBE_OP": 50_000,
    "LIKE_PATTERN_LENGTH": 100,
    "TRIGGER_DEPTH": 0,
    "WORKER_THREADS": 0,
}
# the built-ins that reach outside SQL values, and printf (alias format): in SQLite 3.40 (measured),
# printf('%.*c', N, 'x') loops N times in one uninterruptible step, SQLITE_LIMIT_LENGTH or not
DENIED_FUNCTIONS = {"load_extension", "fts3_tokenizer", "printf", "format"}
REFUSED = ("only SELECT queries reading the record's tables may run (the databases are readonly; no PRAGMA, ATTACH, "
           f"VACUUM, schema changes or {', '.join(sorted(DENIED_FUNCTIONS))})")
FLOAT_TOLERANCE = 1e-6  # relative and absolute

# dialects whose LIKE is case-sensitive (SQLite's is not unless told so)
CASE_SENSITIVE_LIKE = {"postgres", "redshift", "duckdb", "oracle", "snowflake", "bigquery", "trino", "presto",
                       "athena", "spark", "spark2", "databricks", "hive", "clickhouse"}
WORDS = (
    "alpha amber apple aster atlas birch bison blaze brook cedar cobalt comet coral crane delta dune "
    "ember falcon fern fjord flint garnet glade harbor hazel heron indigo iris ivory jade juniper kelp "
    "lagoon lark lotus lunar maple marble meadow mesa nectar nova oak onyx opal orchid pebble pine "
    "plume quartz quill raven reef ridge river ruby sage sierra slate solar spruce storm summit "
    "thistle tide topaz tulip umber valley vega violet willow wren xenon yarrow zephyr zinc"
).split()


class Column(NamedTuple):
    name: str
    kind: str  # int | float | text | date | datetime | time | bool
    length: int | None  # longest value of a text column
    scale: int | None  # decimal places of a float column
    sql_type: str  # the type as SQLite sees it


class Table(NamedTuple):
    name: str
    columns: tuple[Column, ...]


@lru_cache(maxsize=256)
def parse_tables(create_statement: str, dialect: str) -> tuple[Table, ...]:
    """The tables of `create_statement`, names lower-cased; () when it does not parse."""
    try:
        statements = sqlglot.parse(create_statement, read=dialect)
    except sqlglot.errors.SqlglotError:
        return ()
    return tuple(
        Table(st.this.this.name.lower(), tuple(_column(c) for c in st.this.expressions if isinstance(c, exp.ColumnDef)))
        for st in statements
        if isinstance(st, exp.Create) and isinstance(st.this, exp.Schema) and isinstance(st.this.this, exp.Table)
    )


def sqlglot_schema(tables: Sequence[Table]) -> dict[str, dict[str, str]]:
    """`tables` as sqlglot's schema mapping: table -> column -> type."""
    return {t.name: {c.name: c.sql_type for c in t.columns} for t in tables}


def _column(definition: exp.ColumnDef) -> Column:
    dtype = definition.args.get("kind")
    name = definition.name.lower()
    if not isinstance(dtype, exp.DataType):
        return Column(name, "text", None, None, "TEXT")
    T, t = exp.DataType.Type, dtype.this
    params = [int(p.name) for p in dtype.expressions if p.name.isdigit()]
    kind, length, scale = "text", None, None
    if t == T.BOOLEAN:
        kind = "bool"
    elif t in exp.DataType.INTEGER_TYPES or "SERIAL" in t.value:
        kind = "int"
    elif t in exp.DataType.FLOAT_TYPES:
        kind, scale = "float", (params[1] if len(params) > 1 else None)
    elif t in exp.DataType.REAL_TYPES:  # DECIMAL(p) and DECIMAL(p, 0) hold integers, DECIMAL and MONEY cents
        scale = params[1] if len(params) > 1 else 0 if params else 2 if t in (T.DECIMAL, T.MONEY, T.SMALLMONEY) else 0
        kind, scale = ("float", scale) if scale else ("int", None)
    elif t in (T.DATE, T.DATE32):
        kind = "date"
    elif t in (T.TIME, T.TIMETZ):
        kind = "time"
    elif t in exp.DataType.TEMPORAL_TYPES:
        kind = "datetime"
    elif t in exp.DataType.TEXT_TYPES and params:
        length = params[0]
    sql_type = re.sub(r"\(.*\)", "", dtype.sql("sqlite")).strip()
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_ ]*", sql_type):
        sql_type = {"int": "INTEGER", "float": "REAL", "bool": "BOOLEAN"}.get(kind, kind.upper())
    return Column(name, kind, length, scale, sql_type)


# --- what the queries say about the data ---


@dataclass
class Hints:
    """Literals, joins, grouping and LIMIT of the queries, keyed by (table, column)."""

    values: dict[tuple[str, str], list] = field(default_factory=dict)  # compared with = != IN
    anchors: dict[tuple[str, str], list] = field(default_factory=dict)  # compared with < > BETWEEN
    likes: dict[tuple[str, str], list] = field(default_factory=dict)
    nulls: set[tuple[str, str]] = field(default_factory=set)  # IS [NOT] NULL
    groups: set[tuple[str, str]] = field(default_factory=set)
    counted: set[tuple[str, str]] = field(default_factory=set)  # inside COUNT(...)
    joins: list[tuple[tuple[str, str], tuple[str, str]]] = field(default_factory=list)
    limit: int = 0
    case_sensitive_like: bool = False


def _literal(node: exp.Expr | None) -> Any:
    """Python value of a literal (through parentheses, casts and minus signs), else None."""
    while isinstance(node, (exp.Paren, exp.Cast)):
        node = node.this
    if isinstance(node, exp.Neg):
        value = _literal(node.this)
        return -value if _is_number(value) else None
    if isinstance(node, exp.Boolean):
        return int(node.this)
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else _number(node.this)
    return None


def _number(text: str) -> int | float | None:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def collect_hints(tree: exp.Expr, tables: Sequence[Table], hints: Hints) -> None:
    """Add to `hints` what the (canonical) query `tree` says about the data."""
    names = {t.name: {c.name for c in t.columns} for t in tables}
    table_of: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        if table.name.lower() in names:
            table_of[table.alias_or_name.lower()] = table.name.lower()
            table_of.setdefault(table.name.lower(), table.name.lower())

    def targets(node: exp.Expr | None) -> list[tuple[str, str]]:
        if not isinstance(node, exp.Column):
            return []
        name, table = node.name.lower(), table_of.get(node.table.lower())
        if table and name in names[table]:
            return [(table, name)]
        return [(t, name) for t in names if name in names[t]]

    def add(store: dict, keys: list, value: Any) -> None:
        for key in keys if value is not None else []:
            bucket = store.setdefault(key, [])
            if value not in bucket:
                bucket.append(value)

    for node in tree.walk():
        if isinstance(node, (exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
            sides = [node.this, node.expression]
            keys = [targets(side) for side in sides]
            if all(keys):
                if isinstance(node, exp.EQ):
                    hints.joins += [(a, b) for a in keys[0] for b in keys[1] if a != b and (a, b) not in hints.joins]
                continue
            if not any(keys):  # HAVING MIN(x) > 10: the literal is on the scale of x
                keys = [targets(s.this) if isinstance(s, (exp.Min, exp.Max, exp.Avg, exp.Sum)) else [] for s in sides]
            column, other = (0, 1) if keys[0] else (1, 0)
            store = hints.values if isinstance(node, (exp.EQ, exp.NEQ, exp.NullSafeEQ)) else hints.anchors
            add(store, keys[column], _literal(sides[other]))
        elif isinstance(node, (exp.Like, exp.ILike)) and isinstance(_literal(node.expression), str):
            add(hints.likes, targets(node.this), _literal(node.expression))
        elif isinstance(node, exp.In) and not node.args.get("query"):
            for item in node.expressions:
                add(hints.values, targets(node.this), _literal(item))
        elif isinstance(node, exp.Between):
            for bound in (node.args.get("low"), node.args.get("high")):
                add(hints.anchors, targets(node.this), _literal(bound))
        elif isinstance(node, exp.Is):
            hints.nulls.update(targets(node.this))
        elif isinstance(node, exp.Count):  # COUNT(col) must differ from COUNT(*)
            hints.counted.update(key for col in node.find_all(exp.Column) for key in targets(col))
        elif isinstance(node, exp.Group):
            hints.groups.update(key for col in node.find_all(exp.Column) for key in targets(col))
        elif isinstance(node, exp.Limit) and isinstance(_literal(node.expression), int):
            hints.limit = max(hints.limit, _literal(node.expression))


# --- the random databases ---


def record_databases(gold: str, canons: Sequence[exp.Expr], tables: Sequence[Table], dialect: str,
                     seed: int) -> list[sqlite3.Connection]:
    """The N_DATABASES read-only in-memory databases of the record whose gold query is `gold`, filled
    according to the canonical queries `canons` (the gold's first, then the prediction's, so that a
    prediction's own boundaries show: a wrong literal, COUNT(col) for COUNT(*))."""
    hints = Hints(case_sensitive_like=dialect in CASE_SENSITIVE_LIKE)
    for canon in canons:
        collect_hints(canon, tables, hints)
    record = ";".join(f"{t.name}({','.join(c.name + ':' + c.kind for c in t.columns)})" for t in tables)
    key = f"tinysql-score|{seed}|{dialect}|{record}|{strip_sql(gold)}"
    return [_build_database(tables, hints, random.Random(f"{key}|{i}"), i) for i in range(N_DATABASES)]


def _build_database(tables: Sequence[Table], hints: Hints, rng: random.Random, db_index: int) -> sqlite3.Connection:
    joined = {key for pair in hints.joins for key in pair}
    columns: dict[tuple[str, str], list] = {}  # (table, column) -> values
    hot: dict[str, list[int]] = {}  # table -> row indices, in the order literals are placed in them
    protected: dict[tuple[str, str], set[int]] = {}  # rows holding a literal or a NULL placed on purpose
    for table in tables:
        n = rng.randint(8, 12)
        if hints.limit:  # enough rows for LIMIT to cut something off
            n = max(n, min(40, 3 * hints.limit + rng.randint(0, 3)))
        hot[table.name] = list(range(n))
        rng.shuffle(hot[table.name])
        for col in table.columns:
            key = (table.name, col.name)
            columns[key], protected[key] = _column_values(col, key, n, rng, hints, key in joined, db_index,
                                                          hot[table.name])
    _share_join_values(tables, hints, rng, columns, hot, protected)

    conn = sqlite3.connect(":memory:", cached_statements=0)  # no setup statement is reused unchecked
    for table in tables:
        definitions = ", ".join(f'"{c.name}" {c.sql_type}' for c in table.columns)
        conn.execute(f'CREATE TABLE "{table.name}" ({definitions})')
        rows = list(zip(*(columns[table.name, c.name] for c in table.columns)))
        rng.shuffle(rows)
        conn.executemany(f'INSERT INTO "{table.name}" VALUES ({", ".join("?" * len(table.columns))})', rows)
    conn.commit()
    if hints.case_sensitive_like:
        conn.execute("PRAGMA case_sensitive_like = ON")
    sandbox(conn, [t.name for t in tables])
    return conn


def sandbox(conn: sqlite3.Connection, tables: Sequence[str]) -> None:
    """Lock down the filled database `conn` for hostile queries: from now on it runs only SELECT
    statements that read `tables` and call functions other than DENIED_FUNCTIONS (everything else is
    "not authorized"), within SQLITE_LIMITS, with temporary data in memory and SQLite's heap capped at
    MAX_SQLITE_HEAP. `run` adds the per-query budgets."""
    conn.commit()
    conn.isolation_level = None  # no implicit BEGIN before a statement
    conn.execute("PRAGMA query_only = ON")
    conn.execute("PRAGMA temp_store = MEMORY")  # sorts and temporary tables never spill to files
    conn.execute(f"PRAGMA hard_heap_limit = {MAX_SQLITE_HEAP}")  # SQLite lowers it only, never raises it
    if hasattr(conn, "enable_load_extension"):  # absent when Python is built without extension loading
        conn.enable_load_extension(False)
    if hasattr(conn, "setlimit"):
        for name, value in SQLITE_LIMITS.items():
            conn.setlimit(getattr(sqlite3, f"SQLITE_LIMIT_{name}"), value)
    readable = {name.lower() for name in tables}

    def authorize(action: int, arg1: str | None, arg2: str | None, database: str | None, trigger: str | None) -> int:
        # SQLITE_READ: (table, column); column "" when rows are counted without reading a column, which is
        # also how SQLite reports COUNT(*) over a subquery or CTE
        if (action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE)
                or (action == sqlite3.SQLITE_READ and ((arg1 or "").lower() in readable or arg2 == ""))
                or (action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in DENIED_FUNCTIONS)):
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    conn.set_authorizer(authorize)


def _share_join_values(tables, hints: Hints, rng: random.Random, columns, hot, protected) -> None:
    """Make join columns share values: the referencing side draws from the referenced side (a column
    named "id" when there is one), hot rows from hot rows. About half of the referenced rows get two
    or more referencing rows; the last free row keeps its own value (usually a dangling reference),
    so that inner and outer joins differ."""
    kinds = {(t.name, c.name): c for t in tables for c in t.columns}
    done: set[tuple[str, str]] = set()
    for a, b in hints.joins:
        source, target = (b, a) if b[1] == "id" and a[1] != "id" else (a, b)
        if target in done:
            source, target = target, source
        if target in done:
            continue
        done.add(target)
        referenced = [columns[source][i] for i in hot[source[0]] if columns[source][i] is not None]
        if not referenced:
            continue
        free = [i for i in hot[target[0]] if i not in protected[target]]
        k = max(2, min(len(referenced), len(free) // 2))
        for rank, i in enumerate(free[:-1]):
            value = referenced[rank % k] if rank < 2 * k or rng.random() < 0.5 else rng.choice(referenced)
            columns[target][i] = _coerce(value, kinds[target])


def _column_values(col: Column, key, n: int, rng: random.Random, hints: Hints, joined: bool, db_index: int,
                   hot: list[int]) -> tuple[list, set[int]]:
    """Values of one column, and the rows holding literals of the queries or NULLs."""
    anchors = [_coerce(a, col) for a in hints.anchors.get(key, [])]
    literals = [_coerce(v, col) for v in hints.values.get(key, [])]
    id_like = col.kind == "int" and (col.name == "id" or col.name.endswith("_id") or joined)
    values = _random_values(col, n, rng, hints.anchors.get(key, []), hints.values.get(key, []), id_like)
    if key in hints.groups and n >= 7 and col.kind != "bool":
        values = _grouped(values, literals, n, rng, db_index)

    # literals compared with = / IN / LIKE go to the table's "hot" rows first (the same rows for
    # every column, so rows satisfy several conditions at once)
    free, budget, protected = list(hot), max(2, n // 2 + 1), set()

    def place(value: Any, copies: int = 1) -> None:
        nonlocal budget
        for _ in range(min(copies, budget, len(free))):
            index = free.pop(0)
            values[index] = value
            protected.add(index)
            budget -= 1

    plain = [v for v in literals if v not in anchors]
    for v in plain:
        if key in hints.groups and v in values:
            continue
        place(v, max(2, int(n * 0.4)) if len(plain) == 1 and key not in hints.groups else rng.randint(1, 2))
    for pattern in hints.likes.get(key, []):
        if hints.case_sensitive_like:  # rows that only ILIKE matches come first
            place(_like_example(pattern, rng, col.length).swapcase())
        place(_like_example(pattern, rng, col.length), 2 if n > 9 else 1)
        place(_like_example(pattern, rng, col.length).swapcase())
    # range bounds (and a neighbour) go to random rows, not aligned with other columns' literals,
    # so that boundary rows also satisfy the other conditions now and then
    rng.shuffle(free)
    for a in anchors:
        place(a)
        if _is_number(a):
            for sign in ((1,), (-1,), (1, -1))[db_index % 3]:
                place(a + sign * (1 if col.kind == "int" else 0.5))
    nulls = 0
    if key in hints.nulls:  # IS [NOT] NULL in a query: two or three NULLs
        nulls = 2 if n < 11 else 3
    elif db_index >= N_DATABASES - 2 and key not in hints.groups and col.name != "id":
        # NULLs here and there in two databases, to tell COUNT(col) from COUNT(*) and the like
        if key in hints.counted or (not id_like and rng.random() < 0.5):
            nulls = rng.randint(1, 2)
    for _ in range(min(nulls, len(free))):
        index = free.pop()
        values[index] = None
        protected.add(index)
    return values, protected


def _random_values(col: Column, n: int, rng: random.Random, anchors: list, literals: list, id_like: bool) -> list:
    """`n` random values of `col`'s kind, spread around the literals the queries compare it with."""
    if col.kind == "int" and id_like:
        top = max(12, n + 3)
        return rng.sample(range(1, top + 1), n) if col.name == "id" else [rng.randint(1, top) for _ in range(n)]
    if col.kind == "int":
        low, high = _numeric_range(anchors, (1, 500))
        low, high = math.floor(low), math.ceil(high)
        return rng.sample(range(low, max(high, low + 3 * n) + 1), n)
    if col.kind == "float":
        low, high = _numeric_range(anchors, (1.0, 1000.0))
        scale = 2 if col.scale is None else max(0, min(col.scale, 4))
        return _distinct(rng, n, lambda: round(rng.uniform(low, high), scale))
    if col.kind == "bool":
        values = [i % 2 for i in range(n)]
        rng.shuffle(values)
        return values
    if col.kind in ("date", "datetime"):
        dates = [d for d in map(_parse_date, anchors + literals) if d]
        start, end = dt.datetime(2015, 1, 1), dt.datetime(2024, 12, 31)
        if dates:
            start, end = min(dates) - dt.timedelta(days=400), max(dates) + dt.timedelta(days=400)
        span = max(1, int((end - start).total_seconds()))
        form = "%Y-%m-%d" if col.kind == "date" else "%Y-%m-%d %H:%M:%S"
        return _distinct(rng, n, lambda: (start + dt.timedelta(seconds=rng.randint(0, span))).strftime(form))
    if col.kind == "time":
        midnight = dt.datetime(2000, 1, 1)
        return _distinct(rng, n, lambda: (midnight + dt.timedelta(seconds=rng.randint(0, 86399))).strftime("%H:%M:%S"))
    if col.length is not None and col.length < 6:
        size = max(1, col.length)
        return _distinct(rng, n, lambda: "".join(rng.choice(string.ascii_uppercase) for _ in range(size)))

    def words() -> str:
        text = rng.choice(WORDS).capitalize()
        if rng.random() < 0.5:
            text = f"{text} {rng.choice(WORDS).capitalize()}"
        return text[: col.length] if col.length else text

    return _distinct(rng, n, words)


def _grouped(values: list, literals: list, n: int, rng: random.Random, db_index: int) -> list:
    """Few distinct values (the literals first) in groups of different sizes (1, 2, 3, ... rows), so
    that HAVING COUNT(*) thresholds select some groups and not others."""
    sizes = [1, 2, 3] if db_index % 2 == 0 else [2, 3, 4]
    while sum(sizes) < n:
        sizes.append(min(rng.randint(1, 3), n - sum(sizes)))
    if sum(sizes) > n:
        sizes = [1] * n
    pool = list(dict.fromkeys(literals))[: len(sizes)]
    pool += [v for v in dict.fromkeys(values) if v not in pool][: len(sizes) - len(pool)]
    rng.shuffle(sizes)
    grouped = [v for v, size in zip(pool, sizes) for _ in range(size)]
    grouped += [pool[-1]] * (n - len(grouped))  # only when the domain is tiny
    rng.shuffle(grouped)
    return grouped


def _distinct(rng: random.Random, n: int, make) -> list:
    values: list = []
    for _ in range(50 * n):
        if len(values) == n:
            break
        value = make()
        if value not in values:
            values.append(value)
    while len(values) < n:  # tiny domains (e.g. CHAR(1)): allow repeats
        values.append(make())
    return values


def _numeric_range(anchors: list, default: tuple[float, float]) -> tuple[float, float]:
    numbers = [float(a) for a in anchors if _is_number(a)]
    if not numbers:
        return default
    low, high = min(numbers), max(numbers)
    pad = max(10.0, high - low, 0.6 * max(abs(low), abs(high)))
    return (max(0.0, low - pad) if low >= 0 else low - pad), high + pad


def _parse_date(value: Any) -> dt.datetime | None:
    for form in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(str(value).strip(), form)
        except ValueError:
            pass
    return None


def _like_example(pattern: str, rng: random.Random, length: int | None) -> str:
    """A random string matching the LIKE `pattern`."""
    parts = []
    for ch in pattern:
        if ch == "%":
            parts.append(rng.choice(["", rng.choice(WORDS)[: rng.randint(1, 4)]]))
        else:
            parts.append(rng.choice(string.ascii_lowercase) if ch == "_" else ch)
    value = "".join(parts)
    return value[:length] if length else value


def _coerce(value: Any, col: Column) -> Any:
    """A literal of a query as a value of `col`'s kind (left alone when it is not one)."""
    if value is None:
        return None
    if col.kind not in ("int", "bool", "float"):
        return str(value)
    if isinstance(value, str):
        try:
            value = float(value) if col.kind == "float" else int(value)
        except ValueError:
            return value
    return int(value) if col.kind != "float" and float(value).is_integer() else value


# --- running queries and comparing results ---


def same_execution(gold: str, prediction: str, gold_canon: exp.Expr, pred_canon: exp.Expr, tables: Sequence[Table],
                   dialect: str, seed: int) -> tuple[bool, str | None]:
    """Whether `prediction` gives the results of `gold` on every random database of the record, and the
    error when one of them cannot run. Results are compared as ordered lists when the gold's outermost
    query has ORDER BY (a prediction without one then fails), as multisets otherwise."""
    gold_sql, pred_sql = to_sqlite(gold, dialect), to_sqlite(prediction, dialect)
    ordered, top = has_outer_order(gold_canon), unwrap(gold_canon)
    limited = bool(top.args.get("limit") or top.args.get("fetch"))
    key_columns = order_key_columns(gold_canon, dialect) if ordered else None
    conns = record_databases(gold, [gold_canon, pred_canon], tables, dialect, seed)
    try:
        same = True
        for conn in conns:
            try:
                gold_width, gold_rows = run(conn, gold_sql)
            except ValueError as err:
                return False, f"gold: execution error: {err}"
            try:
                pred_width, pred_rows = run(conn, pred_sql)
            except ValueError as err:
                return False, f"prediction: execution error: {err}"
            same = same and gold_width == pred_width and (not ordered or has_outer_order(pred_canon))
            same = same and results_equal(gold_rows, pred_rows, ordered, key_columns, limited)
        return same, None
    finally:
        for conn in conns:
            conn.close()


def to_sqlite(sql: str, dialect: str) -> str:
    text = strip_sql(sql)
    return text if dialect == "sqlite" else sqlglot.transpile(text, read=dialect, write="sqlite")[0]


def has_outer_order(tree: exp.Expr) -> bool:
    return bool(unwrap(tree).args.get("order"))


def run(conn: sqlite3.Connection, sql: str) -> tuple[int, list[tuple]]:
    """The number of columns and the rows of `sql` on a `sandbox`ed database; ValueError when it fails,
    is refused, runs past MAX_VM_STEPS_K thousand steps or MAX_QUERY_SECONDS, runs out of SQLite's
    heap, or returns more than MAX_RESULT_ROWS rows or MAX_RESULT_BYTES bytes."""
    steps, deadline = 0, time.monotonic() + MAX_QUERY_SECONDS

    def stop() -> bool:
        nonlocal steps
        steps += CHECK_EVERY
        return steps > 1000 * MAX_VM_STEPS_K or time.monotonic() > deadline

    conn.set_progress_handler(stop, CHECK_EVERY)
    rows: list[tuple] = []
    size = 0
    try:
        cursor = conn.execute(sql)
        if cursor.description is None:
            raise ValueError("statement returned no result set")
        for row in cursor:  # one row at a time: a row is at most SQLITE_LIMIT_COLUMN values of SQLITE_LIMIT_LENGTH
            rows.append(row)
            size += sum(len(v) if isinstance(v, (str, bytes)) else 8 for v in row)
            if len(rows) > MAX_RESULT_ROWS:
                raise ValueError(f"result has more than {MAX_RESULT_ROWS} rows")
            if size > MAX_RESULT_BYTES:
                raise ValueError(f"result has more than {MAX_RESULT_BYTES} bytes")
    except MemoryError:  # SQLite's heap limit (sqlite3 raises MemoryError for SQLITE_NOMEM)
        raise ValueError(f"query ran out of memory (SQLite's heap is limited to {MAX_SQLITE_HEAP >> 20} MiB)") from None
    except (sqlite3.Error, sqlite3.Warning) as err:  # Warning: several statements, before Python 3.11
        if str(err) == "interrupted":  # by `stop`
            raise ValueError(f"query took too long (interrupted after {MAX_VM_STEPS_K} thousand steps or "
                             f"{MAX_QUERY_SECONDS:g} s)") from None
        reason = first_line(err)
        raise ValueError(f"{reason}: {REFUSED}" if "authoriz" in reason else reason) from None
    finally:
        conn.set_progress_handler(None, 0)
    return len(cursor.description), rows


def order_key_columns(canon: exp.Expr, dialect: str) -> list[int] | None:
    """Output-column indices of the outermost ORDER BY keys of a canonical query, or None when some key
    is not an output column (then rows are compared strictly in order)."""
    node = leftmost = unwrap(canon)
    while isinstance(leftmost, exp.SetOperation):
        leftmost = unwrap(leftmost.this)
    if not isinstance(leftmost, exp.Select) or any(isinstance(p, exp.Star) for p in leftmost.expressions):
        return None
    outputs = [render(p.unalias(), dialect) for p in leftmost.expressions]
    indices = []
    for ordered in node.args["order"].expressions:
        key = ordered.this
        if isinstance(key, exp.Literal) and not key.is_string and key.this.isdigit():
            index = int(key.this) - 1
        elif node is leftmost and render(key, dialect) in outputs:
            index = outputs.index(render(key, dialect))
        else:
            return None
        if not 0 <= index < len(outputs):
            return None
        indices.append(index)
    return indices


def results_equal(gold: list[tuple], pred: list[tuple], ordered: bool, key_columns: list[int] | None = None,
                  limited: bool = False) -> bool:
    """Compare results: as multisets, or as ordered lists in which rows whose ORDER BY keys tie
    (`key_columns`, when known) may come in any order; with `limited` (the gold has a LIMIT) the tie
    group cut by the limit only needs to agree on its keys. Floats compare with a small tolerance."""
    if len(gold) != len(pred):
        return False
    if not ordered:
        return _same_multiset(gold, pred)
    if all(map(_rows_equal, gold, pred)):
        return True
    if not key_columns:
        return False
    gold_keys, pred_keys = ([tuple(row[i] for i in key_columns) for row in rows] for rows in (gold, pred))
    if not all(map(_rows_equal, gold_keys, pred_keys)):
        return False
    start = 0
    while start < len(gold):
        end = start + 1
        while end < len(gold) and _rows_equal(gold_keys[end], gold_keys[start]):
            end += 1
        if not (limited and end == len(gold)) and not _same_multiset(gold[start:end], pred[start:end]):
            return False
        start = end
    return True


def _same_multiset(gold: list[tuple], pred: list[tuple]) -> bool:
    if len(gold) != len(pred):
        return False
    if all(map(_rows_equal, sorted(gold, key=_sort_key), sorted(pred, key=_sort_key))):
        return True
    if len(gold) > 2000:
        return False
    remaining = list(pred)  # match row by row when rounding in the sort key put near-equal floats apart
    for row in gold:
        match = next((i for i, candidate in enumerate(remaining) if _rows_equal(row, candidate)), None)
        if match is None:
            return False
        del remaining[match]
    return True


def _sort_key(row: tuple) -> tuple:
    return tuple(
        (0, 0.0, "") if v is None else (1, round(float(v), 4), "") if _is_number(v)
        else (2, 0.0, v) if isinstance(v, str) else (3, 0.0, repr(v))
        for v in row
    )


def _rows_equal(a: Sequence, b: Sequence) -> bool:
    return len(a) == len(b) and all(map(_values_equal, a, b))


def _values_equal(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
    return type(a) is type(b) and a == b
