"""The structured query of one TinySQL item: sampling it per level, its context and its SQL text.

What a level's query contains is data (`tinysql.levels`); this module draws it from the item's
random stream, in a fixed order, and never lets the iteration order of a set decide anything.

A query is a plain dict (`spec`) so that it can be stored as the record's clause metadata. Column
references are `[table, column]` pairs; how they are written (bare, `table.column`, `alias.column`)
depends on the level. Sample rows for the context's tables are drawn first, and WHERE/HAVING
literals are taken from them, so filters select real rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from tinysql import vocabulary
from tinysql.levels import LEVELS, NESTED_JOINS, Level

AGGREGATES_BY_KIND = {
    "int": ("COUNT", "SUM", "AVG", "MIN", "MAX"),
    "real": ("COUNT", "SUM", "AVG", "MIN", "MAX"),
    "text": ("COUNT", "MIN", "MAX"),
    "date": ("COUNT", "MIN", "MAX"),
    "datetime": ("COUNT", "MIN", "MAX"),
    "time": ("COUNT", "MIN", "MAX"),
    "bool": ("COUNT",),
}
OPERATORS_BY_KIND = {
    "int": ("=", "!=", ">", "<", ">=", "<=", "BETWEEN", "IN", "IS NULL", "IS NOT NULL"),
    "real": ("=", "!=", ">", "<", ">=", "<=", "BETWEEN", "IS NULL", "IS NOT NULL"),
    "text": ("=", "!=", "LIKE %x%", "LIKE x%", "LIKE %x", "IN", "IS NULL", "IS NOT NULL"),
    "date": ("=", ">", "<", ">=", "<=", "BETWEEN", "IS NULL", "IS NOT NULL"),
    "datetime": (">", "<", ">=", "<=", "BETWEEN", "IS NULL", "IS NOT NULL"),
    "time": (">", "<", ">=", "<=", "BETWEEN", "IS NULL"),
    "bool": ("= TRUE", "= FALSE", "IS NULL"),
}
NULL_RATE = 0.1
# Short words that some engine reserves (SQLite's TO, T-SQL's TOP, ...) besides sqlglot's keywords.
RESERVED_WORDS = {
    "AS", "AT", "BY", "DO", "GO", "IF", "IN", "IS", "NO", "OF", "ON", "OR", "TO", "ADD", "ALL", "AND", "ANY", "ASC",
    "END", "FOR", "KEY", "NOT", "ROW", "SET", "TOP", "USE", "INT", "RAW", "REF", "DAY", "MAX", "MIN", "SUM", "AVG"}


@cache
def reserved_aliases() -> frozenset[str]:
    """Words no table alias may be: sqlglot's keywords and RESERVED_WORDS (sqlglot imported on first use)."""
    from sqlglot.tokens import Tokenizer

    return frozenset(Tokenizer.KEYWORDS) | RESERVED_WORDS


@dataclass
class Context:
    """The tables of one item: their columns (in CREATE order) and sample rows."""

    tables: list[str]
    columns: dict[str, list[str]]
    rows: dict[str, list[dict]]
    aliases: dict[str, str]
    style: str  # "bare", "qualified" or "alias"

    def kind(self, ref: list[str]) -> str:
        return vocabulary.load().columns[ref[1]].kind

    def values(self, ref: list[str]) -> list:
        return [row[ref[1]] for row in self.rows[ref[0]] if row[ref[1]] is not None]

    def refs(self, table: str | None = None) -> list[list[str]]:
        return [[t, c] for t in ([table] if table else self.tables) for c in self.columns[t]]


@cache
def join_edges() -> tuple[tuple[str, str, str], ...]:
    """Every (child table, foreign-key column, parent table) of the vocabulary."""
    vocab = vocabulary.load()
    return tuple(
        (table.name, name, vocab.columns[name].references)
        for table in vocab.tables.values()
        for name in table.columns
        if vocab.columns[name].references in vocab.tables and vocab.columns[name].references != table.name
    )


