"""The English request of one TinySQL item, written from its query spec with many templates.

`choose_names` decides how each table and column is called (its name, or with `--synonyms` one of
its English synonyms, never one that equals another identifier or name of the same schema);
`describe` writes the request. The words that must appear for each clause are listed in
`EVIDENCE`, which the validator uses to check that the request mentions every required element.
"""

from __future__ import annotations

import random

from tinysql import vocabulary
from tinysql.query import Context, literal_sql

TABLE_SYNONYM_RATE = 0.8  # as in the published "_synonyms" datasets
COLUMN_SYNONYM_RATE = 0.5

AGGREGATE_PHRASES = {
    "COUNT": ("the number of {c} values", "the count of {c}", "how many {c} entries there are"),
    "COUNT*": ("the number of rows", "the number of records", "how many rows there are", "the row count"),
    "SUM": ("the total {c}", "the sum of {c}", "the combined {c}"),
    "AVG": ("the average {c}", "the mean {c}", "the mean of {c}"),
    "MIN": ("the lowest {c}", "the minimum {c}", "the smallest {c}"),
    "MAX": ("the highest {c}", "the maximum {c}", "the largest {c}"),
}
CONDITION_PHRASES = {
    "=": ("is {v}", "equals {v}", "is equal to {v}"),
    "!=": ("is not {v}", "does not equal {v}", "is different from {v}"),
    ">": ("is greater than {v}", "is above {v}", "exceeds {v}"),
    "<": ("is less than {v}", "is below {v}", "is smaller than {v}"),
    ">=": ("is at least {v}", "is {v} or more", "is greater than or equal to {v}"),
    "<=": ("is at most {v}", "is {v} or less", "is less than or equal to {v}"),
    "BETWEEN": ("is between {a} and {b}", "lies between {a} and {b}", "falls between {a} and {b}"),
    "IN": ("is one of {list}", "is any of {list}", "matches one of {list}"),
    "LIKE %x%": ("contains {v}", "includes {v}", "has {v} in it"),
    "LIKE x%": ("starts with {v}", "begins with {v}"),
    "LIKE %x": ("ends with {v}", "finishes with {v}"),
    "IS NULL": ("is missing", "is null", "has no value", "is not recorded"),
    "IS NOT NULL": ("is present", "is not null", "has a value", "is recorded"),
    "= TRUE": ("is true",),
    "= FALSE": ("is false",),
}
DIRECTION_PHRASES = {
    "ASC": ("in ascending order", "from lowest to highest", "ascending", "in increasing order"),
    "DESC": ("in descending order", "from highest to lowest", "descending", "in decreasing order"),
}
# Words whose presence the validator requires, per clause element.
EVIDENCE = {
    "COUNT": ("number", "count", "how many"),
    "SUM": ("total", "sum", "combined"),
    "AVG": ("average", "mean"),
    "MIN": ("lowest", "minimum", "smallest"),
    "MAX": ("highest", "maximum", "largest"),
    "ASC": ("ascending", "lowest to highest", "increasing"),
    "DESC": ("descending", "highest to lowest", "decreasing"),
    "DISTINCT": ("distinct", "unique", "without duplicates"),
    "UNION": ("together with", "as well as", "combined with"),
    "INTERSECT": ("both", "also"),
    "EXCEPT": ("except", "excluding", "but not"),
}
OPENINGS = ("Show", "List", "Get", "Display", "Give me", "Find", "Return", "Fetch", "Retrieve", "Pull up",
            "I need", "I want to see", "Can you show", "Please list", "Could you get", "Output", "Look up",
            "Tell me", "Bring up", "Extract")


def choose_names(rng: random.Random, context: Context, synonyms: bool) -> dict:
    """How the request calls each table and column: {"tables": {t: word}, "columns": {"t.c": word}}."""
    vocab = vocabulary.load()
    taken = {_plain(t) for t in context.tables} | {_plain(c) for t in context.tables for c in context.columns[t]}
    names: dict = {"tables": {}, "columns": {}}
    for table in context.tables:
        names["tables"][table] = _pick(rng, table, vocab.tables[table].synonyms, synonyms, TABLE_SYNONYM_RATE, taken)
        for column in context.columns[table]:
            word = _pick(rng, column, vocab.columns[column].synonyms, synonyms, COLUMN_SYNONYM_RATE, taken)
            names["columns"][f"{table}.{column}"] = word
    return names


