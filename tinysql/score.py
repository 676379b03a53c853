"""Scorer for TinySQL predictions: grades predicted SQL against a corpus's gold SQL.

This module owns the `tinysql-score` console script and the Python scoring API::

    from tinysql.score import score, score_one

    score_one(gold, prediction, create_statement, dialect="sqlite", seed=0)
    # -> {"exact", "normalized", "execution", "clause_credit", "clauses", "error"}
    score(records, {record_id: prediction})
    # -> {"n", "missing", "exact", "normalized", "execution", "clause_credit", "by_level", "items"}
    score(records, {record_id: prediction}, metric="original")
    # the same, plus "original", "original_accuracy", "original_n": the original TinySQL's lenient metric

Metrics, per item (aggregated as rates / means):

* `exact`: the strings are equal after stripping surrounding whitespace and one trailing `;`.
* `normalized`: the queries, parsed in the record's dialect and qualified against its schema, have
  the same canonical form (tinysql.normalize says what it ignores and what it keeps).
* `execution`: gold and prediction (transpiled to SQLite) give the same results on several seeded
  random SQLite databases built from the record's `create_statement` (tinysql.execution says how).
* `clause_credit`: the fraction of clauses (select list, with, from tables, join conditions, where,
  group by, having, order by with directions, limit, distinct, set operation) present in the gold or
  the prediction that match between the two canonical forms; `clauses` maps each to whether it did.

With `metric="original"` (`tinysql-score --metric original`), each item of levels 1-3 also gets
`original`: the original TinySQL's lenient token score (tinysql.original_metric), which a flipped
ASC/DESC, a reordered select list or a dropped ORDER BY do not lower; the aggregate `original` is its
mean and `original_accuracy` the share of items scoring 1.0 (what the original calls prediction
accuracy), over the `original_n` items it is defined for.

A prediction that fails to parse or to execute scores 0 on `normalized` / `execution` and the reason
is put in `error`; the scorer itself never raises on bad predictions. Predictions are treated as
hostile: tinysql.normalize bounds what reaches sqlglot (length and depth), and tinysql.execution runs
queries in a SQLite sandbox (read-only SELECTs on the record's tables, no files, no pragmas or
extensions, a time, memory and result-size budget per query).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Iterable, Mapping, Sequence

from cards.cli import Parser, UsageError, run
from tinysql import original_metric
from tinysql.execution import N_DATABASES, parse_tables, same_execution, sqlglot_schema
from tinysql.normalize import canonical, clause_credit, clauses, first_line, parse_query, render, strip_sql

__all__ = ["score", "score_one", "canonical_sql", "main", "N_DATABASES"]

METRICS = ("exact", "normalized", "execution", "clause_credit")
SCORERS = ("ours", "original")  # --metric: this project's metrics, or the original's lenient one beside them


def canonical_sql(sql: str, create_statement: str = "", dialect: str = "sqlite") -> str:
    """Canonical text of `sql`; ValueError when it does not parse. Two queries score `normalized`
    exactly when their canonical texts are equal."""
    schema = sqlglot_schema(parse_tables(create_statement, dialect))
    return render(canonical(parse_query(sql, dialect), schema, dialect), dialect)


def score_one(gold: str, prediction: str, create_statement: str, dialect: str = "sqlite", seed: int = 0) -> dict:
    """Score one prediction against its gold query.

    Returns `{"exact", "normalized", "execution", "clause_credit", "clauses", "error"}`; `error`
    explains why the prediction could not be parsed or executed (else None).
    """
    gold, prediction = (text if isinstance(text, str) else "" for text in (gold, prediction))
    dialect = (dialect or "sqlite").lower()
    exact = strip_sql(gold) == strip_sql(prediction)
    result = {"exact": exact, "normalized": exact, "execution": False, "clause_credit": float(exact), "clauses": {}}
    errors: list[str] = []
    tables = parse_tables(create_statement or "", dialect)
    gold_canon = _canonical("gold", gold, sqlglot_schema(tables), dialect, errors)
    pred_canon = _canonical("prediction", prediction, sqlglot_schema(tables), dialect, errors)
    if gold_canon is not None:
        pred_clauses = clauses(pred_canon, dialect) if pred_canon is not None else {}
        result["normalized"] = pred_canon is not None and render(gold_canon, dialect) == render(pred_canon, dialect)
        result["clause_credit"], result["clauses"] = clause_credit(clauses(gold_canon, dialect), pred_clauses)
    if gold_canon is not None and pred_canon is not None:
        if not tables:
            errors.append("no CREATE TABLE statement could be parsed from create_statement")
        else:
            try:
                result["execution"], error = same_execution(gold, prediction, gold_canon, pred_canon, tables,
                                                            dialect, seed)
                if error:
                    errors.append(error)
            except Exception as err:  # never let a bad prediction crash the scorer
                errors.append(f"execution: {first_line(err)}")
    result["error"] = "; ".join(errors) or None
    return result


def _canonical(who: str, sql: str, schema: dict, dialect: str, errors: list[str]):
    """Canonical tree of `sql`, or None with the reason added to `errors`."""
    try:
        return canonical(parse_query(sql, dialect), schema, dialect)
    except ValueError as err:
        errors.append(f"{who}: {err}")
    except RecursionError:  # parse_query bounds the depth; this is the backstop
        errors.append(f"{who}: query nested too deeply")
    return None


def score(records: Iterable[Mapping[str, Any]], predictions: Mapping[str, str], seed: int = 0,
          metric: str = "ours") -> dict:
    """Score `predictions` (id -> SQL) against `records` of a corpus split.

    Records without a prediction count as wrong on every metric and are counted in `missing`. Returns
    aggregate rates, per-level rates under `by_level` and the per-item results under `items`;
    `metric="original"` adds the original TinySQL's lenient metric to each.
    """
    if metric not in SCORERS:
        raise UsageError(f"metric: {metric!r} is not one of {', '.join(SCORERS)}")
    items = []
    for record in records:
        item: dict[str, Any] = {"id": str(record.get("id"))}
        if record.get("level") is not None:
            item["level"] = record["level"]
        prediction = predictions.get(item["id"])
        item["missing"] = prediction is None
        if prediction is None:
            item.update(exact=False, normalized=False, execution=False, clause_credit=0.0, clauses={},
                        error="missing prediction")
        else:
            item.update(score_one(record.get("sql_statement") or "", prediction, record.get("create_statement") or "",
                                  dialect=record.get("dialect") or "sqlite", seed=seed))
        if metric == "original":
            item["original"] = original_metric.score(original_metric.item(dict(record)), prediction or "")
        items.append(item)
    levels = sorted({item["level"] for item in items if "level" in item})
    by_level = {str(level): _aggregate([item for item in items if item.get("level") == level], metric)
                for level in levels}
    return {**_aggregate(items, metric), "by_level": by_level, "items": items}


def _aggregate(items: list[dict[str, Any]], metric: str = "ours") -> dict[str, Any]:
    n = len(items)
    rates = {name: sum(float(item[name]) for item in items) / n if n else 0.0 for name in METRICS}
    result = {"n": n, "missing": sum(item["missing"] for item in items), **rates}
    if metric == "original":
        scored = [item["original"] for item in items if item["original"] is not None]
        result["original"] = sum(scored) / len(scored) if scored else None
        result["original_accuracy"] = sum(s == 1.0 for s in scored) / len(scored) if scored else None
        result["original_n"] = len(scored)
    return result


# --- CLI ---

DESCRIPTION = """\
Grade predicted SQL against a TinySQL corpus split and print aggregate metrics as one
JSON object on stdout.