@cache
def table_names() -> tuple[str, ...]:
    return tuple(vocabulary.load().tables)


# ---------------------------------------------------------------------------------------------
# Context


def sample_context(rng: random.Random, joins: int, aliases: bool = False) -> tuple[Context, list[dict]]:
    """Pick the tables (joined by foreign keys when `joins` > 0), their columns and sample rows."""
    join_specs: list[dict] = []
    if joins == 0:
        tables = [rng.choice(table_names())]
        required: dict[str, set[str]] = {tables[0]: set()}
    else:
        child, fk, parent = rng.choice(join_edges())
        tables = [child, parent] if rng.random() < 0.5 else [parent, child]
        required = {child: {fk}, parent: {"id"}}
        join_specs.append({"table": tables[1], "left": [child, fk], "right": [parent, "id"]})
        while len(join_specs) < joins:
            options = [e for e in join_edges() if (e[0] in tables) != (e[2] in tables)]
            if not options:
                break
            child, fk, parent = rng.choice(options)
            new = parent if child in tables else child
            tables.append(new)
            required.setdefault(child, set()).add(fk)
            required.setdefault(parent, set()).add("id")
            join_specs.append({"table": new, "left": [child, fk], "right": [parent, "id"]})
    widest = 12 if len(tables) == 1 else 7
    columns = {t: _sample_columns(rng, t, required[t], widest) for t in tables}
    style = "alias" if aliases else ("qualified" if joins else "bare")
    rows = {t: sample_rows(rng, columns[t]) for t in tables}
    return Context(tables, columns, rows, _aliases(tables) if aliases else {}, style), join_specs


def _sample_columns(rng: random.Random, table: str, required: set[str], widest: int) -> list[str]:
    available = [c for c in vocabulary.load().tables[table].columns if c not in required]
    count = rng.randint(max(2, len(required)), min(widest, len(available) + len(required)))
    return pick_columns(rng, table, required, count)


def pick_columns(rng: random.Random, table: str, required: set[str], count: int) -> list[str]:
    """`count` columns of `table` in a random order (the `required` ones among them), its key first."""
    available = [c for c in vocabulary.load().tables[table].columns if c not in required]
    chosen = sorted(required) + rng.sample(available, count - len(required))  # sorted: a set's order varies
    rng.shuffle(chosen)
    if "id" in chosen:  # the key leads, as in a real schema
        chosen.remove("id")
        chosen.insert(0, "id")
    return chosen


def sample_rows(rng: random.Random, columns: list[str]) -> list[dict]:
    """6-10 rows; each column draws from a few values of its pool (about one in ten NULL), so groups
    and filters match rows; ids number the rows and foreign keys point at ids 1-10."""
    vocab = vocabulary.load()
    count = rng.randint(6, 10)
    values = {}
    for name in columns:
        column = vocab.columns[name]
        if name == "id":
            values[name] = list(range(1, count + 1))
        elif column.references:
            values[name] = [rng.randint(1, 10) for _ in range(count)]
        else:
            pool = vocabulary.value_pool(column)
            size = rng.choice((3, 4, 6, 10))
            start = rng.randrange(len(pool) - size + 1)
            values[name] = rng.choices(pool[start:start + size] * 9 + (None,) * size, k=count)
    return [dict(zip(columns, row)) for row in zip(*(values[name] for name in columns))]


def _aliases(tables: list[str]) -> dict[str, str]:
    """Initials as table aliases (`order_items` -> `oi`), never a keyword or another table's name."""
    aliases: dict[str, str] = {}
    for table in tables:
        base = "".join(word[0] for word in table.split("_"))
        alias, n = base, 1
        while alias in aliases.values() or alias in tables or alias.upper() in reserved_aliases():
            n += 1
            alias = f"{base}{n}"
        aliases[table] = alias
    return aliases


# ---------------------------------------------------------------------------------------------
# Query


