"""What the `mcq-gen` dataset card says: description, fields, checks, the level ladder, and the
statistics of the kept records (gold-position histogram, sources, label schemes and styles), read
back from the written parquet files."""

from __future__ import annotations

import collections
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from cards.card import DatasetDescription
from cards.corpus import Report
from mcq.generate import COUNTERFACTUALS, LEVEL_NOTES, Options
from mcq.labels import MAX_OPTIONS, SCHEMES
from mcq.sources import SOURCES

FIELD_DOCS = {
    "id": "stable id: generator, level, seed and candidate index",
    "level": "the level (see the ladder below)",
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
}


class Statistics:
    """Counts of the kept records per config; `collect` is the core's extra_files hook."""

    def __init__(self) -> None:
        self.gold: dict[str, collections.Counter] = {}
        self.mix: dict[str, dict[str, collections.Counter]] = {}

    def collect(self, folder: Path, reports: list[Report]) -> None:
        for report in reports:
            table = pq.read_table(folder / "data" / report.name,
                                  columns=["answer", "choices", "source", "label_scheme", "label_style"])
            counts = pc.list_value_length(table["choices"]).to_pylist()
            self.gold[report.name] = collections.Counter(zip(counts, table["answer"].to_pylist()))
            self.mix[report.name] = {name: collections.Counter(table[name].to_pylist())
                                     for name in ("source", "label_scheme", "label_style")}

    def markdown(self) -> str:
        positions = list(range(MAX_OPTIONS))
        rows = []
        for name, gold in self.gold.items():
            for k in sorted({k for k, _ in gold}):
                rows.append([name, k, sum(gold[k, p] for p in positions),
                             *[gold[k, p] if p < k else "" for p in positions]])
            widest = max((k for k, _ in gold), default=0)
            if len({k for k, _ in gold}) > 1:
                rows.append([name, "all", sum(gold.values()),
                             *[sum(gold[k, p] for k in range(widest + 1)) if p < widest else "" for p in positions]])
        mix = [[name, *[", ".join(f"{key} {n}" for key, n in sorted(c.items())) for c in parts.values()]]
               for name, parts in self.mix.items()]
        return "\n".join([
            "## Gold positions",
            "",
            "The option count and the gold position come from the index: each allowed count once per block of "
            "indices, and for each count every position once per block of its occurrences, so positions are "
            "exactly uniform before rejections and de-duplication. Kept records by option count and gold "
            "position (0 = first option):",
            "",
            _table(["config", "options", "records", *positions], rows),
            "",
            "## Sources, label schemes and styles",
            "",
            _table(["config", "sources", "label schemes", "label styles"], mix),
            "",
        ])


def _table(header: list, rows: list[list]) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def checks(options: Options) -> list[str]:
    found = [
        "the source's verifier, given only the structured facts and the option texts, finds exactly one correct "
        "option, and it is `answer`; the options are distinct",
        "verifiers decide independently of the generator: context binding looks the queried entity up in the "
        "stated pairs; arithmetic and multiplication compute with Python integers (not multmath); order and "
        "comparison questions test each option against every other listed item; SQL options are executed "
        "against the request's structured query on tinysql.score's seeded databases (the gold returns the same "
        "rows on all of them, each distractor runs and returns different rows)",
        "`answer_label` is `labels[answer]`; `prompt` is the MMLU layout of `question`, `labels` and `choices`",
    ]
    if options.counterfactual:
        found.append("the counterfactual partner has the same length in characters, a different gold label, and "
                     "its own verifier run finds exactly its gold option")
    if options.tokenizer:
        found.append(f"with tokenizer `{options.tokenizer}`: every label ` L` is exactly one token appended to the "
                     "prompt's tokens" + (", the partner's too, and both prompts have the same number of tokens"
                                          if options.counterfactual else ""))
    return found


def ladder() -> str:
    sources = [f"- `{name}`: {source.about}" for name, source in SOURCES.items()]
    return "\n".join([
        "## Level ladder",
        "",
        _table(["level", "contents"], [[level, note] for level, note in LEVEL_NOTES.items()]),
        "",
        "Command-line options (`--options`, `--labels`, `--style`, `--sources`, `--distractors`) override a "
        "level's choices. Sources:",
        "",
        *sources,
        "",
    ])


def description(options: Options, levels: list[int], stats: Statistics) -> DatasetDescription:
    return DatasetDescription(
        pretty_name="Multiple-choice label binding, levels " + ", ".join(map(str, levels)),
        summary=("Multiple-choice questions for studying how models map a known answer to its label (correct-"
                 "letter heads, the n-th item of an enumeration). Every answer is decided by a verifier that reads "
                 "only the question's facts and the option texts, and exactly one option is correct. Prompts follow "
                 "the MMLU layout of lm-evaluation-harness (`question`, `A. text` lines, `Answer:`, gold scored as "
                 "the continuation ` A`). Split 80/10/10; a question (its source and facts) never appears in two "
                 "splits, whatever its distractors or labels, and no prompt appears twice."),
        config_notes={f"level{level}": LEVEL_NOTES[level] for level in levels},
        fields={k: v for k, v in FIELD_DOCS.items() if options.counterfactual or not k.startswith("cf_")},
        checks=checks(options),
        seed=options.seed,
        leakage_group="records asking the same question from the same facts, whatever their options or labels",
        task_categories=["multiple-choice", "question-answering"],
        tags=["synthetic", "interpretability", "multiple-choice", "mmlu-format"],
        packages=["sqlglot", "pyarrow"] + (["transformers", "tokenizers"] if options.tokenizer else []),
        extra=stats.markdown() + "\n" + ladder(),
    )
