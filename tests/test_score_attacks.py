"""Hostile predictions (issue 12): the scorer refuses or cuts them off quickly, never touches the file
system, never crashes, and the next item still scores right."""

from __future__ import annotations

import json
import time

import pytest

from tinysql import execution as E
from tinysql import score as S
from tinysql.score import score_one

SCHEMA = "CREATE TABLE employees ( id INTEGER, name VARCHAR(50), age INTEGER, salary REAL )"
GOLD = "SELECT name, age FROM employees WHERE age > 30"
BUDGET_S = 5.0  # a guard against hangs, not a benchmark: each attack takes about a second at most

COUNT_TO = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < {n}) SELECT x FROM c"
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
REFUSED = "not authorized"
ATTACKS = {  # name: (prediction, part of the reason or None); {tmp}: the test's own folder, which must stay empty
    "attach-file": ("ATTACH DATABASE '{tmp}/x.db' AS p", REFUSED),
    "attach-uri-rwc": ("ATTACH 'file:{tmp}/z.db?mode=rwc' AS q", REFUSED),
    "attach-relative": ("ATTACH 'rel.db' AS r", REFUSED),
    "vacuum-into": ("VACUUM INTO '{tmp}/y.db'", "authoriz"),
    "printf-huge": ("SELECT printf('%.*c', 2000000000, 'x')", REFUSED),
    "sum-20000-terms": ("SELECT " + " + ".join(["1"] * 20_000), "too long"),
    "sum-900-terms": ("SELECT " + "+".join(["1"] * 900), "nested too deeply"),  # under the length limit
    "randomblob-group-concat": (
        "SELECT group_concat(hex(randomblob(100000))) FROM (" + COUNT_TO.format(n=100_000) + ")", "too big"),
    "nested-parentheses": ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "too long"),
    "nested-parentheses-short": ("SELECT " + "(" * 1900 + "1" + ")" * 1900, "nested too deeply"),
    "nested-subqueries": ("SELECT * FROM " + "(SELECT * FROM " * 200 + "employees" + ")" * 200, "nested too deeply"),
    "pragma-writable-schema": ("PRAGMA writable_schema=1", REFUSED),
    "pragma-query-only-off": ("PRAGMA query_only = OFF", REFUSED),
    "pragma-function": ("SELECT * FROM pragma_table_info('employees')", REFUSED),
    "load-extension": ("SELECT load_extension('x')", REFUSED),
    "fts3-tokenizer": ("SELECT fts3_tokenizer('simple')", REFUSED),
    "delete": ("DELETE FROM employees", "readonly"),
    "create-table": ("CREATE TABLE z(a)", REFUSED),
    "insert": ("INSERT INTO employees (id) VALUES (1)", REFUSED),
    "endless-recursive-cte": (ENDLESS + "SELECT x FROM c", "more than 50000 rows"),
    "endless-count": (ENDLESS + "SELECT COUNT(*) FROM c", "interrupted"),
    "huge-result": ("SELECT a.name, b.name, c.name, d.name, e.name FROM employees a, employees b, employees c, "
                    "employees d, employees e", "more than 50000 rows"),
    "wide-huge-result": ("SELECT a.name || hex(zeroblob(2400)) FROM employees a, employees b, employees c, "
                         "employees d", "bytes"),
    "long-value": ("SELECT hex(zeroblob(1000000))", "too big"),
    "memory-sort": ("SELECT x || zeroblob(4000) AS y FROM (" + COUNT_TO.format(n=10_000_000) + ") ORDER BY y", None),
    "memory-distinct": ("SELECT DISTINCT x || zeroblob(4000) FROM (" + COUNT_TO.format(n=10_000_000) + ") "
                        "LIMIT 1 OFFSET 9999999", None),
    "trim-quadratic": ("SELECT trim(hex(zeroblob(2490)) || x, replace(hex(zeroblob(200)), '0', 'a') || '0') FROM ("
                       + COUNT_TO.format(n=10_000_000) + ")", None),
    "too-long": ("SELECT name FROM employees WHERE " + " OR ".join(["age = 1"] * 20_000), "too long"),
}