def sample_spec(rng: random.Random, level: int) -> tuple[dict, Context]:
    """A query of exactly `level`: it always uses the level's own feature, and lower ones at random
    (`tinysql.levels.LEVELS[level]` says which)."""
    rules = LEVELS[level]
    nested = rng.choice(rules.nested) if rules.nested else None
    joins = _join_count(rng, rules, nested)
    context, join_specs = sample_context(rng, joins, rules.aliases)
    spec = new_spec(level, context, join_specs)
    if nested:
        _fill_nested(rng, spec, context, nested)
        if nested in ("in_subquery", "scalar_subquery") and chance(rng, rules.order_by):
            spec["order_by"] = [{"column": r, "direction": rng.choice(("ASC", "DESC"))}
                                for r in rng.sample(spec["select"], 1)]
        return spec, context
    grouped = chance(rng, rules.group_by)
    aggregated = grouped or chance(rng, rules.aggregates)
    if grouped:
        _fill_grouped(rng, spec, context)
    elif aggregated:
        spec["aggregates"] = _sample_aggregates(rng, context, rng.randint(1, 3))
    else:
        spec["select"] = _sample_select(rng, context)
    if chance(rng, rules.where):
        spec["where"] = _sample_where(rng, context)
    if (not aggregated or grouped) and chance(rng, rules.order_by):  # an ungrouped aggregate is one row
        spec["order_by"] = _sample_order(rng, spec, context)
    if chance(rng, rules.distinct_limit):
        _fill_distinct_limit(rng, spec, context)
    return spec, context


def new_spec(level: int, context: Context, join_specs: list[dict]) -> dict:
    """The query of `level` over `context` with every clause still empty."""
    return {
        "level": level,
        "tables": [{"table": t, "alias": context.aliases.get(t)} for t in context.tables],
        "joins": join_specs,
        "distinct": False,
        "select": [],
        "aggregates": [],
        "where": None,
        "group_by": [],
        "having": None,
        "order_by": [],
        "limit": None,
        "nested": None,
    }


def chance(rng: random.Random, rate: float) -> bool:
    """True with probability `rate`; a required (1) or absent (0) clause draws nothing from `rng`."""
    return rate >= 1 or (rate > 0 and rng.random() < rate)


def _join_count(rng: random.Random, rules: Level, nested: str | None) -> int:
    if nested:
        return NESTED_JOINS[nested]
    if not chance(rng, rules.join_rate):
        return 0
    return rng.choice(rules.joins) if len(rules.joins) > 1 else rules.joins[0]


def _sample_select(rng: random.Random, context: Context) -> list[list[str]]:
    refs = [r for r in context.refs() if r[1] != "id" or rng.random() < 0.3]
    return rng.sample(refs, rng.randint(1, min(len(refs), 6)))


def _sample_aggregates(rng: random.Random, context: Context, count: int, exclude=()) -> list[dict]:
    aggregates, seen = [], set()
    refs = [r for r in context.refs() if r[1] != "id" and r not in exclude] or context.refs()
    for _ in range(count * 3):
        if len(aggregates) == count:
            break
        if rng.random() < 0.1:
            func, ref = "COUNT", None
        else:
            ref = rng.choice(refs)
            func = "COUNT" if is_key(ref) else rng.choice(AGGREGATES_BY_KIND[context.kind(ref)])
        alias = f"{func}_{ref[1] if ref else 'all'}"
        if alias not in seen:
            seen.add(alias)
            aggregates.append({"func": func, "column": ref, "alias": alias})
    return aggregates


def is_key(ref: list[str]) -> bool:
    """Ids and foreign keys are counted, never summed or averaged."""
    return ref[1] == "id" or vocabulary.load().columns[ref[1]].references is not None


