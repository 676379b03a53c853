"""Integrity of the TinySQL schema vocabulary (tinysql/vocabulary.json) and its value pools."""

import datetime as dt
import hashlib
import inspect
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

import faker
import pytest
import sqlglot
from faker import Faker
from sqlglot import exp
from sqlglot.dialects import MySQL, Postgres, SQLite
from sqlglot.tokens import Tokenizer

from tinysql import vocabulary
from tinysql.vocabulary import KINDS, kind_of, scale_of, text_length, value_pool

IDENT = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
TYPE = re.compile(r"^(INTEGER|BIGINT|SMALLINT|REAL|DOUBLE|TEXT|DATE|DATETIME|TIMESTAMP|TIME|BOOLEAN"
                  r"|(?:DECIMAL|NUMERIC)\((\d+),(\d+)\)|(?:VARCHAR|CHAR)\((\d+)\))$")
SYNONYM = re.compile(r"^[a-z0-9](?:[a-z0-9 \-/+]*[a-z0-9])?$")
DIALECTS = ("sqlite", "postgres", "mysql")
# Faker methods whose output depends on today's date (or the clock): never allowed in the vocabulary.
CLOCK_METHODS = {
    "date", "time", "year", "month", "month_name", "day_of_week", "day_of_month", "am_pm", "century",
    "date_time", "date_object", "time_object", "iso8601", "unix_time", "date_of_birth", "past_date",
    "past_datetime", "future_date", "future_datetime", "date_this_century", "date_this_decade",
    "date_this_year", "date_this_month", "date_time_this_century", "date_time_this_decade",
    "date_time_this_year", "date_time_this_month", "credit_card_expire", "time_delta", "time_series",
}
DATE_METHODS = {"date_between": ("start_date", "end_date"), "date_time_between": ("start_date", "end_date")}


@pytest.fixture(scope="module")
def vocab():
    return vocabulary.load()


@pytest.fixture(scope="module")
def raw():
    return json.loads(vocabulary.PATH.read_text(encoding="utf-8"))


def spaced(text):
    return " ".join(text.replace("_", " ").lower().split())


def test_counts(vocab):
    assert len(vocab.tables) >= 250
    assert len(vocab.columns) >= 500
    used = {c for t in vocab.tables.values() for c in t.columns}
    assert used == set(vocab.columns), "every column is used by a table, every table column is defined"


def test_identifiers_are_plain_snake_case_and_not_keywords(vocab):
    keywords = set(Tokenizer.KEYWORDS)
    for dialect in (SQLite, Postgres, MySQL):
        keywords |= set(dialect.Tokenizer.KEYWORDS)
    for name in list(vocab.tables) + list(vocab.columns):
        assert name.isascii() and IDENT.match(name), name
        assert name.upper() not in keywords, name


@pytest.mark.parametrize("dialect", DIALECTS)
def test_identifiers_round_trip_unquoted(vocab, dialect):
    for table in vocab.tables.values():
        sql = f"SELECT {', '.join(table.columns)} FROM {table.name}"
        tree = sqlglot.parse_one(sql, read=dialect)
        assert tree.sql(dialect=dialect) == sql
        source = tree.find(exp.Table)
        assert isinstance(source, exp.Table) and source.name == table.name and not source.this.quoted
        assert len(tree.expressions) == len(table.columns)
        for projection, name in zip(tree.expressions, table.columns):
            assert isinstance(projection, exp.Column) and projection.name == name, (table.name, name)
            assert not projection.this.quoted, (table.name, name)


def test_table_shapes(vocab):
    for table in vocab.tables.values():
        assert 6 <= len(table.columns) <= 20, table.name
        assert table.columns[0] == "id", table.name
        assert len(set(table.columns)) == len(table.columns), table.name
    key = vocab.columns["id"]
    assert (key.sql_type, key.faker, dict(key.args), key.references) == ("INTEGER", "random_int", {"min": 1, "max": 60}, None)


def test_types_allowed_and_mixed(vocab):
    for column in vocab.columns.values():
        match = TYPE.match(column.sql_type)
        assert match, (column.name, column.sql_type)
        if match.group(2):
            precision, scale = int(match.group(2)), int(match.group(3))
            assert 0 <= scale < precision <= 38, column.name
        assert column.kind == kind_of(column.sql_type) and column.kind in KINDS
        assert "BLOB" not in column.sql_type
    kinds = {c.kind for c in vocab.columns.values()}
    assert kinds == set(KINDS)
    tables = list(vocab.tables.values())

    def has(table, *wanted):
        return any(vocab.columns[c].kind in wanted for c in table.columns if c != "id" and not vocab.columns[c].references)

    both = sum(has(t, "int", "real") and has(t, "text") for t in tables)
    dated = sum(has(t, "date", "datetime") for t in tables)
    assert both >= 0.8 * len(tables)
    assert dated >= 0.6 * len(tables)


