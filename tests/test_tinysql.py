"""TinySQL generation: each level's SQL features (and the level table they follow), the checks, synonyms,
dialects and the public `sample`."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from conftest import script
from tinysql import levels, vocabulary
from tinysql.english import choose_names, describe
from tinysql.generate import make_item, sample
from tinysql.generator import Options
from tinysql.query import create_sql, sample_spec, to_sql
from tinysql.validate import validate

PER_LEVEL = 40


def items(level: int, count: int = PER_LEVEL, **options) -> list[dict]:
    records = []
    index = 0
    while len(records) < count:
        candidate = make_item(Options(**options), level, index)
        index += 1
        if candidate.record is not None:
            records.append(candidate.record)
    return records


def tree(record: dict) -> exp.Expression:
    return sqlglot.parse_one(record["sql_statement"], read=record["dialect"])


def has(node: exp.Expression, kind) -> bool:
    return node.find(kind) is not None


def test_level1_is_plain_select():
    for record in items(1):
        node = tree(record)
        assert isinstance(node, exp.Select)
        for kind in (exp.Order, exp.Where, exp.Join, exp.AggFunc, exp.Group, exp.Limit):
            assert not has(node, kind), record["sql_statement"]
        assert record["create_statement"].startswith(f"CREATE TABLE {record['table_name']} ( ")


def test_level2_orders_by_columns_with_their_own_directions():
    directions = set()
    for record in items(2):
        order = tree(record).args["order"]
        assert order is not None, record["sql_statement"]
        directions |= {"DESC" if o.args.get("desc") else "ASC" for o in order.expressions}
        assert " ASC" in record["sql_statement"] or " DESC" in record["sql_statement"]
    assert directions == {"ASC", "DESC"}
    mixed = [r for r in items(2, 150) if "ASC" in r["sql_statement"] and "DESC" in r["sql_statement"]]
    assert mixed, "some queries must mix directions"


def test_level3_aggregates_are_legal_and_aliased():
    vocab = vocabulary.load()
    for record in items(3):
        node = tree(record)
        assert not has(node, exp.Group)
        for expression in node.expressions:
            assert isinstance(expression, exp.Alias), record["sql_statement"]
            assert has(expression, exp.AggFunc), "no bare column beside aggregates without GROUP BY"
        for function in node.find_all(exp.Sum, exp.Avg):
            assert vocab.columns[function.find(exp.Column).name].kind in ("int", "real")


def test_level4_where_literals_fit_types():
    ops = set()
    for record in items(4, 80):
        where = tree(record).args["where"]
        assert where is not None
        ops |= {type(node).__name__ for node in where.walk()}
        for condition in json.loads(record["clauses"])["where"]["conditions"]:
            kind = vocabulary.load().columns[condition["column"][1]].kind
            values = condition["value"] if isinstance(condition["value"], list) else [condition["value"]]
            for value in values:
                if value is None:
                    continue
                if kind in ("int", "bool"):
                    assert isinstance(value, int)
                elif kind == "real":
                    assert isinstance(value, (int, float))
                else:
                    assert isinstance(value, str)
    assert {"EQ", "Like", "In", "Between", "Is"} <= ops or len(ops & {"EQ", "Like", "In", "Between", "Is", "GT", "LT"}) >= 4


def test_level5_joins_two_tables_with_qualified_columns():
    for record in items(5):
        node = tree(record)
        assert len(list(node.find_all(exp.Join))) == 1
        assert record["create_statement"].count("CREATE TABLE") == 2
        for column in node.find_all(exp.Column):
            if column.name not in {a.alias for a in node.find_all(exp.Alias)}:
                assert column.table, f"unqualified column in {record['sql_statement']}"


def test_level6_groups():
    having = 0
    for record in items(6):
        node = tree(record)
        assert node.args.get("group") is not None
        having += node.args.get("having") is not None
        grouped = {g.sql() for g in node.args["group"].expressions}
        for expression in node.expressions:
            assert has(expression, exp.AggFunc) or expression.sql() in grouped
    assert having > 0


def test_level7_aliases_distinct_limit():
    many_joins = 0
    for record in items(7):
        node = tree(record)
        aliases = [t.alias for t in node.find_all(exp.Table)]
        assert all(aliases), record["sql_statement"]
        assert node.args.get("distinct") or node.args.get("limit"), record["sql_statement"]
        if node.args.get("limit"):
            assert node.args.get("order") is not None, "LIMIT only with ORDER BY"
        many_joins += len(list(node.find_all(exp.Join))) >= 2
    assert many_joins > 0


def test_level8_nests():
    kinds = set()
    for record in items(8, 60):
        node = tree(record)
        nested = (has(node, exp.Subquery) or has(node, exp.With) or isinstance(node, exp.SetOperation)
                  or any(isinstance(n, exp.Select) and n is not node for n in node.walk()))
        assert nested, record["sql_statement"]
        kinds.add(json.loads(record["clauses"])["nested"]["kind"])
    assert kinds == {"in_subquery", "scalar_subquery", "cte", "set_operation"}


@pytest.mark.parametrize("level", range(1, 9))
def test_prompt_formats(level):
    record = items(level, 1, format="both")[0]
    assert record["prompt"] == (f"### Instruction: {record['english_prompt']} ### Context: "
                                f"{record['create_statement']} ### Response: ")
    assert record["completion"] == record["sql_statement"]
    assert record["messages"][-1] == {"role": "assistant", "content": record["sql_statement"]}
    assert "  " not in record["english_prompt"] and record["english_prompt"] == record["english_prompt"].strip()


def test_synonyms_never_collide_with_schema_identifiers():
    used = 0
    for level in (1, 5, 7):
        for record in items(level, 60, synonyms=True):
            clauses = json.loads(record["clauses"])
            identifiers = {part.replace("_", " ") for ref in clauses["names"]["columns"] for part in ref.split(".")}
            for key, word in {**clauses["names"]["tables"], **clauses["names"]["columns"]}.items():
                if word != key.split(".")[-1]:
                    used += 1
                    assert word.replace("_", " ") not in identifiers, (word, record["create_statement"])
    assert used > 100


def test_same_index_same_item_and_seeds_differ():
    a = make_item(Options(seed=1, validate=False), 4, 7).record
    assert a == make_item(Options(seed=1, validate=False), 4, 7).record
    for other in (make_item(Options(seed=2, validate=False), 4, 6), make_item(Options(seed=2, validate=False), 4, 7)):
        assert other.record["sql_statement"] != a["sql_statement"]


def test_sample_is_the_item_with_its_query_and_context():
    for level in range(1, 9):
        for index in range(3):
            item = sample(Options(seed=4), level, index)
            assert item.candidate == make_item(Options(seed=4), level, index)
            if item.candidate.record is not None:
                clauses = json.loads(item.candidate.record["clauses"])
                assert {k: v for k, v in clauses.items() if k != "names"} == json.loads(json.dumps(item.spec))
                assert item.candidate.record["sql_statement"] == to_sql(item.spec, item.context)


# --- the level table ----------------------------------------------------------------------------


def clauses_of(spec: dict) -> dict[str, bool]:
    """Which of the level table's clauses a (not nested) query has."""
    return {"group_by": bool(spec["group_by"]), "aggregates": bool(spec["aggregates"]) and not spec["group_by"],
            "where": spec["where"] is not None, "order_by": bool(spec["order_by"]),
            "distinct_limit": spec["distinct"] or spec["limit"] is not None}


