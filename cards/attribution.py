"""Ground-truth attribution spans: which characters of a prompt an answer depends on, by construction.

Every generator's records carry an `attribution` column: a list of *targets*. A target names a span
of the answer and the spans of the prompt that determine it:

    {"label": "c_2", "answer": {"start": 3, "end": 4}, "sources": [{"start": 0, "end": 1}, ...]}

Offsets are character offsets, end exclusive, into the texts of the generator's training view
(`view.pieces(record)`): `answer` into the third piece (the answer text), `sources` into the first
(the prompt text). `label` says what the target is (an answer digit `c_2`, a column name, a gold
label, a recalled attribute), for tables and probing. Generators build targets with `target` and
check them with `check` before a record is kept.
"""

from __future__ import annotations

import pyarrow as pa

from cards.errors import IntegrityError

SPAN = pa.struct([("start", pa.int32()), ("end", pa.int32())])
TARGET = pa.struct([("label", pa.string()), ("answer", SPAN), ("sources", pa.list_(SPAN))])
ATTRIBUTION = pa.list_(TARGET)
FIELD = ("attribution", ATTRIBUTION)  # the schema field every generator adds
DOC = ("what determines the answer, by construction: targets, each an answer span (character offsets "
       "into the answer text) with the prompt spans (character offsets into the prompt) it depends on")


def span(start: int, end: int) -> dict:
    return {"start": start, "end": end}


def target(label: str, answer: tuple[int, int], sources: list[tuple[int, int]]) -> dict:
    """One target: `answer` and each of `sources` are (start, end) character offsets."""
    return {"label": label, "answer": span(*answer), "sources": [span(*s) for s in sources]}


def find(text: str, needle: str, start: int = 0) -> tuple[int, int]:
    """The (start, end) of the first `needle` in `text` at or after `start`; IntegrityError if absent."""
    at = text.find(needle, start)
    if at < 0:
        raise IntegrityError(f"attribution: {needle!r} is not in {text!r}")
    return at, at + len(needle)


def check(targets: list[dict], prompt: str, answer: str) -> None:
    """Refuse targets whose spans are empty or fall outside their texts."""
    if not targets:
        raise IntegrityError("attribution: a record has no targets")
    for t in targets:
        spans = [(t["answer"], answer)] + [(s, prompt) for s in t["sources"]]
        if len(spans) == 1:
            raise IntegrityError(f"attribution: target {t['label']!r} has no sources")
        for s, text in spans:
            if not 0 <= s["start"] < s["end"] <= len(text):
                raise IntegrityError(f"attribution: span {s} of {t['label']!r} is outside {text!r}")