def test_kind_of():
    assert [kind_of(t) for t in ("INTEGER", "BIGINT", "SMALLINT")] == ["int"] * 3
    assert [kind_of(t) for t in ("DECIMAL(10,2)", "NUMERIC(5,3)", "REAL", "DOUBLE")] == ["real"] * 4
    assert [kind_of(t) for t in ("VARCHAR(50)", "CHAR(2)", "TEXT")] == ["text"] * 3
    assert [kind_of(t) for t in ("DATE", "DATETIME", "TIMESTAMP", "TIME", "BOOLEAN")] == [
        "date", "datetime", "datetime", "time", "bool"]
    assert (text_length("VARCHAR(50)"), text_length("CHAR(3)"), text_length("TEXT")) == (50, 3, None)
    assert (scale_of("DECIMAL(10,2)"), scale_of("NUMERIC(6,3)"), scale_of("REAL"), scale_of("DOUBLE")) == (2, 3, 2, 6)
    with pytest.raises(ValueError):
        kind_of("BLOB")


def plural_matches(stem, table):
    return table in (stem, stem + "s", stem + "es", stem[:-1] + "ies", stem[:-2] + "es")


def test_foreign_keys(vocab):
    tables = vocab.tables
    for column in vocab.columns.values():
        is_fk = column.name.endswith("_id") and column.name != "id"
        assert is_fk == (column.references is not None), column.name
        if is_fk:
            assert column.references in tables, column.name
            assert plural_matches(column.name[:-3], column.references), (column.name, column.references)
            assert column.sql_type == "INTEGER" and column.faker == "random_int"
            assert dict(column.args) == {"min": 1, "max": 60}, column.name
    with_fk = {t.name for t in tables.values() if any(vocab.columns[c].references for c in t.columns)}
    referenced = {vocab.columns[c].references for t in tables.values() for c in t.columns if vocab.columns[c].references}
    assert len(with_fk) >= 0.7 * len(tables)
    assert with_fk | referenced == set(tables), set(tables) - with_fk - referenced
    for table in tables.values():
        assert all(vocab.columns[c].references != table.name for c in table.columns), table.name


def test_synonyms(vocab):
    identifiers = {spaced(n) for n in list(vocab.tables) + list(vocab.columns)}
    for kind, items in (("table", vocab.tables), ("column", vocab.columns)):
        for name, item in items.items():
            assert 2 <= len(item.synonyms) <= 4, (kind, name)
            assert len(set(item.synonyms)) == len(item.synonyms), (kind, name)
            for synonym in item.synonyms:
                assert SYNONYM.match(synonym) and "  " not in synonym, (kind, name, synonym)
                assert spaced(synonym) not in identifiers, (kind, name, synonym)
    by_column_synonym = defaultdict(set)
    for column in vocab.columns.values():
        if column.name != "id":
            for synonym in column.synonyms:
                by_column_synonym[spaced(synonym)].add(column.name)
    shared = {s: names for s, names in by_column_synonym.items() if len(names) > 1}
    assert not shared, shared
    table_synonyms = [spaced(s) for t in vocab.tables.values() for s in t.synonyms]
    assert len(table_synonyms) == len(set(table_synonyms))
    for table in vocab.tables.values():
        own = {spaced(s) for c in table.columns for s in vocab.columns[c].synonyms}
        assert not own & {spaced(s) for s in table.synonyms}, table.name
    # Stronger than required: no table synonym is any column's synonym anywhere.
    assert not set(table_synonyms) & set(by_column_synonym)


def test_faker_recipes_work(vocab, raw):
    fake = Faker("en_US")
    fake.seed_instance(0)
    for column in vocab.columns.values():
        assert column.faker not in CLOCK_METHODS, column.name
        method = getattr(fake, column.faker, None)
        assert callable(method), column.name
        parameters = inspect.signature(method).parameters
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        assert accepts_any or {k for k, _ in column.args} <= set(parameters), column.name
        if column.faker in DATE_METHODS:
            args = dict(column.args)
            for key in DATE_METHODS[column.faker]:
                assert isinstance(args.get(key), dt.date), (column.name, key)
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw["columns"][column.name]["args"][key])
        elif column.kind in ("date", "datetime"):
            pytest.fail(f"{column.name}: dates must come from {sorted(DATE_METHODS)}")
        for _ in range(3):
            value = method(**dict(column.args))
            assert value is not None, column.name
            assert vocabulary.convert(column, value) is not None, column.name