def _plain(name: str) -> str:
    return name.replace("_", " ").lower()


def _pick(rng, name: str, synonyms, enabled: bool, rate: float, taken: set[str]) -> str:
    if not enabled or rng.random() >= rate:
        return name
    allowed = [s for s in synonyms if _plain(s) not in taken]
    if not allowed:
        return name
    word = rng.choice(allowed)
    taken.add(_plain(word))
    return word


def describe(rng: random.Random, spec: dict, context: Context, names: dict) -> str:
    """The English request for `spec`."""
    writer = _Writer(rng, context, names)
    nested = (spec["nested"] or {}).get("kind")
    if nested == "cte":
        return writer.cte(spec)
    parts = [writer.head(spec)]
    if spec["joins"]:
        parts.append(writer.joins(spec))
    if spec["where"]:
        parts.append(writer.where(spec["where"]))
    if nested == "in_subquery":
        parts.append(writer.in_subquery(spec["nested"]))
    if nested == "scalar_subquery":
        parts.append(writer.scalar(spec["nested"]))
    if spec["group_by"]:
        parts.append(rng.choice(("for each", "per", "grouped by", "broken down by")) + " " +
                     writer.listing([writer.column(r) for r in spec["group_by"]]))
    if spec["having"]:
        parts.append(writer.having(spec["having"]))
    if nested == "set_operation":
        parts.append(writer.set_operation(spec["nested"]))
    if spec["order_by"]:
        parts.append(writer.order(spec["order_by"], spec))
    if spec["limit"] is not None:
        parts.append(rng.choice(("showing only the first {k} rows", "limited to {k} rows", "keeping just {k} rows",
                                 "returning at most {k} rows")).format(k=spec["limit"]))
    text = ", ".join(p for p in parts if p)
    return text + ("?" if text.startswith(("What", "Which")) else ".")


