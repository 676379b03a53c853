"""The original TinySQL's lenient metric (withmartian/TinySQL's per-command-set scorers), written anew
from its description so that published numbers can be compared with this project's.

It awards points for tokens, not meaning: the prediction is upper-cased, cut at `ORDER BY`, split on
whitespace (commas stripped), and scored on SELECT/FROM/table present and in place, each expected
field (or `AGG(col)` and its alias) present and after SELECT, the ORDER BY keys present, no
unrecognised words, and a prediction not much longer than the gold. A flipped ASC/DESC, a reordered
select list or a dropped ORDER BY therefore still score 1.0. It exists for levels 1-3 only (the
original's CS4/CS5 scorers are placeholders returning 0, and its evaluation refuses those sets), so
`score(...)` is None above level 3.

`item(record)` reads what the metric needs from a record's `clauses` (any corpus of this project,
with or without `--compat original`); `score(item, prediction)` is the metric, in [0, 1].
"""

from __future__ import annotations

import json
from typing import NamedTuple

LEVELS = (1, 2, 3)


class Item(NamedTuple):
    level: int
    table: str
    gold: str  # its length bounds a "reasonable" answer
    fields: tuple[str, ...]  # select items as written: `col` or `AGG(col)`
    aliases: tuple[str, ...]  # the aliases of the aggregated ones
    order_by: tuple[str, ...]  # ORDER BY keys: columns or aliases


def item(record: dict) -> Item | None:
    """What the metric needs of a record (None above level 3, or without usable `clauses`)."""
    level = record.get("level")
    if level not in LEVELS:
        return None
    try:
        spec = json.loads(record.get("clauses") or "")
    except (TypeError, ValueError):
        return None
    aggregates = spec.get("aggregates") or []
    fields = [ref[1] for ref in spec.get("select") or []]
    fields += [f"{a['func']}({a['column'][1] if a['column'] else '*'})" for a in aggregates]
    order_by = [o["alias"] if "alias" in o else o["column"][1] for o in spec.get("order_by") or []]
    return Item(level, spec["tables"][0]["table"], record.get("sql_statement") or "", tuple(fields),
                tuple(a["alias"] for a in aggregates), tuple(order_by))


def score(item: Item | None, prediction: str) -> float | None:
    """The original's score of `prediction` for `item`, in [0, 1]; None when it has no scorer for the level."""
    if item is None or item.level not in LEVELS:
        return None
    text = " ".join(prediction.split()).upper()
    if not text:
        return 0.0
    if item.level == 1:  # the whole text; levels 2-3 score the part before ORDER BY and the ORDER BY apart
        parts = [_basics(item, text), _fields(item, text, item.fields, (), ["SELECT", "FROM"])]
    else:
        head, _, rest = text.partition("ORDER BY")
        tail = "ORDER BY " + rest.split("ORDER BY")[0] if "ORDER BY" in text else ""
        if item.level == 2:
            parts = [_basics(item, head), _fields(item, head, item.fields, (), ["SELECT", "FROM"]), _order(item, tail)]
        else:
            parts = [_basics(item, head), _order(item, tail),
                     _fields(item, head, item.fields, item.aliases, ["SELECT", "AS", "FROM"])]
    return sum(p[0] for p in parts) / sum(p[1] for p in parts)


def _tokens(text: str) -> list[str]:
    return [token.strip(",") for token in text.split()]


def _basics(item: Item, text: str) -> tuple[int, int]:
    """SELECT, the table and FROM present, SELECT first, and a length within a few characters of the gold's."""
    tokens = _tokens(text)
    earned = ("SELECT" in tokens) + (item.table.upper() in tokens) + ("FROM" in tokens)
    earned += bool(tokens) and tokens[0] == "SELECT"
    return earned + _length_points(len(text) - len(item.gold)), 4 + 10


def _length_points(extra: int) -> int:
    for limit, points in ((2, 10), (4, 8), (6, 6), (8, 4), (10, 2)):
        if extra <= limit:
            return points
    return 0


def _unrecognised_points(tokens: list[str], known: set[str]) -> int:
    unknown = sum(token not in known for token in tokens)
    for limit, points in ((0, 10), (1, 8), (2, 6), (4, 4), (8, 2)):
        if unknown <= limit:
            return points
    return 0


def _fields(item: Item, text: str, fields, aliases, words: list[str]) -> tuple[int, int]:
    """Each field (and alias) present; each field after SELECT; FROM after them; the table after FROM;
    nothing unrecognised (10 points)."""
    tokens = _tokens(text)
    fields, aliases = [f.upper() for f in fields], [a.upper() for a in aliases]
    table = item.table.upper()
    earned = sum(f in tokens for f in fields) + sum(a in tokens for a in aliases)
    total = len(fields) + len(aliases)
    if "SELECT" in tokens:
        start = tokens.index("SELECT")
        total += len(fields)
        earned += sum(all(i > start for i, t in enumerate(tokens) if t == f) for f in fields)
    if "FROM" in tokens:
        source = tokens.index("FROM")
        last = max((i for i, t in enumerate(tokens) if t in fields), default=-1)
        total += 1
        earned += source > last
        if table in tokens:
            total += 1
            earned += tokens.index(table) > source
    return earned + _unrecognised_points(tokens, {*words, table, *fields, *aliases}), total + 10


def _order(item: Item, text: str) -> tuple[int, int]:
    """Nothing when the prediction has no ORDER BY; else ORDER BY first, each key present, nothing unrecognised."""
    if not text:
        return 0, 0
    tokens = _tokens(text)
    keys = [k.upper() for k in item.order_by]
    earned = (tokens[:2] == ["ORDER", "BY"]) + sum(k in tokens for k in keys)
    return earned + _unrecognised_points(tokens, {"ORDER", "BY", "ASC", "DESC", *keys}), 1 + len(keys) + 10