def _assert_still_scores_right():
    result = score_one(GOLD, GOLD.lower(), SCHEMA)
    assert result["normalized"] is True and result["execution"] is True and result["error"] is None, result


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_refused_quickly_without_side_effects(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative path would land here
    prediction, reason = ATTACKS[name]
    start = time.monotonic()
    result = score_one(GOLD, prediction.format(tmp=tmp_path), SCHEMA)
    elapsed = time.monotonic() - start
    assert result["exact"] is False and result["normalized"] is False and result["execution"] is False, result
    assert isinstance(result["error"], str) and result["error"].startswith("prediction: "), result
    assert reason is None or reason in result["error"], result["error"]
    assert elapsed < BUDGET_S, (elapsed, result["error"])
    assert list(tmp_path.iterdir()) == []
    _assert_still_scores_right()


def test_hostile_gold_is_refused_too():
    start = time.monotonic()
    result = score_one("SELECT printf('%.*c', 2000000000, 'x')", GOLD, SCHEMA)
    assert result["execution"] is False and result["error"].startswith("gold: "), result
    assert time.monotonic() - start < BUDGET_S


def test_sandbox_allows_what_queries_need():
    for gold in (
        "SELECT COUNT(*) FROM (SELECT name FROM employees WHERE age > 30) AS s",
        "WITH old AS (SELECT * FROM employees WHERE age > 30) SELECT COUNT(*) FROM old",
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5) SELECT SUM(x) FROM n",
        "SELECT name, RANK() OVER (ORDER BY salary DESC) AS r FROM employees ORDER BY r, name",
        "SELECT UPPER(name), ROUND(AVG(salary), 2), COALESCE(MAX(age), 0) FROM employees GROUP BY name",
        "SELECT name FROM employees WHERE EXISTS (SELECT 1 FROM employees AS e WHERE e.age > employees.age)",
    ):
        result = score_one(gold, gold, SCHEMA)
        assert result["execution"] is True and result["error"] is None, (gold, result)


def test_sandboxed_connection_refuses_what_setup_did():
    conn = E.record_databases(GOLD, [], E.parse_tables(SCHEMA, "sqlite"), "sqlite", 0)[0]
    for sql in ("PRAGMA query_only = OFF", "PRAGMA case_sensitive_like = ON", "ATTACH ':memory:' AS m",
                "BEGIN", "CREATE TEMP TABLE t(a)", "DROP TABLE employees", "UPDATE employees SET age = 1",
                "SELECT * FROM sqlite_master"):
        with pytest.raises(Exception):
            conn.execute(sql).fetchall()
    assert conn.execute("SELECT COUNT(*) FROM employees").fetchone()[0] > 0


def test_cli_deeply_nested_predictions_line_is_one_line_error(cli, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    corpus = tmp_path / "corpus"
    (corpus / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"id": "r1", "sql_statement": GOLD, "create_statement": SCHEMA}]),
                   corpus / "data" / "test-00000-of-00001.parquet")
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"id": "r1", "prediction": "SELECT 1"}\n' + "[" * 100_000 + "\n")
    start = time.monotonic()
    status, out, err = cli(S.main, "--corpus", corpus, "--predictions", predictions)
    assert time.monotonic() - start < BUDGET_S
    assert status == 2 and out == "" and "Traceback" not in err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinysql-score: error: ") and f"{predictions}:2:" in lines[0], err


def test_score_survives_a_file_of_attacks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = [name for name, (_, reason) in ATTACKS.items() if reason not in (None, "interrupted")]  # the quick ones
    records = [{"id": name, "sql_statement": GOLD, "create_statement": SCHEMA} for name in [*names, "good"]]
    predictions = {name: ATTACKS[name][0].format(tmp=tmp_path) for name in names} | {"good": GOLD}
    start = time.monotonic()
    out = S.score(records, predictions)
    assert time.monotonic() - start < BUDGET_S
    assert out["execution"] == pytest.approx(1 / len(records))
    assert all(item["error"] for item in out["items"][:-1]) and out["items"][-1]["error"] is None
    assert list(tmp_path.iterdir()) == []
    json.dumps(out)
