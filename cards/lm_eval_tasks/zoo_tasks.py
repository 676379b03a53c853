"""The python side of the interp-zoo lm-evaluation-harness tasks in this folder (loaded by lm-eval's
`!function zoo_tasks.NAME`, not imported by the project): which corpus a task reads, its test and dev
splits, the TinySQL and multiplication prompts (the generator's training view, as `zoo-eval` reads
them) and their scores (`tinysql.score`, multmath's answer after `####`).

A task reads the corpus named by lm-eval's metadata key `corpus` (`--metadata '{"corpus": "DIR"}'`), else
by the environment variable INTERP_ZOO_CORPUS: a corpus folder or a Hub dataset id. Its `dev` split,
for few-shot examples, is the corpus's validation split, else its first split other than test.
"""

from __future__ import annotations

import os

ENV = "INTERP_ZOO_CORPUS"
DEV_FIRST = ("validation",)


class TaskError(ValueError):
    """A task that cannot find or use its corpus."""


def corpus_path(metadata: dict) -> str:
    path = metadata.get("corpus") or os.environ.get(ENV)
    if not path:
        raise TaskError(f"interp-zoo tasks: set {ENV}=<corpus folder or Hub dataset id>, or pass "
                        "--metadata '{\"corpus\": \"<folder>\"}'")
    return str(path)


def load(config: str | None = None, **metadata):
    """lm-eval's `custom_dataset`: the corpus config's `test` split and `dev` (see the module docstring)."""
    import datasets

    path = corpus_path(metadata)
    config = config or metadata.get("config")
    try:
        found = datasets.load_dataset(path, config)
    except (FileNotFoundError, ValueError) as err:
        raise TaskError(f"interp-zoo tasks: cannot load {path!r}" + (f" config {config!r}" if config else "")
                        + f": {str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
    if "test" not in found:
        raise TaskError(f"interp-zoo tasks: {path!r} has no test split")
    others = [split for split in (*DEV_FIRST, *found) if split in found and split != "test"]
    splits = {"test": found["test"]}
    if others:
        splits["dev"] = found[others[0]]
    return datasets.DatasetDict(splits)


def _view(name: str):
    from cards.generator import get

    return get(name).view


# -- TinySQL: the prompt zoo-eval gives the model, scored by tinysql.score --

def tinysql_prompt(doc: dict) -> str:
    return _view("tinysql").pieces(doc)[0]


def tinysql_target(doc: dict) -> str:
    return _view("tinysql").pieces(doc)[2]


def tinysql_results(doc: dict, results: list[str]) -> dict:
    from tinysql.score import score_one

    view, output = _view("tinysql"), results[0]
    scores = score_one(doc["sql_statement"], output.strip(), doc["create_statement"], doc.get("dialect") or "sqlite")
    return {"exact_match": float(view.answer(output) == view.gold(doc)), "normalized_match": float(scores["normalized"]),
            "execution_match": float(scores["execution"]), "clause_credit": float(scores["clause_credit"])}


# -- multiplication: `A * B ||`, scored on the digits after the last `####` --

def multmath_prompt(doc: dict) -> str:
    return _view("multmath").pieces(doc)[0]


def multmath_target(doc: dict) -> str:
    _, cot, answer = _view("multmath").pieces(doc)
    return (cot + answer).lstrip(" ")


def multmath_results(doc: dict, results: list[str]) -> dict:
    """Exact match and the share of answer digits right in place (zoo-eval's digit_accuracy: one config's
    answers all have the same number of digits, so the mean over records is zoo-eval's)."""
    view = _view("multmath")
    return {"exact_match": float(view.answer(results[0]) == view.gold(doc)),
            "digit_accuracy": view.metrics([doc], results[:1])["digit_accuracy"]}