@pytest.mark.parametrize("level", sorted(levels.LEVELS))
def test_sampled_queries_follow_their_row_of_the_level_table(level):
    row = levels.LEVELS[level]
    tables, kinds, seen = set(), set(), {name: set() for name in levels.CLAUSES}
    for seed in range(150):
        spec, context = sample_spec(random.Random(seed), level)
        tables.add(len(context.tables))
        assert all(t["alias"] for t in spec["tables"]) == row.aliases
        if row.nested:
            kinds.add(spec["nested"]["kind"])
            continue
        for name, present in clauses_of(spec).items():
            seen[name].add(present)
    assert sorted(tables) == levels.table_counts(row)
    assert kinds == set(row.nested)
    for name in seen if not row.nested else ():
        rate = getattr(row, name)
        expected = {True} if rate == levels.REQUIRED else {False} if rate == levels.ABSENT else {True, False}
        assert seen[name] == expected, (name, rate)


def test_readme_shows_the_level_table():
    assert script("tinysql.levels").stdout == levels.table() + "\n"
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert levels.table() in readme
    assert len(readme.split("\n| level | adds |")) == 2, "one TinySQL level table"


def test_other_dialect_parses_there():
    for record in items(7, 20, dialect="postgres"):
        assert record["dialect"] == "postgres"
        sqlglot.parse_one(record["sql_statement"], read="postgres")
    assert any("DATETIME" not in r["create_statement"] and "TIMESTAMP" in r["create_statement"]
               for r in items(4, 40, dialect="postgres"))


