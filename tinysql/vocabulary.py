"""The schema vocabulary TinySQL draws its tables and columns from, and the values that fill them.

This module owns ``vocabulary.json`` (next to it): some 350 tables and 1,300 column names across many
domains, each column with one SQL type, English synonyms, an optional foreign-key target and the Faker
method (plus keyword arguments) that makes realistic values for it. ``load()`` reads that file once;
``value_pool()`` turns a column's Faker recipe into a fixed tuple of SQLite-ready Python values,
identical in every process and on every day (seeded from the column name with hashlib; Faker methods
whose output depends on today's date are never used, and date bounds are absolute).

The pools are data: ``pools.json`` (next to it) holds every column's pool as this module's Faker recipe
made it, with the sha256 of the ``vocabulary.json`` it was made from; ``value_pool`` reads it (one JSON
load, instead of about 2 s of CPU in Faker calls per process) while that hash matches, and otherwise runs the
recipe. ``python -m tinysql.vocabulary`` rewrites it after the vocabulary or the recipe changes (a test
checks both).

In the JSON, an ``args`` value that is a ``YYYY-MM-DD`` string under a date-bound key
(``start_date``, ``end_date``, ...) stands for a ``datetime.date``, and a list stands for a tuple;
``Column.args`` holds the converted, ready-to-call keyword arguments as sorted ``(key, value)`` pairs.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

KINDS = ("int", "real", "text", "date", "datetime", "time", "bool")

PATH = Path(__file__).with_name("vocabulary.json")
POOLS_PATH = Path(__file__).with_name("pools.json")
DATE_ARGS = frozenset({"start_date", "end_date", "date_start", "date_end", "start_datetime", "end_datetime"})
DEFAULT_POOL_SIZE = 48
DEFAULT_SCALE = {"REAL": 2, "DOUBLE": 6}
_TYPE = re.compile(r"^([A-Z]+)(?:\((\d+)(?:,(\d+))?\))?$")
_KIND_BY_BASE = {
    "INTEGER": "int", "BIGINT": "int", "SMALLINT": "int",
    "DECIMAL": "real", "NUMERIC": "real", "REAL": "real", "DOUBLE": "real",
    "VARCHAR": "text", "CHAR": "text", "TEXT": "text",
    "DATE": "date", "DATETIME": "datetime", "TIMESTAMP": "datetime", "TIME": "time",
    "BOOLEAN": "bool",
}


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    kind: str
    synonyms: tuple[str, ...]
    references: str | None
    faker: str
    args: tuple  # sorted (keyword, value) pairs, ready for getattr(Faker(), faker)(**dict(args))


@dataclass(frozen=True)
class Table:
    name: str
    synonyms: tuple[str, ...]
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Vocabulary:
    columns: dict[str, Column]
    tables: dict[str, Table]


def _parse_type(sql_type: str) -> tuple[str, int | None, int | None]:
    match = _TYPE.match(sql_type.replace(" ", "").upper())
    if not match or match.group(1) not in _KIND_BY_BASE:
        raise ValueError(f"unsupported SQL type: {sql_type!r}")
    base, first, second = match.groups()
    return base, (int(first) if first else None), (int(second) if second else None)


def kind_of(sql_type: str) -> str:
    """The value kind (one of KINDS) of an SQL type such as 'VARCHAR(50)' or 'DECIMAL(10,2)'."""
    return _KIND_BY_BASE[_parse_type(sql_type)[0]]


def text_length(sql_type: str) -> int | None:
    """The declared length of a VARCHAR(n)/CHAR(n) type; None for TEXT and non-text types."""
    base, length, _ = _parse_type(sql_type)
    return length if base in ("VARCHAR", "CHAR") else None


def scale_of(sql_type: str) -> int | None:
    """Decimal places kept for a real-kind type: s of DECIMAL/NUMERIC(p,s), 2 for REAL, 6 for DOUBLE."""
    base, _, scale = _parse_type(sql_type)
    if base in ("DECIMAL", "NUMERIC"):
        return scale or 0
    return DEFAULT_SCALE.get(base)


def _convert_arg(key: str, value):
    if isinstance(value, list):
        return tuple(_convert_arg("", v) for v in value)
    if key in DATE_ARGS and isinstance(value, str):
        return _dt.date.fromisoformat(value)
    return value


@functools.cache
def load() -> Vocabulary:
    """The vocabulary, read once from vocabulary.json."""
    raw = json.loads(PATH.read_text(encoding="utf-8"))
    columns = {
        name: Column(
            name=name,
            sql_type=spec["type"],
            kind=kind_of(spec["type"]),
            synonyms=tuple(spec["synonyms"]),
            references=spec.get("references"),
            faker=spec["faker"],
            args=tuple(sorted((k, _convert_arg(k, v)) for k, v in spec.get("args", {}).items())),
        )
        for name, spec in raw["columns"].items()
    }
    tables = {
        name: Table(name=name, synonyms=tuple(spec["synonyms"]), columns=tuple(spec["columns"]))
        for name, spec in raw["tables"].items()
    }
    return Vocabulary(columns=columns, tables=tables)


def seed_for(name: str) -> int:
    """A stable 63-bit seed for a column name (hashlib, never Python's salted hash())."""
    return int.from_bytes(hashlib.sha256(f"tinysql-vocabulary:{name}".encode()).digest()[:8], "big") >> 1


@functools.cache
def _faker():
    from faker import Faker  # only to make pools.json (or when it is stale): a heavy import

    return Faker("en_US")


def _clean_text(value, length: int | None) -> str:
    text = " ".join(str(value).replace("'", "").replace("%", "").replace("_", " ").split())
    if length is not None:
        text = text[:length].strip()
    return text


def convert(column: Column, value):
    """One raw Faker value as a plain SQLite-ready Python value of the column's kind (None if unusable)."""
    kind = column.kind
    if value is None:
        return None
    if kind == "bool":
        return int(bool(value))
    if kind == "int":
        return int(value)
    if kind == "real":
        return round(float(value), scale_of(column.sql_type))
    if kind == "text":
        return _clean_text(value, text_length(column.sql_type)) or None
    if kind == "date":
        if isinstance(value, (_dt.date, _dt.datetime)):
            return value.strftime("%Y-%m-%d")
        return _dt.date.fromisoformat(str(value)[:10]).isoformat()
    if kind == "datetime":
        if isinstance(value, _dt.datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, _dt.date):
            return value.strftime("%Y-%m-%d 00:00:00")
        return _dt.datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S")
    if kind == "time":
        if isinstance(value, (_dt.datetime, _dt.time)):
            return value.strftime("%H:%M:%S")
        return _dt.time.fromisoformat(str(value)).strftime("%H:%M:%S")
    raise ValueError(f"unknown kind {kind!r}")


def value_pool(column: Column, size: int = DEFAULT_POOL_SIZE) -> tuple:
    """``size`` values for ``column``, distinct where the recipe allows, the same in every process and run.

    A Faker("en_US") seeded from the column name draws up to 3 x size values; distinct converted values are
    kept in draw order, and when the recipe has fewer than ``size`` distinct outputs (booleans, short
    categorical lists) the remaining draws, repeats included, fill the tuple up to ``size``. Read from
    pools.json for the default size (made by this recipe), else made and cached per (column, size).
    """
    shipped = _shipped() if size == DEFAULT_POOL_SIZE else None
    if shipped is not None and column.name in shipped:
        return shipped[column.name]
    return _pool(column, size)


def vocabulary_digest() -> str:
    """The sha256 of vocabulary.json's bytes: the version the shipped pools were made from."""
    return hashlib.sha256(PATH.read_bytes()).hexdigest()


@functools.cache
def _shipped() -> dict[str, tuple] | None:
    """The pools of pools.json, or None when it is missing or was made from another vocabulary.json."""
    try:
        raw = json.loads(POOLS_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if raw["vocabulary"] != vocabulary_digest() or raw["size"] != DEFAULT_POOL_SIZE:
        return None
    return {name: tuple(values) for name, values in raw["pools"].items()}


@functools.cache
def _pool(column: Column, size: int) -> tuple:
    fake = _faker()
    fake.seed_instance(seed_for(column.name))
    method = getattr(fake, column.faker)
    kwargs = dict(column.args)
    distinct: dict = {}
    repeats: list = []
    for _ in range(3 * size):
        value = convert(column, method(**kwargs))
        if value is None:
            continue
        if value in distinct:
            repeats.append(value)
        else:
            distinct[value] = None
            if len(distinct) == size:
                break
    values = list(distinct) + repeats[: size - len(distinct)]
    if not values:
        raise ValueError(f"column {column.name!r}: Faker recipe produced no usable values")
    while len(values) < size:
        values.extend(values[: size - len(values)])
    return tuple(values)


def pools(size: int = DEFAULT_POOL_SIZE) -> dict[str, tuple]:
    """Every column's value pool, keyed by column name (build once before forking workers)."""
    return {name: value_pool(column, size) for name, column in load().columns.items()}


def write_pools(path: Path = POOLS_PATH) -> None:
    """Make every column's pool with Faker and write them, one column per line, to `path` (pools.json)."""
    import faker

    pools = {name: _pool(column, DEFAULT_POOL_SIZE) for name, column in load().columns.items()}
    head = {"vocabulary": vocabulary_digest(), "size": DEFAULT_POOL_SIZE, "faker": faker.VERSION}
    lines = [f"{json.dumps(name)}: {json.dumps(list(pool), ensure_ascii=False)}" for name, pool in pools.items()]
    text = json.dumps(head)[:-1] + ', "pools": {\n' + ",\n".join(lines) + "\n}}\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_pools()
    print(f"wrote {POOLS_PATH}")
