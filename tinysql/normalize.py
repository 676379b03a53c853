"""Canonical form of a SQL query, and clause-by-clause comparison of two canonical queries.

`canonical` rewrites a parsed query so that writings that cannot differ in meaning become the same
tree: keyword and identifier case, whitespace, comments, optional AS, redundant parentheses, table
alias and CTE names, names of output-column aliases (ORDER BY / HAVING / GROUP BY references to them
are resolved to the aliased expression first), ASC written or implied, INNER / OUTER in joins, the
order of the operands of AND / OR / = / !=, the side a comparison is written on (3 < a is a > 3) and
the order of IN (...) lists. It keeps the order of SELECT columns, ASC vs DESC, ORDER BY, columns,
aggregates and literals. `render` prints a canonical tree unambiguously; `clauses` splits it into
named clauses and `clause_credit` compares two such splits. `parse_query` (exactly one statement)
and `strip_sql` are the scorer's way in from text; since queries may be hostile, `parse_query` refuses
text longer than MAX_QUERY_CHARS and trees deeper than MAX_QUERY_DEPTH (ValueError), so that nothing
after it recurses deeply or takes long, and `render` is linear in the size of the tree.
"""

from __future__ import annotations

import re
from functools import reduce
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

MAX_QUERY_CHARS = 4_000  # longest query parsed (TinySQL's gold queries are under 600 characters)
MAX_QUERY_DEPTH = 40  # deepest parsed tree (TinySQL's gold queries are at most 10 levels deep)


def strip_sql(sql: str) -> str:
    """`sql` without surrounding whitespace and one trailing ';'."""
    text = sql.strip()
    return text[:-1].rstrip() if text.endswith(";") else text


def first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__


def parse_query(sql: str, dialect: str) -> exp.Expr:
    """The one statement of `sql`; ValueError when there is not exactly one or it does not parse."""
    text = strip_sql(sql)
    if not text:
        raise ValueError("empty query")
    if len(text) > MAX_QUERY_CHARS:
        raise ValueError(f"query too long ({len(text)} characters; the limit is {MAX_QUERY_CHARS})")
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError as err:
        raise ValueError(f"parse error: {first_line(err)}") from None
    except RecursionError:
        raise ValueError("query nested too deeply to parse") from None
    if len(statements) != 1:
        raise ValueError(f"expected one SQL statement, got {len(statements)}")
    if _depth(statements[0]) > MAX_QUERY_DEPTH:
        raise ValueError(f"query nested too deeply (more than {MAX_QUERY_DEPTH} levels)")
    return statements[0]


def _depth(tree: exp.Expr) -> int:
    """The number of levels of `tree` (without recursion)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest


def unwrap(node: exp.Expr) -> exp.Expr:
    """The query inside parentheses and subquery wrappers."""
    while isinstance(node, (exp.Subquery, exp.Paren)) and isinstance(node.this, exp.Expr):
        node = node.this
    return node


def render(node: exp.Expr, dialect: str) -> str:
    """SQL of `node` with every operator nested in another one parenthesised, so that different
    canonical trees print differently."""
    node = node.copy()
    stack = [node]
    while stack:  # parenthesise every operator nested in another, at any depth
        sub = stack.pop()
        if (isinstance(sub, (exp.Binary, exp.Not, exp.Between, exp.In, exp.Neg))
                and isinstance(sub.parent, (exp.Binary, exp.Not, exp.Neg, exp.Between))
                and not isinstance(sub.parent, exp.Dot) and not isinstance(sub, exp.Dot)
                and sub.arg_key in ("this", "expression", "low", "high")):
            paren = exp.Paren()
            sub.replace(paren)
            paren.set("this", sub)
        stack.extend(sub.iter_expressions())
    return node.sql(dialect=dialect, comments=False)


# --- canonical form ---


def canonical(tree: exp.Expr, schema: dict[str, dict[str, str]], dialect: str) -> exp.Expr:
    """A canonical copy of the query `tree`; `schema` maps each table to its columns' types."""
    tree = tree.copy()
    _lower_identifiers(tree)
    _rename_ctes(tree)
    tree = _qualify(tree, schema, dialect)
    _lower_identifiers(tree)
    _resolve_output_aliases(tree)
    for join in tree.find_all(exp.Join):
        if (join.kind == "INNER" and not join.side) or (join.kind == "OUTER" and join.side):
            join.set("kind", None)
    for ordered in tree.find_all(exp.Ordered):
        ordered.set("desc", ordered.args.get("desc") or None)
    return _normalize_operators(tree, dialect)