# --- the checks catch planted wrong labels -----------------------------------------------


def sampled(level: int, seed: int = 0):
    rng = random.Random(seed)
    while True:
        spec, context = sample_spec(rng, level)
        names = choose_names(rng, context, False)
        english = describe(rng, spec, context, names)
        sql = to_sql(spec, context)
        if validate(sql, spec, context, english, names) is None:
            return sql, spec, context, english, names


def test_checks_accept_a_good_label():
    sql, spec, context, english, names = sampled(4)
    assert validate(sql, spec, context, english, names) is None


def test_checks_reject_planted_errors():
    sql, spec, context, english, names = sampled(1, seed=3)
    table = context.tables[0]
    column = context.columns[table][0]
    text_columns = [c for c in context.columns[table] if vocabulary.load().columns[c].kind == "text"]
    assert validate("SELEC broken FROM", spec, context, english, names) == "parse_error"
    assert validate(f"SELECT no_such_column FROM {table}", spec, context, english, names) == "unknown_identifier"
    assert validate(f"SELECT {column} FROM no_such_table", spec, context, english, names) == "unknown_identifier"
    outside = [c for c in vocabulary.load().tables[table].columns if c not in context.columns[table]]
    if outside:  # a real column of the table, but not in this item's CREATE TABLE
        assert validate(f"SELECT {outside[0]} FROM {table}", spec, context, english, names) == "unknown_identifier"
    assert validate(f"SELECT {column}, COUNT(*) FROM {table}", spec, context, english, names) == \
        "bare_column_with_aggregate"
    if text_columns:
        assert validate(f"SELECT SUM({text_columns[0]}) FROM {table}", spec, context, english, names) == \
            "aggregate_type"
    assert validate(f"SELECT {column} FROM {table} WHERE 1 = 0", spec, context, english, names) == \
        "empty_result"
    assert validate(sql, spec, context, english.replace(table, "things"), names) == "prompt_missing_element"


def test_checks_reject_a_request_missing_a_literal_or_direction():
    sql, spec, context, english, names = sampled(4, seed=5)
    condition = spec["where"]["conditions"][0]
    values = condition["value"] if isinstance(condition["value"], list) else [condition["value"]]
    literal = next((str(v) for v in values if v is not None), None)
    if literal:
        assert validate(sql, spec, context, english.replace(literal, "zzz"), names) == "prompt_missing_element"
    sql, spec, context, english, names = sampled(2, seed=6)
    stripped = english
    for word in ("ascending", "descending", "lowest to highest", "highest to lowest", "increasing", "decreasing"):
        stripped = stripped.replace(word, "")
    assert validate(sql, spec, context, stripped, names) == "prompt_missing_element"


def test_every_vocabulary_table_is_valid_ddl():
    import sqlite3

    connection = sqlite3.connect(":memory:")
    for table in vocabulary.load().tables.values():
        statement = create_sql(table.name, list(table.columns))
        connection.execute(statement)
        for dialect in ("postgres", "mysql"):
            sqlglot.transpile(statement, read="sqlite", write=dialect)
