"""mcq's ground-truth attribution spans (`cards.attribution`): what the gold label depends on.

One target per record, `answer_label`: the label in the answer text ` L`. Its sources, in the prompt:
the gold option's label and text, and the facts the gold answer comes from, per source:

- context: the sentence that binds the queried entity to the answer (`The cup is red.`, `kel = 42`) and the
  entity in the question;
- arithmetic (sum, difference, product) and multiplication: the two operands in the question;
- arithmetic (largest, smallest) and order: the comparison word of the question (`largest`, `first`) and
  the text of every option, since the gold wins against each of them;
- sql: the schema and the request.

Spans are computed from the record's parts (the question, each option line of the MMLU layout) and read
back: every span's text is what it claims to be, before `cards.attribution.check`.
"""

from __future__ import annotations

from cards import attribution
from cards.errors import IntegrityError
from mcq.labels import STYLES, continuation, option_line
from mcq.sources import RELATIONS

CHECKED = ("attribution spans: the gold label's sources are the gold option's label and text and the facts the "
           "answer comes from (the binding sentence and queried entity, the operands, the comparison word and every "
           "option, or the schema and request); every span was read back and lies inside the prompt")
FIELD_DOC = (f"{attribution.DOC}. One target, `answer_label` (the label in ` L`); sources: the gold option's label "
             "and text and the facts the answer comes from (context: the binding sentence and the queried entity; "
             "arithmetic and multiplication: the operands; largest/smallest/order: the comparison word and every "
             "option's text; sql: the schema and the request)")


def targets(record: dict, facts: dict) -> list[dict]:
    """The attribution target of an mcq record (`facts` its source's structured facts), checked."""
    prompt, question, gold = record["prompt"], record["question"], record["answer"]
    options = _options(record)
    label, text = options[gold]
    expected = {label: record["answer_label"], text: record["choices"][gold]}
    sources = [label, text]
    for start, word in _facts(record["source"], facts, question, record["choices"]):
        sources.append((start, start + len(word)))
        expected[sources[-1]] = word
    if record["source"] in ("arithmetic", "order") and facts["kind"] in ("largest", "smallest", "first", "last",
                                                                           "longest", "shortest"):
        for i, (_, other) in enumerate(options):
            sources.append(other)
            expected[other] = record["choices"][i]
    if any(prompt[s:e] != want for (s, e), want in expected.items()):
        raise IntegrityError(f"mcq attribution: a span does not read back in {prompt!r}")
    answer = continuation(record["answer_label"])
    found = [attribution.target("answer_label", (len(answer) - len(record["answer_label"]), len(answer)),
                                sorted(set(sources)))]
    attribution.check(found, prompt, answer)
    return found


def _options(record: dict) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Per option, the (start, end) of its label and of its text in the prompt (the MMLU layout)."""
    at, found = len(record["question"]) + 1, []
    head = STYLES[record["label_style"]]
    for label, text in zip(record["labels"], record["choices"]):
        line = option_line(label, text, record["label_style"])
        label_at = at + head.index("{}")
        found.append(((label_at, label_at + len(label)), (at + len(line) - len(text), at + len(line))))
        at += len(line) + 1
    return found


def _facts(source: str, facts: dict, question: str, choices: list[str]) -> list[tuple[int, str]]:
    """(start, text) in the question of each fact the answer comes from."""
    if source == "context":
        _, _, fact, asked = RELATIONS[facts["relation"]]
        value = dict(facts["pairs"])[facts["query"]]
        sentence = fact.format(e=facts["query"], v=value)
        entity_at = len(question) - len(asked.format(e=facts["query"])) + asked.index("{e}")
        return [(_find(question, sentence), sentence), (entity_at, facts["query"])]
    if source == "sql":
        return [(_find(question, facts["create"]), facts["create"]), (_find(question, facts["request"]),
                                                                       facts["request"])]
    if "a" in facts:  # sum, difference, product, multiplication: `What is a <op> b?`
        a, b = str(facts["a"]), str(facts["b"])
        a_at = _find(question, a)
        return [(a_at, a), (_find(question, b, a_at + len(a)), b)]
    return [(_find(question, facts["kind"]), facts["kind"])]  # largest, smallest, first, last, longest, shortest


def _find(text: str, needle: str, start: int = 0) -> int:
    return attribution.find(text, needle, start)[0]