def _lower_identifiers(tree: exp.Expr) -> None:
    """Identifier case never matters here, quoted or not."""
    for ident in tree.find_all(exp.Identifier):
        ident.set("this", ident.this.lower())
        ident.set("quoted", False)


def _rename_ctes(tree: exp.Expr) -> None:
    """Name the CTEs cte0_, cte1_, ... in order of appearance."""
    number = 0
    for with_ in list(tree.find_all(exp.With)):
        scope = with_.parent or tree
        for cte in with_.expressions:
            old, new = cte.alias_or_name.lower(), f"cte{number}_"
            number += 1
            cte.args["alias"].set("this", exp.to_identifier(new))
            for table in scope.find_all(exp.Table):
                if table.args.get("db") or table.name.lower() != old:
                    continue
                if not table.alias:  # columns qualified by the CTE's name
                    for col in scope.find_all(exp.Column):
                        if col.table.lower() == old and not col.args.get("db"):
                            col.set("table", exp.to_identifier(new))
                table.set("this", exp.to_identifier(new))


def _qualify(tree: exp.Expr, schema: dict[str, dict[str, str]], dialect: str) -> exp.Expr:
    """Qualify columns and alias tables _0, _1, ...; then alias each table that occurs once by its own
    name, so that the order in which tables are listed does not leak into every column reference."""
    for attempt in (schema or None, None):
        try:
            tree = qualify(tree.copy(), dialect=dialect, schema=attempt, quote_identifiers=False, identify=False,
                           validate_qualify_columns=False, canonicalize_table_aliases=True)
            break
        except Exception:  # a prediction sqlglot cannot qualify keeps its own names
            continue
    else:
        return tree
    tables = [t for t in tree.find_all(exp.Table) if isinstance(t.this, exp.Identifier) and t.alias]
    taken = {t.alias for t in tables} | {s.alias for s in tree.find_all(exp.Subquery) if s.alias}
    names = [t.name for t in tables]
    rename = {}
    for t in tables:
        if names.count(t.name) == 1 and re.fullmatch(r"_\d+", t.alias) and t.name not in taken:
            rename[t.alias] = t.name
            t.set("alias", exp.TableAlias(this=exp.to_identifier(t.name)))
    for col in tree.find_all(exp.Column):
        if col.table in rename and not col.args.get("db"):
            col.set("table", exp.to_identifier(rename[col.table]))
    return tree


def _is_source(query: exp.Expr) -> bool:
    """True when `query` is a CTE body or a derived table (its output names matter)."""
    while isinstance(query.parent, (exp.Subquery, exp.Paren, exp.SetOperation)):
        query = query.parent
    return isinstance(query.parent, (exp.CTE, exp.From, exp.Join, exp.Lateral))


def _resolve_output_aliases(tree: exp.Expr) -> None:
    """Replace references to output-column aliases and drop the alias names, in queries whose output
    names cannot be referenced (the outermost query, scalar / IN / EXISTS subqueries)."""
    for op in [n for n in tree.find_all(exp.SetOperation) if n.args.get("order") and not _is_source(n)]:
        leftmost = op
        while isinstance(leftmost, exp.SetOperation):
            leftmost = unwrap(leftmost.this)
        names = [p.alias_or_name.lower() for p in leftmost.selects] if isinstance(leftmost, exp.Select) else []
        for col in list(op.args["order"].find_all(exp.Column)):
            if not col.table and col.name.lower() in names:
                col.replace(exp.Literal.number(names.index(col.name.lower()) + 1))
    for select in [n for n in tree.find_all(exp.Select) if not _is_source(n)]:
        aliases: dict[str, exp.Expr] = {}
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) and projection.alias:
                aliases.setdefault(projection.alias.lower(), projection.this)
        for key in ("order", "having", "group"):
            for col in list(select.args[key].find_all(exp.Column)) if select.args.get(key) else []:
                if not col.table and col.name.lower() in aliases and col.find_ancestor(exp.Select) is select:
                    col.replace(aliases[col.name.lower()].copy())
        for projection in list(select.expressions):
            if isinstance(projection, exp.Alias):
                projection.replace(projection.this)


# comparisons with their operands swapped
_FLIPPED = {exp.GT: exp.LT, exp.LT: exp.GT, exp.GTE: exp.LTE, exp.LTE: exp.GTE,
            exp.EQ: exp.EQ, exp.NEQ: exp.NEQ, exp.NullSafeEQ: exp.NullSafeEQ, exp.NullSafeNEQ: exp.NullSafeNEQ}