def _fill_grouped(rng: random.Random, spec: dict, context: Context) -> None:
    candidates = [r for r in context.refs() if r[1] != "id" and context.kind(r) in ("text", "int", "bool", "date")]
    group_by = rng.sample(candidates or context.refs(), 1 if rng.random() < 0.8 or len(candidates) < 2 else 2)
    spec["group_by"] = group_by
    spec["select"] = list(group_by)
    spec["aggregates"] = _sample_aggregates(rng, context, rng.randint(1, 2), exclude=group_by)
    if rng.random() < 0.5:
        spec["having"] = _sample_having(rng, spec, context)


def _sample_having(rng: random.Random, spec: dict, context: Context) -> dict:
    aggregate = rng.choice(spec["aggregates"])
    if aggregate["func"] == "COUNT" or context.kind(aggregate["column"]) not in ("int", "real"):
        op = rng.choice((">", ">="))
        return {"func": "COUNT", "column": None, "op": op, "value": 1 if op == ">" else 2}
    values = context.values(aggregate["column"])
    value = rng.choice(values) if values else 0
    return {"func": aggregate["func"], "column": aggregate["column"], "op": rng.choice((">", "<", ">=", "<=")),
            "value": value}


def _sample_where(rng: random.Random, context: Context, table: str | None = None) -> dict:
    count = rng.choice((1, 1, 2, 2, 3))
    refs = rng.sample(context.refs(table), min(count, len(context.refs(table))))
    return {"connector": rng.choice(("AND", "OR")), "conditions": [_sample_condition(rng, context, r) for r in refs]}


def _sample_condition(rng: random.Random, context: Context, ref: list[str]) -> dict:
    values = context.values(ref)
    ops = OPERATORS_BY_KIND[context.kind(ref)]
    if not values:
        ops = tuple(op for op in ops if op.startswith("IS")) or ("IS NULL",)
    op = rng.choice(ops)
    if op in ("IS NULL", "IS NOT NULL", "= TRUE", "= FALSE"):
        return {"column": ref, "op": op, "value": None}
    if op == "BETWEEN":
        low, high = sorted(rng.sample(values, 2) if len(values) > 1 else values * 2)
        return {"column": ref, "op": op, "value": [low, high]}
    if op == "IN":
        return {"column": ref, "op": op, "value": sorted(set(rng.sample(values, min(len(values), rng.randint(2, 3)))))}
    if op.startswith("LIKE"):
        text = str(rng.choice(values))
        size = min(len(text), rng.randint(3, 5))
        start = {"LIKE x%": 0, "LIKE %x": len(text) - size}.get(op, rng.randint(0, len(text) - size))
        return {"column": ref, "op": op, "value": text[start:start + size]}
    return {"column": ref, "op": op, "value": rng.choice(values)}


def _sample_order(rng: random.Random, spec: dict, context: Context) -> list[dict]:
    if spec["aggregates"]:  # grouped: order by a group column or an aggregate's alias
        keys = [{"column": r} for r in spec["group_by"]] + [{"alias": a["alias"]} for a in spec["aggregates"]]
    else:
        keys = [{"column": r} for r in (spec["select"] if spec["distinct"] else context.refs())]
    chosen = rng.sample(keys, rng.randint(1, min(3, len(keys))))
    return [{**key, "direction": rng.choice(("ASC", "DESC"))} for key in chosen]


def _fill_distinct_limit(rng: random.Random, spec: dict, context: Context) -> None:
    choice = rng.choice(("distinct", "limit", "both"))
    if choice != "limit" and not spec["aggregates"]:
        spec["distinct"] = True
        spec["order_by"] = [o for o in spec["order_by"] if o.get("column") in spec["select"]]
    if choice != "distinct" or spec["aggregates"]:
        if not spec["order_by"]:
            spec["order_by"] = _sample_order(rng, spec, context)
        spec["limit"] = rng.randint(1, 5)