class _Writer:
    def __init__(self, rng: random.Random, context: Context, names: dict):
        self.rng, self.context, self.names = rng, context, names
        self.qualified = rng.choice(("{t} {c}", "{c} of {t}", "{c} from {t}"))

    def table(self, table: str) -> str:
        return self.names["tables"][table]

    def column(self, ref: list[str]) -> str:
        word = self.names["columns"][f"{ref[0]}.{ref[1]}"]
        if len(self.context.tables) == 1:
            return word
        return self.qualified.format(t=self.table(ref[0]), c=word)

    def listing(self, words: list[str]) -> str:
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]

    def aggregate(self, aggregate: dict) -> str:
        key = "COUNT*" if aggregate["column"] is None else aggregate["func"]
        column = self.column(aggregate["column"]) if aggregate["column"] else ""
        return self.rng.choice(AGGREGATE_PHRASES[key]).format(c=column)

    def head(self, spec: dict) -> str:
        items = [self.column(r) for r in spec["select"]] + [self.aggregate(a) for a in spec["aggregates"]]
        what = self.listing(items)
        if spec["distinct"]:
            what = self.rng.choice(("the distinct {w}", "the unique {w}", "{w} without duplicates")).format(w=what)
        source = self.table(spec["tables"][0]["table"])
        form = self.rng.random()
        if form < 0.15:
            return f"What are {what} in {source}"
        opening = self.rng.choice(OPENINGS)
        preposition = self.rng.choice(("from", "in", "from the table", "of"))
        return f"{opening} {what} {preposition} {source}"

    def joins(self, spec: dict) -> str:
        phrases = []
        for join in spec["joins"]:
            left, right = self.column(join["left"]), self.column(join["right"])
            template = self.rng.choice(("joining {t} on {l} = {r}", "combined with {t} where {l} matches {r}",
                                        "linked to {t} through {l} equal to {r}"))
            phrases.append(template.format(t=self.table(join["table"]), l=left, r=right))
        return ", ".join(phrases)

    def condition(self, condition: dict) -> str:
        op, value = condition["op"], condition["value"]
        template = self.rng.choice(CONDITION_PHRASES[op])
        if op == "BETWEEN":
            phrase = template.format(a=literal_sql(value[0]), b=literal_sql(value[1]))
        elif op == "IN":
            values = [literal_sql(v) for v in value]
            phrase = template.format(list=", ".join(values[:-1]) + " or " + values[-1])
        else:
            phrase = template.format(v=literal_sql(value) if value is not None else "")
        return f"{self.column(condition['column'])} {phrase}"

    def where(self, where: dict) -> str:
        conditions = [self.condition(c) for c in where["conditions"]]
        joined = f" {where['connector'].lower()} ".join(conditions)
        if where["connector"] == "OR" and len(conditions) == 2 and self.rng.random() < 0.5:
            joined = "either " + joined
        return self.rng.choice(("where", "for rows where", "whose", "only when", "filtered so that")) + " " + joined

    def having(self, having: dict) -> str:
        phrase = self.rng.choice(CONDITION_PHRASES[having["op"]]).format(v=literal_sql(having["value"]))
        opener = self.rng.choice(("keeping only groups where", "only for groups whose", "having"))
        return f"{opener} {self.aggregate(having)} {phrase}"

    def order(self, order_by: list[dict], spec: dict) -> str:
        aliases = {a["alias"]: a for a in spec["aggregates"]}
        keys = []
        for order in order_by:
            key = self.aggregate(aliases[order["alias"]]) if "alias" in order else self.column(order["column"])
            keys.append(f"{key} {self.rng.choice(DIRECTION_PHRASES[order['direction']])}")
        return self.rng.choice(("sorted by", "ordered by", "sort by", "order by")) + " " + self.listing(keys)

    def in_subquery(self, nested: dict) -> str:
        parent = nested["subquery_column"][0]
        condition = self.condition(nested["subquery_where"]["conditions"][0])
        return (f"whose {self.column(nested['column'])} is among the {self.column(nested['subquery_column'])} "
                f"values of {self.table(parent)} where {condition}")

    def scalar(self, nested: dict) -> str:
        column = self.column(nested["column"])
        if nested["func"] == "AVG":
            side = {">": "above", "<": "below"}[nested["op"]]
            return f"whose {column} is {side} the {self.rng.choice(('average', 'mean'))} {column}"
        extreme = {"MAX": ("highest", "maximum", "largest"), "MIN": ("lowest", "minimum", "smallest")}[nested["func"]]
        return f"whose {column} equals the {self.rng.choice(extreme)} {column} of all rows"

    def set_operation(self, nested: dict) -> str:
        operator = nested["operator"]
        condition = " and ".join(self.condition(c) for c in nested["where"]["conditions"])
        phrase = {
            "UNION": ("together with those where {c}", "as well as those where {c}", "combined with those where {c}"),
            "INTERSECT": ("that also appear where {c}", "keeping only those found both there and where {c}"),
            "EXCEPT": ("except those that also appear where {c}", "excluding those found where {c}",
                       "but not those where {c}"),
        }[operator]
        return self.rng.choice(phrase).format(c=condition)

    def cte(self, spec: dict) -> str:
        name = spec["nested"]["name"]
        summary = self.listing([self.aggregate(a) for a in spec["aggregates"]])
        groups = self.listing([self.column(r) for r in spec["group_by"]])
        text = (f"{self.rng.choice(('First', 'To start,'))} build a summary called {name} with {summary} "
                f"for each {groups} in {self.table(spec['tables'][0]['table'])}")
        if spec["where"]:
            text += ", " + self.where(spec["where"])
        text += f"; then {self.rng.choice(('show', 'list', 'return'))} everything in {name}"
        if spec["order_by"]:
            text += ", " + self.order(spec["order_by"], spec)
        return text + "."