def _normalize_operators(tree: exp.Expr, dialect: str) -> exp.Expr:
    """Drop parentheses around expressions, sort the operands of AND / OR and IN lists, and put the
    column side of comparisons first; children before their parents."""

    def literal(node: exp.Expr) -> bool:
        return isinstance(node, (exp.Literal, exp.Null, exp.Boolean, exp.Neg))

    def after(a: exp.Expr, b: exp.Expr) -> bool:
        """Whether `a` goes after `b`: literals after the rest, then by rendered text (rendered only when
        needed: rendering every side of a long chain of comparisons would take quadratic time)."""
        if literal(a) != literal(b):
            return literal(a)
        return render(a, dialect) > render(b, dialect)

    for node in reversed(list(tree.walk())):
        new = None
        if isinstance(node, exp.Paren) and not isinstance(node.this, exp.Query):
            new = None if isinstance(node.parent, (exp.From, exp.Join)) else node.this
        elif isinstance(node, exp.Connector):
            operands = sorted(node.flatten(), key=lambda o: render(o, dialect))
            new = reduce(lambda left, right: type(node)(this=left, expression=right), (o.copy() for o in operands))
        elif type(node) in _FLIPPED and after(node.this, node.expression):
            new = _FLIPPED[type(node)](this=node.expression.copy(), expression=node.this.copy())
        elif isinstance(node, exp.In) and node.expressions and not node.args.get("query"):
            node.set("expressions", sorted(node.expressions, key=lambda o: render(o, dialect)))
        if new is not None:
            tree = new if node is tree else tree
            node.replace(new)
    return tree


# --- clauses ---


def clauses(tree: exp.Expr, dialect: str, prefix: str = "") -> dict[str, Any]:
    """The clauses of a canonical query by name (select, from, join, where, ...), each as a value that
    is equal for two queries exactly when the clauses match. The branches of a set operation are
    named q1., q2., ..."""

    def r(node: exp.Expr) -> str:
        return render(node, dialect)

    def conjuncts(node: exp.Expr) -> frozenset[str]:
        return frozenset(map(r, node.flatten() if isinstance(node, exp.And) else [node]))

    node = unwrap(tree)
    if not isinstance(node, (exp.Select, exp.SetOperation)):
        return {"statement": r(node)}
    args, out = node.args, {}
    if args.get("with_") and args["with_"].expressions:
        out["with"] = tuple(map(r, args["with_"].expressions))
    if isinstance(node, exp.SetOperation):
        branches, out["set_op"] = _set_operation_parts(node)
        for i, branch in enumerate(branches, 1):
            if isinstance(branch, exp.Select):
                out.update(clauses(branch, dialect, f"q{i}."))
            else:
                out[f"q{i}.query"] = r(branch)
    else:
        joins = args.get("joins") or []
        out["select"] = tuple(map(r, node.expressions))
        sources = ([args["from_"].this] if args.get("from_") else []) + [j.this for j in joins]
        if sources:
            out["from"] = tuple(sorted(map(r, sources)))
        if joins:
            out["join"] = tuple(sorted(
                (j.side, j.kind, r(j.args["on"]) if j.args.get("on") else "", tuple(map(r, j.args.get("using") or [])))
                for j in joins))
        if args.get("where"):
            out["where"] = conjuncts(args["where"].this)
        if args.get("group"):
            out["group_by"] = frozenset(map(r, args["group"].expressions))
        if args.get("having"):
            out["having"] = conjuncts(args["having"].this)
        if args.get("distinct"):
            out["distinct"] = r(args["distinct"])
    if args.get("order"):
        out["order_by"] = tuple((r(key.this), bool(key.args.get("desc"))) for key in args["order"].expressions)
    if args.get("limit") or args.get("offset"):
        out["limit"] = tuple(r(args[k]) if args.get(k) else "" for k in ("limit", "offset"))
    return {prefix + name: value for name, value in out.items()}


def _set_operation_parts(node: exp.SetOperation) -> tuple[list[exp.Expr], tuple[str, ...]]:
    """The branches of a chain of set operations and the operators between them, left to right."""
    branches: list[exp.Expr] = []
    operators: list[str] = []

    def visit(n: exp.Expr, top: bool = False) -> None:
        n = unwrap(n)
        if isinstance(n, exp.SetOperation) and (top or not any(n.args.get(k) for k in ("order", "limit", "with_"))):
            visit(n.this)
            operators.append(n.key + ("" if n.args.get("distinct") else " all"))
            visit(n.expression)
        else:
            branches.append(n)

    visit(node, top=True)
    return branches, tuple(operators)


def clause_credit(gold: dict[str, Any], pred: dict[str, Any]) -> tuple[float, dict[str, bool]]:
    """The fraction of clauses present in either query that match, and the match of each clause."""
    matches = {name: name in gold and name in pred and gold[name] == pred[name] for name in {**gold, **pred}}
    return sum(matches.values()) / len(matches), matches
