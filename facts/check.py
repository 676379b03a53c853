"""The label check of facts: read a record's prompts back and look their answers up in the knowledge base.

`check_record` never trusts the fields that made the prompt: it parses each prompt (the record's and its
partners') into (style, relation, subject) from its text alone (`facts.phrasings.parse`), follows the
relation through the knowledge base's stored attributes itself (a two-hop relation step by step along its
`via` chain), and compares the result with the completion. It also checks the spans, the partners' word
counts (equal to the prompt's) and the attribution targets.
"""

from __future__ import annotations

from cards import attribution
from cards.errors import IntegrityError
from facts.kb import RELATIONS, KnowledgeBase
from facts.phrasings import parse, phrase

CHECKS = [
    "each prompt (and each counterfactual partner's) parses back, from its text alone, into exactly one "
    "phrasing, relation and subject",
    "the knowledge base's stored attribute for that subject and relation (followed hop by hop for a two-hop "
    "relation) is the completion's word (the partner's answer for a partner)",
    "the subject and relation spans cover the parsed subject and the relation phrase; the answer span covers "
    "the answer word",
    "each partner has the prompt's phrasing and the same number of words, another subject (same relation) or "
    "another relation (same subject), and another answer",
]


def look_up(kb: KnowledgeBase, subject: str, relation: str) -> str | None:
    """The stored attribute, following a two-hop relation through its chain; None if there is none."""
    r = RELATIONS.get(relation)
    steps = r.via if r and r.hops == 2 else (relation,)
    for step in steps:
        subject = kb.attributes.get(subject, {}).get(step)
        if subject is None:
            return None
    return subject


def _answer_of(kb: KnowledgeBase, prompt: str) -> tuple[tuple[str, str, str] | None, str | None]:
    parsed = parse(prompt)
    return parsed, (look_up(kb, parsed[2], parsed[1]) if parsed else None)


def check_record(record: dict, kb: KnowledgeBase) -> str | None:
    """None when the record is sound, else what is wrong."""
    parsed, value = _answer_of(kb, record["prompt"])
    if parsed is None:
        return "prompt does not parse into one phrasing"
    style, relation, subject = parsed
    if value is None or record["completion"] != " " + value or record["answer"] != value:
        return "answer is not the knowledge base's"
    s, p = record["subject_span"], record["relation_span"]
    prompt = record["prompt"]
    if prompt[s["start"]:s["end"]] != subject or prompt[p["start"]:p["end"]] != phrase(style, relation):
        return "subject or relation span wrong"
    words = len(prompt.split())
    for prefix, same in (("cf_subject", 1), ("cf_relation", 2)):
        if record[f"{prefix}_prompt"] is None:
            continue
        other, other_value = _answer_of(kb, record[f"{prefix}_prompt"])
        if other is None or other_value != record[f"{prefix}_answer"] or other_value == value:
            return f"{prefix} partner's answer wrong or unchanged"
        if other[0] != style or other[same] != parsed[same] or other[3 - same] == parsed[3 - same] \
                or len(record[f"{prefix}_prompt"].split()) != words:
            return f"{prefix} partner is not a minimal pair of equal length"
    try:
        attribution.check(record["attribution"], prompt, record["completion"])
    except IntegrityError as err:
        return str(err)
    target = record["attribution"][0]["answer"]
    if record["completion"][target["start"]:target["end"]] != value:
        return "attribution answer span wrong"
    return None