def _fill_nested(rng: random.Random, spec: dict, context: Context, kind: str) -> None:
    main = context.tables[0]
    if kind == "in_subquery":  # rows of the child whose key points at parents meeting a condition
        join = spec.pop("joins")[0]
        spec["joins"] = []
        child, parent = join["left"][0], join["right"][0]
        spec["tables"] = [{"table": child, "alias": None}, {"table": parent, "alias": None}]
        spec["select"] = _sample_select(rng, Context([child], context.columns, context.rows, {}, "qualified"))
        spec["nested"] = {"kind": kind, "column": join["left"], "subquery_column": join["right"],
                          "subquery_where": _sample_where(rng, context, parent)}
        spec["nested"]["subquery_where"]["conditions"] = spec["nested"]["subquery_where"]["conditions"][:1]
        return
    if kind == "scalar_subquery":  # compare with an aggregate of the whole column
        numeric = [r for r in context.refs(main) if context.kind(r) in ("int", "real") and r[1] != "id"]
        ref = rng.choice(numeric or context.refs(main))
        func = rng.choice(("AVG", "MAX", "MIN")) if numeric else rng.choice(("MAX", "MIN"))
        op = {"AVG": rng.choice((">", "<")), "MAX": "=", "MIN": "="}[func]
        spec["select"] = _sample_select(rng, context)
        spec["nested"] = {"kind": kind, "column": ref, "op": op, "func": func}
        return
    if kind == "cte":  # a named grouped subquery, then filtered and ordered
        _fill_grouped(rng, spec, context)
        spec["having"] = None
        spec["nested"] = {"kind": kind, "name": f"{main}_summary"}
        if rng.random() < 0.6:
            spec["order_by"] = [{"alias": a["alias"], "direction": rng.choice(("ASC", "DESC"))}
                                for a in spec["aggregates"][:1]]
        return
    # set operation: the same columns from two filters of one table
    spec["select"] = _sample_select(rng, context)
    first, second = (_sample_where(rng, context) for _ in range(2))
    first["conditions"], second["conditions"] = first["conditions"][:1], second["conditions"][:1]
    spec["where"] = first
    spec["nested"] = {"kind": kind, "operator": rng.choice(("UNION", "INTERSECT", "EXCEPT")), "where": second}


# ---------------------------------------------------------------------------------------------
# Rendering


def column_sql(ref: list[str], context: Context) -> str:
    if context.style == "bare":
        return ref[1]
    if context.style == "alias":
        return f"{context.aliases[ref[0]]}.{ref[1]}"
    return f"{ref[0]}.{ref[1]}"


