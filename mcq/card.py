"""The facts of the `mcq-gen` dataset card: field docs, the checks that ran, and the statistics of the
kept records (gold positions per option count; sources, label schemes and styles), read back from the
written parquet files. The prose is the template `mcq/card.md`."""

from __future__ import annotations

import collections
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from cards.corpus import Report
from mcq import attribution as spans
from mcq.generate import COUNTERFACTUALS
from mcq.labels import MAX_OPTIONS, SCHEMES
from mcq.sources import SOURCES

POSITIONS = range(MAX_OPTIONS)  # the columns of the gold-position table
MIX = {"source": "sources", "label_scheme": "label schemes", "label_style": "label styles"}

FIELD_DOCS = {
    "id": "stable id: generator, level, seed and candidate index",
    "level": "the level (see the level ladder)",
    "source": f"the question source: {', '.join(SOURCES)}",
    "question": "the question text (for context binding it states the facts first)",
    "choices": "the option texts, in prompt order",
    "labels": "the option labels, in prompt order",
    "answer": "the gold index into `choices` (an int, as in MMLU)",
    "answer_label": "`labels[answer]`; the scored continuation is a space and this label, e.g. ` A`",
    "label_scheme, label_style": f"schemes: {', '.join(SCHEMES)}; styles: dot `A. x`, paren `(A) x`, colon `A: x`",
    "prompt": "`question`, one `label text` line per option, then `Answer:` (lm-evaluation-harness MMLU layout)",
    "facts": "JSON: the structured facts the source's verifier decides from (re-check a record with "
             "`mcq.generate.check_record`)",
    "cf_kind, cf_prompt, cf_choices, cf_labels, cf_answer, cf_answer_label": "(with --counterfactual) the partner "
             "of the record, of the same length in characters: " + "; ".join(f"{k}: {v}" for k, v in
                                                                           COUNTERFACTUALS.items()),
    "attribution": spans.FIELD_DOC,
}


def gold_rows(folder: Path, reports: list[Report]) -> list[list]:
    """Kept records per config, split and option count, then per gold position (0 = first option; '' where
    the position does not exist), read back from the parquet files; an `all` row when counts vary."""
    rows = []
    for report in reports:
        for split in report.sizes:
            files = sorted(str(f) for f in (folder / "data" / report.name).glob(f"{split}-*.parquet"))
            rows += split_rows([report.name, split], pq.read_table(files, columns=["answer", "choices"]))
    return rows


def split_rows(head: list, table) -> list[list]:
    """The gold-position rows of one split's records (see `gold_rows`)."""
    gold = collections.Counter(zip(pc.list_value_length(table["choices"]).to_pylist(), table["answer"].to_pylist()))
    counts = sorted({k for k, _ in gold})
    rows = [[*head, k, sum(gold[k, p] for p in POSITIONS), *[gold[k, p] if p < k else "" for p in POSITIONS]]
            for k in counts]
    if len(counts) > 1:
        rows.append([*head, "all", sum(gold.values()),
                     *[sum(gold[k, p] for k in counts) if p < counts[-1] else "" for p in POSITIONS]])
    return rows


def mix_rows(folder: Path, reports: list[Report]) -> list[list[str]]:
    """Per config, the kept records' sources, label schemes and label styles with their counts."""
    rows = []
    for report in reports:
        table = pq.read_table(folder / "data" / report.name, columns=list(MIX))
        rows.append([report.name, *[", ".join(f"{key} {n}" for key, n in
                                              sorted(collections.Counter(table[name].to_pylist()).items()))
                                    for name in MIX]])
    return rows


def checks(options) -> list[str]:
    """What was checked on every kept record, for `options` (`mcq.generator.Options`)."""
    found = [
        "the source's verifier, given only the structured facts and the option texts, finds exactly one correct "
        "option, and it is `answer`; the options are distinct",
        "verifiers decide independently of the generator: context binding looks the queried entity up in the "
        "stated pairs; arithmetic and multiplication compute with Python integers (not multmath); order and "
        "comparison questions test each option against every other listed item; SQL options are executed "
        "against the request's structured query on tinysql.score's seeded databases (the gold returns the same "
        "rows on all of them, each distractor runs and returns different rows)",
        "`answer_label` is `labels[answer]`; `prompt` is the MMLU layout of `question`, `labels` and `choices`",
        spans.CHECKED,
    ]
    if options.counterfactual:
        found.append("the counterfactual partner has the same length in characters, a different gold label, and "
                     "its own verifier run finds exactly its gold option")
    if options.tokenizer:
        found.append(f"with tokenizer `{options.tokenizer}`: every label ` L` is exactly one token appended to the "
                     "prompt's tokens" + (", the partner's too, and both prompts have the same number of tokens"
                                          if options.counterfactual else ""))
    return found
