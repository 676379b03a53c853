"""The TinySQL level ladder as data: one `Level` per level, read by the sampler and by every text.

`tinysql.query.sample_spec` draws a query from its level's row of `LEVELS` (how many joins, table
aliases, which clauses are required, drawn at random or absent, which nested kinds); `NOTES`
(`{level: what it adds}`) feeds `tinysql-gen --help` and the dataset card; `table()` is the markdown
level table of the card and of the README (`python -m tinysql.levels` prints it).

A clause's `rate` is its chance per item: `REQUIRED` (1) and `ABSENT` (0) draw nothing from the
item's random stream, a rate in between draws one number.
"""

from __future__ import annotations

from dataclasses import dataclass

REQUIRED = 1.0
ABSENT = 0.0
# The nested queries of level 8 and the joins each needs (an IN subquery reads a second, joined table).
NESTED_JOINS = {"in_subquery": 1, "scalar_subquery": 0, "cte": 0, "set_operation": 0}


@dataclass(frozen=True)
class Level:
    number: int
    adds: str  # what the level adds to the ones below, in markdown
    join_rate: float = ABSENT  # chance that the query joins tables at all
    joins: tuple[int, ...] = (1,)  # join counts when it does, one drawn uniformly when there are several
    aliases: bool = False  # tables get aliases (`oi.id`); otherwise columns are qualified only when joined
    group_by: float = ABSENT  # GROUP BY with aggregates (HAVING at random)
    aggregates: float = ABSENT  # aggregates without GROUP BY (never followed by ORDER BY)
    where: float = ABSENT
    order_by: float = ABSENT  # at level 8: of an IN or scalar subquery's outer query
    distinct_limit: float = ABSENT  # DISTINCT, LIMIT (after an ORDER BY) or both
    nested: tuple[str, ...] = ()  # nested kinds, one drawn per item (then the clauses above are its own)


LADDER = (
    Level(1, "`SELECT` columns `FROM` one table"),
    Level(2, "`ORDER BY` one to three columns, each with its own direction", order_by=REQUIRED),
    Level(3, "aliased aggregates (`SUM(price) AS SUM_price`) over columns of a type they suit; never beside "
             "bare columns without `GROUP BY`", aggregates=REQUIRED),
    Level(4, "`WHERE` with 1-3 conditions (`= != < > <= >=`, `LIKE`, `IN`, `BETWEEN`, `IS [NOT] NULL`, "
             "`AND`/`OR`), literals taken from realistic sample rows",
          aggregates=0.3, where=REQUIRED, order_by=0.5),
    Level(5, "`JOIN` of two tables on a foreign key; both `CREATE TABLE`s in the context; every column qualified",
          join_rate=REQUIRED, aggregates=0.3, where=0.5, order_by=0.5),
    Level(6, "`GROUP BY` / `HAVING`", join_rate=0.3, group_by=REQUIRED, where=0.5, order_by=0.5),
    Level(7, "joins of two to four tables with aliases, `DISTINCT`, `LIMIT`",
          join_rate=REQUIRED, joins=(1, 2, 2, 3), aliases=True, group_by=0.3, where=0.5, order_by=0.5,
          distinct_limit=REQUIRED),
    Level(8, "`IN (SELECT ...)` and scalar subqueries, CTEs (`WITH`), `UNION`/`INTERSECT`/`EXCEPT`",
          order_by=0.4, nested=tuple(NESTED_JOINS)),
)
LEVELS = {level.number: level for level in LADDER}
NOTES = {level.number: level.adds for level in LADDER}
CLAUSES = {"group_by": "`GROUP BY`", "aggregates": "aggregates", "where": "`WHERE`", "order_by": "`ORDER BY`",
           "distinct_limit": "`DISTINCT`/`LIMIT`"}


def table_counts(level: Level) -> list[int]:
    """How many tables an item of `level` may name."""
    if level.nested:
        joins = {NESTED_JOINS[kind] for kind in level.nested}
    else:
        joins = (set(level.joins) if level.join_rate > 0 else set()) | ({0} if level.join_rate < 1 else set())
    return sorted(j + 1 for j in joins)


def at_random(level: Level) -> list[str]:
    """The clauses an item of `level` has at random."""
    return [text for name, text in CLAUSES.items() if 0 < getattr(level, name) < 1]


def table(numbers=None) -> str:
    """The markdown level table (of the levels `numbers`, default all)."""
    rows = []
    for level in (LEVELS[n] for n in (numbers or LEVELS)):
        counts = table_counts(level)
        tables = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        rows.append(f"| {level.number} | {level.adds} | {tables} | {', '.join(at_random(level)) or '-'} |")
    return "\n".join(["| level | adds | tables | also, at random |", "|---|---|---|---|", *rows])


if __name__ == "__main__":
    print(table())
