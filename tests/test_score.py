"""Tests for tinysql.score (the TinySQL prediction scorer and its CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tinysql import execution as E
from tinysql import score as S
from tinysql.normalize import canonical, parse_query
from tinysql.score import score, score_one

SCHEMA = (
    "CREATE TABLE employees ( id INTEGER, name VARCHAR(50), salary DECIMAL(10,2), dept_id INTEGER, "
    "hire_date DATE, age SMALLINT, rating REAL, active BOOLEAN ); "
    "CREATE TABLE departments ( id INTEGER, dept_name VARCHAR(30), budget BIGINT, city TEXT ); "
    "CREATE TABLE projects ( id INTEGER, title VARCHAR(40), dept_id INTEGER, cost NUMERIC(8,2), started TIMESTAMP )"
)
SEEDS = (0, 1, 2)

GOLD_ORDER = "SELECT name, salary FROM employees WHERE age > 30 ORDER BY salary DESC, name ASC"
GOLD_AGG = "SELECT MIN(salary) AS MIN_salary, SUM(age) AS SUM_age FROM employees WHERE dept_id = 3"
GOLD_FILTER = "SELECT name, age FROM employees WHERE age >= 30 AND salary < 600"
GOLD_EQ = "SELECT name FROM employees WHERE dept_id = 2 AND age > 25"
GOLD_OR = "SELECT name FROM employees WHERE dept_id = 2 OR age > 50"
GOLD_LIKE = "SELECT name FROM employees WHERE name LIKE '%an%' ORDER BY name"
GOLD_JOIN = (
    "SELECT employees.name, departments.dept_name FROM employees JOIN departments "
    "ON employees.dept_id = departments.id WHERE departments.budget > 300 ORDER BY employees.name"
)
GOLD_JOIN3 = (
    "SELECT d.dept_name, p.title, e.name FROM departments AS d JOIN projects AS p ON p.dept_id = d.id "
    "JOIN employees AS e ON e.dept_id = d.id WHERE p.cost > 200 ORDER BY d.dept_name, p.title DESC, e.name"
)
GOLD_GROUP = (
    "SELECT dept_id, COUNT(*) AS COUNT_all, AVG(salary) AS AVG_salary FROM employees "
    "GROUP BY dept_id HAVING COUNT(*) > 1 ORDER BY dept_id"
)


def run(gold, pred, seed=0, schema=SCHEMA, dialect="sqlite"):
    return score_one(gold, pred, schema, dialect=dialect, seed=seed)


def assert_all_right(result):
    assert result["normalized"] is True, result
    assert result["execution"] is True, result
    assert result["clause_credit"] == 1.0, result
    assert all(result["clauses"].values()), result
    assert result["error"] is None, result


# --- exact ---


def test_result_shape():
    r = run(GOLD_ORDER, GOLD_ORDER)
    assert set(r) == {"exact", "normalized", "execution", "clause_credit", "clauses", "error"}
    assert r["exact"] is True
    assert_all_right(r)
    assert isinstance(r["clause_credit"], float)
    assert set(r["clauses"]) >= {"select", "from", "where", "order_by"}


def test_exact_strips_whitespace_and_one_trailing_semicolon_only():
    assert run(GOLD_ORDER, "  " + GOLD_ORDER + " ;\n")["exact"] is True
    assert run(GOLD_ORDER + ";", GOLD_ORDER)["exact"] is True
    assert run(GOLD_ORDER, GOLD_ORDER.lower())["exact"] is False
    assert run(GOLD_ORDER, GOLD_ORDER.replace(", ", ","))["exact"] is False


# --- positives: differences that must not matter ---

EQUIVALENT_NORMALIZED = {
    "case-whitespace-implied-asc": (
        GOLD_ORDER,
        "select NAME,SALARY\n  from Employees where AGE>30 order by Salary desc, name",
    ),
    "alias-name-optional-as-operand-side": (
        "SELECT SUM(salary) AS SUM_salary FROM employees WHERE age > 30",
        "SELECT SUM(salary) total FROM employees WHERE 30 < age",
    ),
    "order-by-alias-resolved": (
        "SELECT dept_id, SUM(salary) AS SUM_salary FROM employees GROUP BY dept_id ORDER BY SUM_salary DESC",
        "SELECT dept_id, SUM(salary) AS total FROM employees GROUP BY dept_id ORDER BY total DESC",
    ),
    "order-by-alias-vs-expression": (
        "SELECT dept_id, SUM(salary) AS SUM_salary FROM employees GROUP BY dept_id ORDER BY SUM_salary DESC",
        "SELECT dept_id, SUM(salary) FROM employees GROUP BY dept_id ORDER BY SUM(salary) DESC",
    ),
    "having-alias-resolved": (
        "SELECT dept_id, COUNT(*) AS c FROM employees GROUP BY dept_id HAVING c > 1",
        "SELECT dept_id, COUNT(*) AS n FROM employees GROUP BY dept_id HAVING COUNT(*) > 1",
    ),
    "commutative-and-eq-parentheses": (
        "SELECT name FROM employees WHERE age > 30 AND salary < 500 AND dept_id = 2",
        "SELECT name FROM employees WHERE (2 = dept_id AND (salary < 500)) AND age > 30",
    ),
    "commutative-or": (
        "SELECT name FROM employees WHERE age > 30 OR (salary < 500 AND dept_id = 2)",
        "SELECT name FROM employees WHERE (dept_id = 2 AND salary < 500) OR age > 30",
    ),
    "table-aliases-vs-names-inner-join": (
        "SELECT e.name, d.city FROM employees AS e JOIN departments AS d ON e.dept_id = d.id",
        "SELECT employees.name, departments.city FROM employees INNER JOIN departments "
        "ON departments.id = employees.dept_id",
    ),
    "different-table-aliases-unqualified-column": (
        "SELECT e.name, d.city FROM employees AS e JOIN departments AS d ON e.dept_id = d.id",
        "SELECT emp.name, city FROM employees emp JOIN departments dep ON emp.dept_id = dep.id",
    ),
    "cte-name": (
        "WITH rich AS (SELECT name FROM employees WHERE salary > 400) SELECT name FROM rich",
        "with r as (select name from employees where salary > 400) select r.name from r",
    ),
    "in-list-order": (
        "SELECT name FROM employees WHERE dept_id IN (1, 2, 3)",
        "SELECT name FROM employees WHERE dept_id IN (3, 1, 2)",
    ),
    "union-order-by-output-column": (
        "SELECT name FROM employees UNION SELECT dept_name FROM departments ORDER BY name",
        "SELECT name AS x FROM employees UNION SELECT dept_name FROM departments ORDER BY 1",
    ),
}


@pytest.mark.parametrize("gold,pred", EQUIVALENT_NORMALIZED.values(), ids=EQUIVALENT_NORMALIZED)
def test_equivalent_writings_score_normalized_and_execution(gold, pred):
    for seed in SEEDS:
        r = run(gold, pred, seed=seed)
        assert r["exact"] is False
        assert_all_right(r)


EQUIVALENT_EXECUTION_ONLY = {
    "between-vs-range": (
        "SELECT name FROM employees WHERE age >= 3 AND age <= 5",
        "SELECT name FROM employees WHERE age BETWEEN 3 AND 5",
    ),
    "range-vs-between-ordered": (
        "SELECT name, age FROM employees WHERE age BETWEEN 25 AND 40 ORDER BY age",
        "SELECT name, age FROM employees WHERE age >= 25 AND age <= 40 ORDER BY age ASC",
    ),
    "in-vs-or": (
        "SELECT name FROM employees WHERE dept_id IN (1, 2, 3)",
        "SELECT name FROM employees WHERE dept_id = 1 OR dept_id = 2 OR dept_id = 3",
    ),
    "distinct-vs-group-by": (
        "SELECT DISTINCT dept_id FROM employees",
        "SELECT dept_id FROM employees GROUP BY dept_id",
    ),
    "having-gt1-vs-ge2": (
        GOLD_GROUP,
        "SELECT dept_id, COUNT(id), AVG(salary) FROM employees GROUP BY 1 HAVING COUNT(*) >= 2 ORDER BY 1",
    ),
    "not-eq-vs-neq": ("SELECT name FROM employees WHERE NOT (age = 30)", "SELECT name FROM employees WHERE age <> 30"),
    "subquery-vs-cte": (
        "SELECT name FROM employees WHERE salary > (SELECT AVG(salary) FROM employees)",
        "WITH a AS (SELECT AVG(salary) AS s FROM employees) SELECT name FROM employees, a WHERE salary > a.s",
    ),
}


@pytest.mark.parametrize("gold,pred", EQUIVALENT_EXECUTION_ONLY.values(), ids=EQUIVALENT_EXECUTION_ONLY)
def test_equivalent_but_different_queries_score_on_execution_only(gold, pred):
    for seed in SEEDS:
        r = run(gold, pred, seed=seed)
        assert r["exact"] is False
        assert r["normalized"] is False
        assert r["execution"] is True, (seed, r)
        assert r["error"] is None


# --- hard negatives: must not score as correct on any metric ---

HARD_NEGATIVES = {
    "flipped-desc": (GOLD_ORDER, GOLD_ORDER.replace("salary DESC", "salary ASC"), "order_by"),
    "desc-to-implied-asc": (GOLD_ORDER, GOLD_ORDER.replace("salary DESC", "salary"), "order_by"),
    "flipped-asc": (GOLD_LIKE, GOLD_LIKE.replace("ORDER BY name", "ORDER BY name DESC"), "order_by"),
    "dropped-order-by": (GOLD_ORDER, GOLD_ORDER.split(" ORDER BY")[0], "order_by"),
    "reordered-columns": (GOLD_ORDER, GOLD_ORDER.replace("SELECT name, salary", "SELECT salary, name"), "select"),
    "missing-column": (GOLD_ORDER, GOLD_ORDER.replace("SELECT name, salary", "SELECT name"), "select"),
    "extra-column": (GOLD_ORDER, GOLD_ORDER.replace("SELECT name, salary", "SELECT name, salary, age"), "select"),
    "min-vs-max": (GOLD_AGG, GOLD_AGG.replace("MIN(salary)", "MAX(salary)"), "select"),
    "sum-vs-avg": (GOLD_AGG, GOLD_AGG.replace("SUM(age)", "AVG(age)"), "select"),
    "wrong-literal-eq": (GOLD_EQ, GOLD_EQ.replace("dept_id = 2", "dept_id = 3"), "where"),
    "wrong-literal-range": (GOLD_FILTER, GOLD_FILTER.replace("age >= 30", "age >= 31"), "where"),
    "wrong-literal-like": (GOLD_LIKE, GOLD_LIKE.replace("'%an%'", "'%en%'"), "where"),
    "ge-vs-gt": (GOLD_FILTER, GOLD_FILTER.replace("age >= 30", "age > 30"), "where"),
    "lt-vs-le": (GOLD_FILTER, GOLD_FILTER.replace("salary < 600", "salary <= 600"), "where"),
    "eq-vs-neq": (GOLD_EQ, GOLD_EQ.replace("dept_id = 2", "dept_id != 2"), "where"),
    "and-vs-or": (GOLD_EQ, GOLD_EQ.replace(" AND ", " OR "), "where"),
    "or-vs-and": (GOLD_OR, GOLD_OR.replace(" OR ", " AND "), "where"),
    "dropped-condition": (GOLD_EQ, "SELECT name FROM employees WHERE dept_id = 2", "where"),
    "wrong-limit": (
        "SELECT name FROM employees ORDER BY salary DESC LIMIT 3",
        "SELECT name FROM employees ORDER BY salary DESC LIMIT 4",
        "limit",
    ),
    "dropped-distinct": ("SELECT DISTINCT dept_id FROM employees", "SELECT dept_id FROM employees", "distinct"),
}


@pytest.mark.parametrize("gold,pred,clause", HARD_NEGATIVES.values(), ids=HARD_NEGATIVES)
def test_hard_negatives_fail_every_metric(gold, pred, clause):
    for seed in SEEDS:
        r = run(gold, pred, seed=seed)
        assert r["exact"] is False
        assert r["normalized"] is False, r
        assert r["execution"] is False, (seed, r)
        assert r["clause_credit"] < 1.0
        assert r["clauses"][clause] is False, r["clauses"]
        assert r["error"] is None  # a wrong answer is not an error


def test_clause_credit_counts_matching_clauses():
    # gold clauses: select, from, where, order_by -> one wrong = 3/4
    r = run(GOLD_ORDER, GOLD_ORDER.replace("salary DESC", "salary ASC"))
    assert r["clause_credit"] == pytest.approx(3 / 4)
    assert r["clauses"] == {"select": True, "from": True, "where": True, "order_by": False}
    # dropping ORDER BY loses that clause
    r = run(GOLD_ORDER, GOLD_ORDER.split(" ORDER BY")[0])
    assert r["clause_credit"] == pytest.approx(3 / 4)
    # an extra clause the gold does not have counts as wrong
    r = run(GOLD_FILTER, GOLD_FILTER + " ORDER BY name")
    assert r["clauses"]["order_by"] is False
    assert r["clause_credit"] == pytest.approx(3 / 4)
    # WHERE conditions compare as a set (order of ANDed conditions does not matter)
    r = run(GOLD_FILTER, "SELECT name, age FROM employees WHERE salary < 600 AND age >= 30")
    assert r["clause_credit"] == 1.0


def test_clause_credit_on_group_by_having():
    wrong_having = GOLD_GROUP.replace("COUNT(*) > 1", "COUNT(*) > 2")
    r = run(GOLD_GROUP, wrong_having)
    assert r["clauses"]["having"] is False
    assert r["clauses"]["group_by"] is True
    assert r["clause_credit"] == pytest.approx(4 / 5)
    for seed in SEEDS:
        assert run(GOLD_GROUP, wrong_having, seed=seed)["execution"] is False
    no_group = "SELECT dept_id, COUNT(*), AVG(salary) FROM employees ORDER BY dept_id"
    r = run(GOLD_GROUP, no_group)
    assert r["clauses"]["group_by"] is False and r["clauses"]["having"] is False
    assert r["execution"] is False


def test_prediction_without_order_by_fails_even_if_rows_match():
    gold = "SELECT COUNT(*) AS n FROM employees ORDER BY 1"
    r = run(gold, "SELECT COUNT(*) FROM employees")
    assert r["execution"] is False
    assert run(gold, "SELECT COUNT(*) FROM employees ORDER BY 1 DESC")["execution"] is True


def test_unordered_gold_accepts_any_row_order():
    gold = "SELECT name, age FROM employees WHERE age > 30"
    r = run(gold, "SELECT name, age FROM employees WHERE age > 30 ORDER BY name DESC")
    assert r["execution"] is True
    assert r["normalized"] is False


# --- joins, grouping, subqueries, set operations ---


def test_multi_table_join_with_qualified_columns():
    aliased = (
        "SELECT e.name, d.dept_name FROM employees e INNER JOIN departments d "
        "ON d.id = e.dept_id WHERE d.budget > 300 ORDER BY e.name"
    )
    assert_all_right(run(GOLD_JOIN, aliased))
    wrong_key = GOLD_JOIN.replace("employees.dept_id = departments.id", "employees.id = departments.id")
    swapped_table = GOLD_JOIN.replace("departments.budget > 300", "departments.id > 300")
    for seed in SEEDS:
        assert run(GOLD_JOIN, aliased, seed=seed)["execution"] is True
        r = run(GOLD_JOIN, wrong_key, seed=seed)
        assert r["execution"] is False and r["normalized"] is False and r["clauses"]["join"] is False
        assert run(GOLD_JOIN, swapped_table, seed=seed)["execution"] is False


def test_join_order_self_join_and_count_column():
    gold = "SELECT e.name, d.city FROM employees AS e JOIN departments AS d ON e.dept_id = d.id WHERE d.budget > 300"
    swapped = "SELECT e.name, d.city FROM departments AS d JOIN employees AS e ON e.dept_id = d.id WHERE d.budget > 300"
    r = run(gold, swapped)
    assert r["execution"] is True and r["clause_credit"] == 1.0  # same clauses, tables listed differently
    self_join = "SELECT a.name, b.name FROM employees a JOIN employees b ON a.dept_id = b.dept_id AND a.id < b.id"
    renamed = "SELECT x.name, y.name FROM employees AS x INNER JOIN employees AS y ON y.dept_id = x.dept_id AND x.id < y.id"
    assert_all_right(run(self_join, renamed))
    r = run(self_join, self_join.replace("a.id < b.id", "a.id > b.id"))
    assert r["normalized"] is False and r["execution"] is False and r["clauses"]["join"] is False
    # COUNT(col) is not COUNT(*) when the column has NULLs, in either direction
    for seed in SEEDS:
        assert run("SELECT COUNT(rating) AS c FROM employees", "SELECT COUNT(*) FROM employees", seed)["execution"] is False
        assert run("SELECT COUNT(*) AS c FROM employees", "SELECT COUNT(rating) FROM employees", seed)["execution"] is False
        r = run("SELECT name FROM employees WHERE rating IS NULL", "SELECT name FROM employees WHERE rating IS NOT NULL",
                seed)
        assert r["execution"] is False


def test_three_table_join_directions():
    reordered = (
        "SELECT dep.dept_name, pr.title, em.name FROM departments dep JOIN projects pr ON dep.id = pr.dept_id "
        "JOIN employees em ON dep.id = em.dept_id WHERE pr.cost > 200 ORDER BY dep.dept_name ASC, pr.title DESC, em.name"
    )
    flipped = GOLD_JOIN3.replace("p.title DESC", "p.title")
    left = GOLD_JOIN3.replace("JOIN employees", "LEFT JOIN employees")
    for seed in SEEDS:
        assert_all_right(run(GOLD_JOIN3, reordered, seed=seed))
        assert run(GOLD_JOIN3, flipped, seed=seed)["execution"] is False
    r = run(GOLD_JOIN3, left)
    assert r["normalized"] is False and r["clauses"]["join"] is False
    assert any(run(GOLD_JOIN3, left, seed=s)["execution"] is False for s in SEEDS)


def test_group_by_having_with_join():
    gold = (
        "SELECT departments.city, SUM(projects.cost) AS SUM_cost FROM departments JOIN projects "
        "ON projects.dept_id = departments.id GROUP BY departments.city HAVING COUNT(*) > 1 ORDER BY SUM_cost DESC"
    )
    same = (
        "SELECT d.city, SUM(p.cost) AS total FROM departments AS d JOIN projects AS p ON d.id = p.dept_id "
        "GROUP BY d.city HAVING COUNT(*) > 1 ORDER BY total DESC"
    )
    avg = gold.replace("SUM(projects.cost) AS SUM_cost", "AVG(projects.cost) AS SUM_cost")
    for seed in SEEDS:
        assert_all_right(run(gold, same, seed=seed))
        assert run(gold, avg, seed=seed)["execution"] is False
        assert run(gold, gold.replace("DESC", "ASC"), seed=seed)["execution"] is False


def test_subquery_cte_and_set_operations():
    sub = "SELECT name FROM employees WHERE dept_id IN (SELECT id FROM departments WHERE budget > 250) ORDER BY name"
    join_version = (
        "SELECT e.name FROM employees e JOIN departments d ON e.dept_id = d.id WHERE d.budget > 250 ORDER BY e.name"
    )
    cte = (
        "WITH big AS (SELECT id FROM departments WHERE budget > 250) "
        "SELECT name FROM employees WHERE dept_id IN (SELECT id FROM big) ORDER BY name"
    )
    for seed in SEEDS:
        assert run(sub, join_version, seed=seed)["execution"] is True
        assert run(sub, cte, seed=seed)["execution"] is True
        assert run(sub, sub.replace("budget > 250", "budget < 250"), seed=seed)["execution"] is False
        assert run(sub, sub.replace("IN (", "NOT IN ("), seed=seed)["execution"] is False

    union = "SELECT dept_id FROM employees UNION SELECT id FROM departments"
    for seed in SEEDS:
        assert run(union, "select id from departments union select dept_id from employees", seed=seed)["execution"]
        assert run(union, union.replace("UNION", "UNION ALL"), seed=seed)["execution"] is False
        assert run(union, union.replace("UNION", "INTERSECT"), seed=seed)["execution"] is False
        assert run(union, union.replace("UNION", "EXCEPT"), seed=seed)["execution"] is False
    r = run(union, union.replace("UNION", "UNION ALL"))
    assert r["normalized"] is False and r["clauses"]["set_op"] is False and r["clause_credit"] < 1
    r = run(union, "SELECT dept_id FROM employees union select ID from Departments")
    assert_all_right(r)


def test_cte_clause_credit():
    gold = "WITH rich AS (SELECT name, dept_id FROM employees WHERE salary > 400) SELECT name FROM rich WHERE dept_id = 2"
    r = run(gold, gold.replace("salary > 400", "salary > 500"))
    assert r["clauses"]["with"] is False
    assert r["clauses"]["select"] is True
    assert r["clause_credit"] < 1
    assert r["normalized"] is False


# --- dialects ---

PG_SCHEMA = (
    "CREATE TABLE customers ( id INTEGER, full_name VARCHAR(50), balance NUMERIC(8,2), joined TIMESTAMP, "
    "is_vip BOOLEAN ); CREATE TABLE orders ( id BIGINT, customer_id INTEGER, amount DOUBLE PRECISION, placed DATE )"
)
PG_GOLD = (
    "SELECT c.full_name, SUM(o.amount) AS SUM_amount FROM customers AS c JOIN orders AS o ON c.id = o.customer_id "
    "WHERE c.full_name ILIKE '%a%' AND o.placed >= '2020-01-01' GROUP BY c.full_name ORDER BY SUM_amount DESC LIMIT 3"
)


def test_postgres_record():
    same = (
        'SELECT "c".full_name, SUM(o.amount) total FROM customers c INNER JOIN orders o ON o.customer_id = c.id '
        "WHERE o.placed >= '2020-01-01' AND c.full_name ILIKE '%a%' GROUP BY c.full_name ORDER BY total DESC LIMIT 3"
    )
    different_syntax = (
        "SELECT c.full_name::TEXT, SUM(o.amount) FROM customers c JOIN orders o ON c.id = o.customer_id "
        "WHERE c.full_name ILIKE '%a%' AND o.placed >= DATE '2020-01-01' GROUP BY 1 ORDER BY 2 DESC "
        "FETCH FIRST 3 ROWS ONLY"
    )
    for seed in SEEDS:
        assert_all_right(run(PG_GOLD, same, seed=seed, schema=PG_SCHEMA, dialect="postgres"))
        r = run(PG_GOLD, different_syntax, seed=seed, schema=PG_SCHEMA, dialect="postgres")
        assert r["execution"] is True and r["normalized"] is False, r
        for wrong in (
            PG_GOLD.replace("DESC", "ASC"),
            PG_GOLD.replace("LIMIT 3", "LIMIT 2"),
            PG_GOLD.replace("ILIKE", "LIKE"),  # case-sensitive in PostgreSQL
            PG_GOLD.replace("SUM(o.amount) AS", "AVG(o.amount) AS"),
        ):
            r = run(PG_GOLD, wrong, seed=seed, schema=PG_SCHEMA, dialect="postgres")
            assert r["execution"] is False and r["normalized"] is False, (wrong, r)


def test_mysql_record_with_backticks():
    schema = "CREATE TABLE `items` ( id INT, label VARCHAR(20), price DECIMAL(6,2), made DATETIME )"
    gold = "SELECT `label`, price FROM items WHERE price BETWEEN 10 AND 50 ORDER BY price DESC"
    r = run(gold, "select label, price from `ITEMS` where price between 10 and 50 order by price desc", schema=schema,
            dialect="mysql")
    assert_all_right(r)
    r = run(gold, "SELECT label, price FROM items WHERE price >= 10 AND price <= 50 ORDER BY 2 DESC", schema=schema,
            dialect="mysql")
    assert r["execution"] is True and r["normalized"] is False
    r = run(gold, "SELECT label, price FROM items WHERE price BETWEEN 10 AND 50 ORDER BY price", schema=schema,
            dialect="mysql")
    assert r["execution"] is False


# --- garbage predictions never crash the scorer ---

GARBAGE = [
    "",
    "   ;  ",
    "SELECT",
    "SELECT FROM WHERE",
    "the answer is 42",
    "SELECT name FROM employees WHERE (age > 3",
    "SELECT name FROM no_such_table",
    "SELECT no_such_column FROM employees",
    "SELECT name FROM employees; DROP TABLE employees",
    "DROP TABLE employees",
    "DELETE FROM employees",
    "INSERT INTO employees (id) VALUES (1)",
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT COUNT(*) FROM r",
    "SELECT a.name FROM employees a, employees b, employees c, employees d, employees e",
    "```sql\nSELECT name FROM employees\n```",
    "SELECT 'unterminated FROM employees",
    "\x00\x01\x02",
    "SELECT name FROM employees ORDER BY " + "name, " * 500 + "name",
]


@pytest.mark.parametrize("pred", GARBAGE)
def test_garbage_predictions_score_zero_without_crashing(pred):
    r = run(GOLD_ORDER, pred)
    assert r["exact"] is False
    assert r["normalized"] is False
    assert r["execution"] is False
    assert 0.0 <= r["clause_credit"] < 1.0
    if pred.strip(" ;") == "" or pred.startswith(("SELECT FROM", "SELECT 'unterminated", "DROP", "the answer")):
        assert isinstance(r["error"], str) and r["error"]


def test_non_string_prediction_and_broken_gold():
    r = run(GOLD_ORDER, None)  # type: ignore[arg-type]
    assert r["execution"] is False and r["error"]
    r = run("SELECT FROM WHERE", "SELECT name FROM employees")
    assert r["execution"] is False and "gold" in r["error"]
    r = run(GOLD_ORDER, GOLD_ORDER, schema="not a create statement")
    assert r["exact"] is True and r["execution"] is False and r["error"]


def test_errors_say_what_went_wrong():
    assert "parse" in run(GOLD_ORDER, "SELECT FROM WHERE")["error"]
    assert "no such table" in run(GOLD_ORDER, "SELECT name FROM nope")["error"]
    assert "statement" in run(GOLD_ORDER, "SELECT 1; SELECT 2")["error"]
    assert "readonly" in run(GOLD_ORDER, "DELETE FROM employees")["error"]
    assert "interrupted" in run(GOLD_ORDER, GARBAGE[12])["error"]


# --- normalisation and comparison internals ---


def test_canonical_sql_keeps_meaningful_differences():
    c = lambda q: S.canonical_sql(q, SCHEMA)  # noqa: E731
    assert c("SELECT a.name FROM employees a ORDER BY a.name ASC") == c("select NAME from EMPLOYEES order by name")
    assert c("SELECT name FROM employees WHERE (age > 3 OR age < 1) AND salary > 2") != c(
        "SELECT name FROM employees WHERE age > 3 OR (age < 1 AND salary > 2)"
    )
    assert c("SELECT name FROM employees WHERE age - 1 > 3") != c("SELECT name FROM employees WHERE age > 3 - 1")
    assert c("SELECT name FROM employees WHERE name = 'Ann'") != c("SELECT name FROM employees WHERE name = 'ann'")
    assert c("SELECT (salary + 1) * 2 FROM employees") != c("SELECT salary + 1 * 2 FROM employees")
    assert c("SELECT name FROM employees ORDER BY salary DESC") != c("SELECT name FROM employees ORDER BY salary")
    with pytest.raises(ValueError):
        S.canonical_sql("SELECT FROM WHERE", SCHEMA)


def test_results_comparison():
    eq = E.results_equal
    assert eq([(1, "a"), (2, "b")], [(2, "b"), (1, "a")], ordered=False)
    assert not eq([(1, "a"), (2, "b")], [(2, "b"), (1, "a")], ordered=True)
    assert eq([(0.1 + 0.2,)], [(0.3,)], ordered=True)
    assert eq([(3,)], [(3.0,)], ordered=False)
    assert not eq([(3,)], [(3.01,)], ordered=False)
    assert not eq([(1,), (1,)], [(1,)], ordered=False)
    assert not eq([(1, 1)], [(1,)], ordered=False)
    assert not eq([("1",)], [(1,)], ordered=False)
    assert eq([(None,)], [(None,)], ordered=True)
    # ties on the ORDER BY key (column 1) may come in any order, other orders may not
    gold = [("x", 5), ("y", 3), ("z", 3), ("w", 1)]
    assert eq(gold, [("x", 5), ("z", 3), ("y", 3), ("w", 1)], ordered=True, key_columns=[1])
    assert not eq(gold, [("x", 5), ("z", 3), ("y", 3), ("w", 1)], ordered=True, key_columns=None)
    assert not eq(gold, [("y", 3), ("x", 5), ("z", 3), ("w", 1)], ordered=True, key_columns=[1])
    # with a LIMIT, the last tie group is only checked on its keys
    assert eq([("x", 5), ("y", 3)], [("x", 5), ("z", 3)], ordered=True, key_columns=[1], limited=True)
    assert not eq([("x", 5), ("y", 3)], [("x", 5), ("z", 3)], ordered=True, key_columns=[1], limited=False)


def _canonical(sql, schema=SCHEMA, dialect="sqlite"):
    return canonical(parse_query(sql, dialect), E.sqlglot_schema(E.parse_tables(schema, dialect)), dialect)


def test_order_key_columns():
    assert E.order_key_columns(_canonical(GOLD_GROUP), "sqlite") == [0]
    q = "SELECT dept_id, COUNT(*) AS n FROM employees GROUP BY dept_id ORDER BY n DESC, dept_id"
    assert E.order_key_columns(_canonical(q), "sqlite") == [1, 0]
    assert E.order_key_columns(_canonical("SELECT name FROM employees ORDER BY salary"), "sqlite") is None


# --- the random databases ---


def _dump(conns):
    return [
        {t: conn.execute(f'SELECT * FROM "{t}"').fetchall() for t in ("employees", "departments", "projects")}
        for conn in conns
    ]


def _databases(gold, seed=0, schema=SCHEMA, dialect="sqlite"):
    return E.record_databases(gold, [_canonical(gold, schema, dialect)], E.parse_tables(schema, dialect), dialect, seed)


def test_databases_are_deterministic_typed_and_varied():
    a, b, c = _dump(_databases(GOLD_JOIN, 0)), _dump(_databases(GOLD_JOIN, 0)), _dump(_databases(GOLD_JOIN, 1))
    assert a == b
    assert a != c
    assert len(a) == S.N_DATABASES == E.N_DATABASES >= 3
    assert a[0] != a[1]  # each database is different
    for db in a:
        for table, rows in db.items():
            assert 8 <= len(rows) <= 12, table
        for row in db["employees"]:
            id_, name, salary, dept_id, hire_date, age, rating, active = row
            assert isinstance(id_, int) and 1 <= id_ <= 15  # small range, never NULL
            assert name is None or (isinstance(name, str) and len(name) <= 50)
            assert dept_id is None or isinstance(dept_id, int)
            assert hire_date is None or (isinstance(hire_date, str) and len(hire_date) == 10)
            assert active in (0, 1, None)
        ids = [r[0] for r in db["departments"]]
        assert len(set(ids)) == len(ids)  # id columns stay distinct
        salaries = [r[2] for r in db["employees"] if r[2] is not None]
        assert len(set(salaries)) >= len(salaries) - 2  # distinct enough for ORDER BY / MIN / MAX


def test_gold_literals_and_joins_select_rows():
    for gold in (GOLD_EQ, GOLD_LIKE, GOLD_JOIN, GOLD_JOIN3, GOLD_FILTER, PG_GOLD):
        pg = gold is PG_GOLD
        conns = _databases(gold, 0, PG_SCHEMA if pg else SCHEMA, "postgres" if pg else "sqlite")
        sql = E.to_sqlite(gold, "postgres" if pg else "sqlite")
        non_empty = sum(1 for conn in conns if conn.execute(sql).fetchall())
        assert non_empty >= len(conns) - 1, gold
    conns = _databases(GOLD_EQ)
    assert all(conn.execute("SELECT COUNT(*) FROM employees WHERE dept_id = 2").fetchone()[0] >= 2 for conn in conns)


def test_join_columns_share_values():
    for conn in _databases(GOLD_JOIN3):
        dept_ids = {r[0] for r in conn.execute("SELECT id FROM departments")}
        for table in ("employees", "projects"):
            refs = [r[0] for r in conn.execute(f"SELECT dept_id FROM {table}") if r[0] is not None]
            assert sum(ref in dept_ids for ref in refs) >= 0.75 * len(refs), table
            # several rows point at the same department (one-to-many joins)
            assert max(refs.count(ref) for ref in refs if ref in dept_ids) >= 2, table


def test_limit_gets_enough_rows():
    gold = "SELECT name FROM employees ORDER BY salary DESC LIMIT 10"
    for conn in _databases(gold):
        assert conn.execute("SELECT COUNT(*) FROM employees").fetchone()[0] > 10


def test_databases_are_read_only():
    conn = _databases(GOLD_ORDER)[0]
    with pytest.raises(Exception):
        conn.execute("DELETE FROM employees")


# --- score(): aggregation ---


def _records():
    return [
        {"id": "r1", "sql_statement": GOLD_ORDER, "dialect": "sqlite", "create_statement": SCHEMA, "level": 2},
        {"id": "r2", "sql_statement": GOLD_AGG, "dialect": "sqlite", "create_statement": SCHEMA, "level": 3},
        {"id": "r3", "sql_statement": GOLD_JOIN, "dialect": "sqlite", "create_statement": SCHEMA, "level": 3},
        {"id": "r4", "sql_statement": PG_GOLD, "dialect": "postgres", "create_statement": PG_SCHEMA, "level": 6},
    ]


def test_score_aggregates_and_missing():
    preds = {
        "r1": GOLD_ORDER,  # all right
        "r2": GOLD_AGG.replace("MIN(", "MAX("),  # wrong
        "r3": GOLD_JOIN.replace("employees.name", "employees.name").lower(),  # normalized + execution
    }
    out = score(_records(), preds)
    assert out["n"] == 4 and out["missing"] == 1
    assert out["exact"] == pytest.approx(1 / 4)
    assert out["normalized"] == pytest.approx(2 / 4)
    assert out["execution"] == pytest.approx(2 / 4)
    credits = [it["clause_credit"] for it in out["items"]]
    assert out["clause_credit"] == pytest.approx(sum(credits) / 4)
    assert credits[3] == 0.0
    assert [it["id"] for it in out["items"]] == ["r1", "r2", "r3", "r4"]
    missing = out["items"][3]
    assert missing["missing"] is True and missing["execution"] is False and missing["error"]
    assert out["by_level"]["3"]["n"] == 2 and out["by_level"]["3"]["execution"] == pytest.approx(0.5)
    json.dumps(out)  # JSON-serialisable


def test_score_empty():
    out = score([], {})
    assert out["n"] == 0 and out["execution"] == 0.0 and out["items"] == []


# --- CLI ---


@pytest.fixture
def corpus(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path / "corpus"
    (folder / "data" / "level1").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(_records()), folder / "data" / "level1" / "test-00000-of-00001.parquet")
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: level1\n  data_files:\n  - split: test\n    path: data/level1/test-*\n"
        "  default: true\n---\n"
    )
    return folder


def _write_preds(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_corpus_fixture_loads_with_datasets(corpus):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(corpus), "level1", split="test")
    assert ds.num_rows == 4 and set(ds.column_names) >= {"id", "sql_statement", "dialect", "create_statement"}


def test_cli_scores_and_writes_per_item(corpus, tmp_path, capsys):
    preds = _write_preds(
        tmp_path / "p.jsonl",
        [{"id": "r1", "prediction": GOLD_ORDER}, "", {"id": "r2", "prediction": "SELECT garbage FROM"}],
    )
    per_item = tmp_path / "items.jsonl"
    rc = S.main(["--corpus", str(corpus), "--split", "test", "--predictions", str(preds), "--per-item", str(per_item)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    summary = json.loads(out)
    assert len(out.strip().splitlines()) == 1
    assert "items" not in summary
    assert summary["n"] == 4 and summary["missing"] == 2
    assert summary["exact"] == pytest.approx(0.25) and summary["execution"] == pytest.approx(0.25)
    lines = [json.loads(line) for line in per_item.read_text().splitlines()]
    assert [item["id"] for item in lines] == ["r1", "r2", "r3", "r4"]
    assert lines[0]["execution"] is True and lines[1]["execution"] is False and lines[2]["missing"] is True
    # explicit config gives the same answer
    rc = S.main(["--corpus", str(corpus), "--config", "level1", "--predictions", str(preds)])
    out2, _ = capsys.readouterr()
    assert rc == 0 and json.loads(out2) == summary


def _cli_error(argv, capsys):
    rc = S.main(argv)
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tinysql-score: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_cli_bad_input(corpus, tmp_path, capsys):
    good = _write_preds(tmp_path / "good.jsonl", [{"id": "r1", "prediction": GOLD_ORDER}])
    base = ["--corpus", str(corpus), "--predictions", str(good)]
    assert "not found" in _cli_error(["--corpus", str(tmp_path / "nope"), "--predictions", str(good)], capsys)
    assert "level9" in _cli_error(base + ["--config", "level9"], capsys)
    assert "train" in _cli_error(base + ["--split", "train"], capsys)
    assert "cannot read" in _cli_error(["--corpus", str(corpus), "--predictions", str(tmp_path / "x.jsonl")], capsys)
    assert "cannot read" in _cli_error(["--corpus", str(corpus), "--predictions", str(tmp_path)], capsys)
    bad_files = [  # (lines of a predictions file, part of the error message)
        (['{"id": "r1", "prediction": '], ":1:"),
        (['["r1", "SELECT 1"]'], ""),
        ([{"id": "r1", "prediction": "x"}, {"prediction": "x"}], ":2:"),
        ([{"id": "r1"}], "prediction"),
        ([{"id": "r1", "prediction": "x"}, {"id": "zz", "prediction": "x"}], "'zz'"),
        ([{"id": "r1", "prediction": "x"}, {"id": "r1", "prediction": "y"}], "duplicate"),
    ]
    for i, (rows, message) in enumerate(bad_files):
        bad = _write_preds(tmp_path / f"b{i}.jsonl", rows)
        assert message in _cli_error(["--corpus", str(corpus), "--predictions", str(bad)], capsys)
    binary = tmp_path / "b7.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    _cli_error(["--corpus", str(corpus), "--predictions", str(binary)], capsys)
    # usage errors are one line too
    assert "--predictions" in _cli_error(["--corpus", str(corpus)], capsys)
    _cli_error(base + ["--bogus"], capsys)
    _cli_error(base + ["--seed", "abc"], capsys)
    # unwritable --per-item
    _cli_error(base + ["--per-item", str(tmp_path / "no" / "dir" / "x.jsonl")], capsys)


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as info:
        S.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("--corpus", "--config", "--split", "--predictions", "--per-item", "exact", "normalized",
                 "execution", "clause_credit", "missing"):
        assert word in out


def test_cli_subprocess_error_is_one_line(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "tinysql.score", "--corpus", str(tmp_path / "missing"), "--predictions", "x.jsonl"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("tinysql-score: error: ")


def test_operator_grouping_inside_nested_operators_is_kept():
    """`(a + b) * c` and `a + b * c` are different queries at any depth, not one canonical text."""
    schema = "CREATE TABLE t (a INT, b INT, c INT, d INT)"
    gold = "SELECT a FROM t WHERE (a + b) * c > d"
    assert not score_one(gold, "SELECT a FROM t WHERE a + b * c > d", schema)["normalized"]
    assert score_one(gold, "SELECT a FROM t WHERE ((a + b) * c) > d", schema)["normalized"]