Metrics (rates over all items of the split; items without a prediction count as wrong
and are reported as "missing"):
  exact          prediction == gold after stripping whitespace and a trailing ';'
  normalized     equal after sqlglot normalisation (case, whitespace, optional AS,
                 redundant parentheses, alias names, implied ASC, order of AND/OR/=
                 operands are ignored; column order, ASC/DESC, ORDER BY, literals,
                 aggregates are not)
  execution      same results as the gold on several seeded random SQLite databases
                 built from the record's CREATE TABLE statements (ordered comparison
                 when the gold has an outermost ORDER BY, multiset otherwise)
  clause_credit  mean fraction of clauses (select, from, join, where, group by,
                 having, order by, limit, distinct, ...) that match the gold
  original       (with --metric original, levels 1-3) the original TinySQL's lenient
                 token score: a flipped ASC/DESC, a reordered select list or a
                 dropped ORDER BY still score 1.0; original_accuracy is the share
                 of items scoring 1.0 (the original's "prediction accuracy")
"""
EPILOG = (
    "With --per-item, each line holds one item's id, level, missing flag, the four metrics, the per-clause "
    "matches and the error (why the prediction did not parse or run). Exit status: 0 on success, 2 on bad input "
    "(with one 'tinysql-score: error: ...' line on stderr)."
)


def parser() -> Parser:
    p = Parser(prog="tinysql-score", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--corpus", required=True, metavar="DIR", help="corpus folder (loadable with datasets.load_dataset)")
    p.add_argument("--config", metavar="NAME",
                   help="corpus config, e.g. level3 (default: the corpus's default / first config)")
    p.add_argument("--split", default="test", metavar="SPLIT",
                   help="split to score: train, validation or test (default: test)")
    p.add_argument("--predictions", required=True, metavar="FILE.jsonl",
                   help='JSON Lines file, one {"id": ..., "prediction": "SQL"} object per line; every id must be in '
                        "the split")
    p.add_argument("--per-item", metavar="OUT.jsonl", help="also write one JSON line of per-item results to this file")
    p.add_argument("--seed", type=int, default=0, help="seed for the random execution databases (default: 0)")
    p.add_argument("--metric", choices=SCORERS, default="ours",
                   help="ours: the metrics above; original: also the original TinySQL's lenient metric (levels "
                        "1-3), as `original` (mean score) and `original_accuracy` (share scoring 1.0), over "
                        "`original_n` items (default: ours)")
    return p


def _score_command(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    records = _load_split(args.corpus, args.config, args.split)
    predictions = _load_predictions(args.predictions)
    ids = {str(r.get("id")) for r in records}
    unknown = [repr(pid) for pid in predictions if pid not in ids]
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise UsageError(f"{len(unknown)} prediction id(s) not in split {args.split!r}: {shown}")
    result = score(records, predictions, seed=args.seed, metric=args.metric)
    if args.per_item:
        try:
            with open(args.per_item, "w", encoding="utf-8") as out:
                out.writelines(json.dumps(item) + "\n" for item in result["items"])
        except OSError as err:
            raise UsageError(f"cannot write {args.per_item!r}: {first_line(err)}") from err
    print(json.dumps({k: v for k, v in result.items() if k != "items"}))
    return 0


def _load_split(corpus: str, config: str | None, split: str) -> list[dict[str, Any]]:
    import datasets  # here, not at the top: slow to import, and only the CLI needs it

    if not os.path.isdir(corpus):
        raise UsageError(f"corpus folder not found: {corpus}")
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        names = datasets.get_dataset_config_names(corpus)
        default = datasets.get_dataset_default_config_name(corpus)
    except Exception:  # not a loadable corpus: load_dataset below says why
        names, default = [], None
    if config is not None and names and config not in names:
        raise UsageError(f"unknown config {config!r} (available: {', '.join(names)})")
    config = config or default or (names[0] if names else None)
    try:
        records = datasets.load_dataset(corpus, config, split=split).to_list()
    except Exception as err:  # datasets raises many kinds for a bad folder or split
        message = first_line(err)
        if message.lower().startswith("unknown split"):
            raise UsageError(message) from err
        raise UsageError(f"cannot load corpus {corpus!r} (config {config!r}, split {split!r}): {message}") from err
    for required in ("id", "sql_statement", "create_statement"):
        if records and required not in records[0]:
            raise UsageError(f"corpus records have no {required!r} field")
    return records


def _load_predictions(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read predictions file {path!r}: {first_line(err)}") from err
    predictions: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise UsageError(f"{path}:{number}: malformed JSON: {err.msg}") from None
        except RecursionError:
            raise UsageError(f"{path}:{number}: malformed JSON: nested too deeply") from None
        if not isinstance(obj, dict):
            raise UsageError(f"{path}:{number}: expected a JSON object with 'id' and 'prediction'")
        missing = [k for k in ("id", "prediction") if k not in obj]
        if missing:
            raise UsageError(f"{path}:{number}: missing field(s): {', '.join(missing)}")
        if isinstance(obj["id"], bool) or not isinstance(obj["id"], (str, int)):
            raise UsageError(f"{path}:{number}: 'id' must be a string")
        if not isinstance(obj["prediction"], str):
            raise UsageError(f"{path}:{number}: 'prediction' must be a string")
        if str(obj["id"]) in predictions:
            raise UsageError(f"{path}:{number}: duplicate id {str(obj['id'])!r}")
        predictions[str(obj["id"])] = obj["prediction"]
    return predictions


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of `tinysql-score`; returns the exit status."""
    return run("tinysql-score", _score_command, argv)


if __name__ == "__main__":
    sys.exit(main())