def check_value(column, value):
    kind = column.kind
    if kind == "bool":
        assert type(value) is int and value in (0, 1)
    elif kind == "int":
        assert type(value) is int
        limit = {"SMALLINT": 2**15, "INTEGER": 2**31, "BIGINT": 2**63}[column.sql_type]
        assert -limit <= value < limit
    elif kind == "real":
        assert type(value) is float
        scale = scale_of(column.sql_type)
        assert round(value, scale) == value
        match = re.match(r"(?:DECIMAL|NUMERIC)\((\d+),(\d+)\)", column.sql_type)
        if match:
            assert abs(value) < 10 ** (int(match.group(1)) - int(match.group(2)))
    elif kind == "text":
        assert type(value) is str and value and value == value.strip()
        assert not set(value) & {"'", "%", "_", "\n", "\r", "\t"}
        length = text_length(column.sql_type)
        assert length is None or len(value) <= length
    elif kind == "date":
        dt.date.fromisoformat(value)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
    elif kind == "datetime":
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", value)
        dt.datetime.fromisoformat(value)
    elif kind == "time":
        assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", value)
        dt.time.fromisoformat(value)


def test_pools_match_kinds(vocab):
    pools = vocabulary.pools()
    assert set(pools) == set(vocab.columns)
    varied = full = 0
    for name, pool in pools.items():
        column = vocab.columns[name]
        assert len(pool) == vocabulary.DEFAULT_POOL_SIZE, name
        for value in pool:
            try:
                check_value(column, value)
            except Exception as error:
                raise AssertionError(f"{name} ({column.sql_type}): {value!r}") from error
        assert pool is value_pool(column), "pools are cached"
        if column.faker not in ("random_element", "pybool") and column.kind != "bool":
            varied += 1
            full += len(set(pool)) == len(pool)
        if column.kind == "bool":
            assert set(pool) == {0, 1}, name
    assert full >= 0.8 * varied
    assert len(value_pool(vocab.columns["first_name"], 8)) == 8


POOL_DIGEST = (
    "import hashlib, json; from tinysql import vocabulary; "
    "print(hashlib.sha256(json.dumps(sorted(vocabulary.pools().items())).encode()).hexdigest())"
)


def test_pools_deterministic_across_processes():
    env = dict(os.environ)
    runs = []
    for hash_seed in ("1", "2"):
        runs.append(subprocess.Popen([sys.executable, "-c", POOL_DIGEST], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**env, "PYTHONHASHSEED": hash_seed}))
    digests = []
    for run in runs:
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        digests.append(out.strip())
    local = hashlib.sha256(json.dumps(sorted(vocabulary.pools().items())).encode()).hexdigest()
    assert digests[0] == digests[1] == local


def test_shipped_pools_are_this_vocabularys(vocab):
    """pools.json was made from this vocabulary.json by this module's recipe (else: python -m tinysql.vocabulary)."""
    shipped = vocabulary._shipped()
    assert shipped is not None, "pools.json is missing or stale: run python -m tinysql.vocabulary"
    assert list(shipped) == list(vocab.columns)
    made_with = json.loads(vocabulary.POOLS_PATH.read_text(encoding="utf-8"))["faker"]
    for name in sorted(vocab.columns)[::40]:  # every 40th column: the recipe is slow
        made = vocabulary._pool(vocab.columns[name], vocabulary.DEFAULT_POOL_SIZE)
        if made != shipped[name] and made_with != faker.VERSION:
            pytest.skip(f"pools.json was made with Faker {made_with}, this is {faker.VERSION}")
        assert made == shipped[name], name
        assert [type(v) for v in made] == [type(v) for v in shipped[name]], name


def test_a_stale_pools_file_falls_back_to_the_recipe(tmp_path, monkeypatch, vocab):
    stale = json.loads(vocabulary.POOLS_PATH.read_text(encoding="utf-8"))
    stale["vocabulary"] = "0" * 64
    stale["pools"]["first_name"] = ["Nobody"] * vocabulary.DEFAULT_POOL_SIZE
    monkeypatch.setattr(vocabulary, "POOLS_PATH", tmp_path / "pools.json")
    vocabulary.POOLS_PATH.write_text(json.dumps(stale), encoding="utf-8")
    vocabulary._shipped.cache_clear()
    try:
        assert vocabulary._shipped() is None
        assert "Nobody" not in value_pool(vocab.columns["first_name"])
    finally:
        vocabulary._shipped.cache_clear()


def test_seed_is_stable():
    assert vocabulary.seed_for("first_name") == vocabulary.seed_for("first_name")
    assert vocabulary.seed_for("first_name") != vocabulary.seed_for("last_name")
    expected = int.from_bytes(hashlib.sha256(b"tinysql-vocabulary:first_name").digest()[:8], "big") >> 1
    assert vocabulary.seed_for("first_name") == expected