def literal_sql(value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def aggregate_sql(aggregate: dict, context: Context, with_alias: bool = True) -> str:
    inner = column_sql(aggregate["column"], context) if aggregate["column"] else "*"
    text = f"{aggregate['func']}({inner})"
    return f"{text} AS {aggregate['alias']}" if with_alias and aggregate.get("alias") else text


def condition_sql(condition: dict, context: Context) -> str:
    column, op, value = column_sql(condition["column"], context), condition["op"], condition["value"]
    if op == "BETWEEN":
        return f"{column} BETWEEN {literal_sql(value[0])} AND {literal_sql(value[1])}"
    if op == "IN":
        return f"{column} IN ({', '.join(literal_sql(v) for v in value)})"
    if op.startswith("LIKE"):
        pattern = op.split()[1].replace("x", value)
        return f"{column} LIKE {literal_sql(pattern)}"
    if value is None:
        return f"{column} {op}"
    return f"{column} {op} {literal_sql(value)}"


def where_sql(where: dict, context: Context) -> str:
    return f" {where['connector']} ".join(condition_sql(c, context) for c in where["conditions"])


def from_sql(spec: dict, context: Context) -> str:
    def table(name: str) -> str:
        alias = context.aliases.get(name)
        return f"{name} AS {alias}" if alias else name

    text = f"FROM {table(spec['tables'][0]['table'])}"
    for join in spec["joins"]:
        text += (f" JOIN {table(join['table'])} ON {column_sql(join['left'], context)}"
                 f" = {column_sql(join['right'], context)}")
    return text


def to_sql(spec: dict, context: Context) -> str:
    """The SQLite text of a query spec."""
    nested = spec["nested"] or {}
    if nested.get("kind") == "cte":
        return _cte_sql(spec, context)
    items = [column_sql(r, context) for r in spec["select"]] + [aggregate_sql(a, context) for a in spec["aggregates"]]
    if nested.get("kind") == "in_subquery":
        items = [column_sql(r, context) for r in spec["select"]]
        parts = [f"SELECT {', '.join(items)} FROM {spec['tables'][0]['table']}"]
    else:
        parts = [f"SELECT {'DISTINCT ' if spec['distinct'] else ''}{', '.join(items)}", from_sql(spec, context)]
    conditions = [where_sql(spec["where"], context)] if spec["where"] else []
    if nested.get("kind") == "in_subquery":
        parent = nested["subquery_column"][0]
        conditions.append(
            f"{column_sql(nested['column'], context)} IN (SELECT {column_sql(nested['subquery_column'], context)} "
            f"FROM {parent} WHERE {where_sql(nested['subquery_where'], context)})")
    if nested.get("kind") == "scalar_subquery":
        column = column_sql(nested["column"], context)
        conditions.append(f"{column} {nested['op']} (SELECT {nested['func']}({column}) {from_sql(spec, context)})")
    if len(conditions) == 2 and spec["where"] and len(spec["where"]["conditions"]) > 1:
        conditions[0] = f"({conditions[0]})"
    if conditions:
        parts.append("WHERE " + " AND ".join(conditions))
    if spec["group_by"]:
        parts.append("GROUP BY " + ", ".join(column_sql(r, context) for r in spec["group_by"]))
    if spec["having"]:
        having = spec["having"]
        parts.append(f"HAVING {aggregate_sql(having, context, with_alias=False)} {having['op']} {literal_sql(having['value'])}")
    if nested.get("kind") == "set_operation":
        parts.append(f"{nested['operator']} SELECT {', '.join(items)} {from_sql(spec, context)} "
                     f"WHERE {where_sql(nested['where'], context)}")
    if spec["order_by"]:
        parts.append("ORDER BY " + ", ".join(_order_sql(o, context) for o in spec["order_by"]))
    if spec["limit"] is not None:
        parts.append(f"LIMIT {spec['limit']}")
    return " ".join(parts)


def _order_sql(order: dict, context: Context) -> str:
    key = order["alias"] if "alias" in order else column_sql(order["column"], context)
    return f"{key} {order['direction']}"


def _cte_sql(spec: dict, context: Context) -> str:
    name = spec["nested"]["name"]
    group = ", ".join(column_sql(r, context) for r in spec["group_by"])
    items = [column_sql(r, context) for r in spec["group_by"]] + [aggregate_sql(a, context) for a in spec["aggregates"]]
    inner = f"SELECT {', '.join(items)} {from_sql(spec, context)}"
    if spec["where"]:
        inner += f" WHERE {where_sql(spec['where'], context)}"
    inner += f" GROUP BY {group}"
    outer = [r[1] for r in spec["group_by"]] + [a["alias"] for a in spec["aggregates"]]
    text = f"WITH {name} AS ({inner}) SELECT {', '.join(outer)} FROM {name}"
    if spec["order_by"]:
        text += " ORDER BY " + ", ".join(f"{o['alias']} {o['direction']}" for o in spec["order_by"])
    return text


def create_sql(table: str, columns: list[str]) -> str:
    """`CREATE TABLE t ( a TYPE, b TYPE )`, the published one-line context form."""
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in column_types(table, columns))
    return f"CREATE TABLE {table} ( {body} )"


def column_types(table: str, columns: list[str]) -> list[tuple[str, str]]:
    """(name, SQLite type) of each of `columns`, as `create_sql` declares them."""
    vocab = vocabulary.load()
    return [(name, vocab.columns[name].sql_type) for name in columns]


def context_sql(context: Context) -> str:
    return "; ".join(create_sql(t, context.columns[t]) for t in context.tables)
