"""Ground-truth attribution spans: which characters of a prompt an answer depends on, by construction.

Every generator's records carry an `attribution` column: a list of *targets*. A target names a span
of the answer and the spans of the prompt that determine it:

    {"label": "c_2", "answer": {"start": 3, "end": 4}, "sources": [{"start": 0, "end": 1}, ...]}

Offsets are character offsets, end exclusive, into the texts of the generator's training view
(`view.pieces(record)`): `answer` into the third piece (the answer text), `sources` into the first
(the prompt text). `label` says what the target is (an answer digit `c_2`, a column name, a gold
label, a recalled attribute), for tables and probing. Generators build targets with `target` and
check them with `check` before a record is kept.

With `--tokenizer` (any generator: `cards.generator`), records also carry `attribution_tokens`, the same
targets in token indices (`WithTokenSpans`, `token_targets`): the pieces are tokenised as the trainer
tokenises them (`train.attribution`'s offset mappings) and a character span becomes the tokens overlapping it.
"""

from __future__ import annotations

import functools

import pyarrow as pa

from cards.errors import IntegrityError, UsageError

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


# --- token spans (`--tokenizer`): the same targets in token indices ------------------------------------

TOKENS_FIELD = ("attribution_tokens", ATTRIBUTION)  # the column `--tokenizer` adds
TOKENS_DOC = ("the `attribution` targets in token indices of the corpus's `--tokenizer` (end exclusive): `answer` "
              "into the answer text's tokens, `sources` into the prompt's tokens, both as the trainer tokenises "
              "them (the prompt with the tokenizer's special tokens, an answer prefix apart); a character span "
              "becomes the tokens that overlap it; targets and sources in the same order as `attribution`")


def covering(offsets: list[tuple[int, int]], span: dict) -> list[int]:
    """The tokens whose character `offsets` overlap `span` ({start, end}); special tokens (empty offsets) never do."""
    return [i for i, (s, e) in enumerate(offsets) if max(s, span["start"]) < min(e, span["end"])]


def token_span(offsets: list[tuple[int, int]], span: dict) -> tuple[int, int]:
    """(first, last + 1) of the tokens whose character `offsets` overlap `span` ({start, end}); special tokens
    (empty offsets) never do. IntegrityError when no token does."""
    hit = covering(offsets, span)
    if not hit:
        raise IntegrityError(f"attribution: no token covers the characters {span}")
    return hit[0], hit[-1] + 1


def token_targets(targets: list[dict], prompt_offsets: list[tuple[int, int]],
                  answer_offsets: list[tuple[int, int]]) -> list[dict]:
    """`targets` with each character span mapped to token indices through the pieces' offset mappings."""
    return [target(t["label"], token_span(answer_offsets, t["answer"]),
                   [token_span(prompt_offsets, s) for s in t["sources"]]) for t in targets]


def load_tokenizer(name: str):
    """A fast transformers tokenizer (a folder or a Hub id) for `--tokenizer`, once per process; UsageError if it
    cannot be loaded or has no offset mapping."""
    return _load_tokenizer(name)


@functools.lru_cache(maxsize=None)
def _load_tokenizer(name: str):
    from cards.cli import first_line

    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name)
    except Exception as err:  # OSError, ValueError, EnvironmentError ... all mean "cannot load"
        raise UsageError(f"--tokenizer: cannot load {name!r}: {first_line(err)}") from err
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError(f"--tokenizer: {name!r} is not a fast tokenizer (its token spans need an offset mapping)")
    return tokenizer


class WithTokenSpans:
    """A configuration's `make(index)` whose records also get `attribution_tokens` under `tokenizer` (the name):
    the targets of `attribution`, mapped through `view`'s pieces tokenised as the trainer tokenises them."""

    def __init__(self, make, view, tokenizer: str):
        self.make, self.view, self.tokenizer = make, view, tokenizer

    def __call__(self, index: int):
        candidate = self.make(index)
        if candidate.record is not None:
            from train.attribution import answer_offsets, with_offsets  # the trainer's tokenisation, with offsets

            tokenizer = load_tokenizer(self.tokenizer)
            prompt, _, answer = self.view.pieces(candidate.record)
            _, in_prompt = with_offsets(tokenizer, prompt, self.view.prompt_special_tokens)
            _, in_answer = answer_offsets(tokenizer, self.view, answer)
            candidate.record[TOKENS_FIELD[0]] = token_targets(candidate.record[FIELD[0]], in_prompt, in_answer)
        return candidate


def with_tokens_field(schema: pa.Schema) -> pa.Schema:
    return schema.append(pa.field(*TOKENS_FIELD))


def tokens_checked(tokenizer: str) -> str:
    """The card's line for `--tokenizer`."""
    return (f"`attribution_tokens` (tokenizer `{tokenizer}`): every prompt and answer piece was tokenised with offsets "
            "and its ids compared with the trainer's; every character span of `attribution` covers at least one token")


# --- writing: the column as Arrow, fast ----------------------------------------------------------------


def table(records: list[dict], schema: pa.Schema) -> pa.Table:
    """`pa.Table.from_pylist(records, schema=schema)`, the same table, with every column of type `ATTRIBUTION` built
    from flat lists (`to_arrow`): pyarrow converts nested structs from Python dicts 10-40 times slower."""
    nested = [f.name for f in schema if f.type == ATTRIBUTION]
    if not nested or not records:
        return pa.Table.from_pylist(records, schema=schema)
    rest = pa.Table.from_pylist(records, schema=pa.schema([f for f in schema if f.name not in nested]))
    built = {name: to_arrow([record.get(name) for record in records]) for name in nested}
    return pa.Table.from_arrays([built[f.name] if f.name in built else rest.column(f.name) for f in schema],
                                schema=schema)


def to_arrow(column: list) -> pa.Array:
    """A list of target lists (a record's `attribution` each) as an `ATTRIBUTION` array, via flat offset arrays."""
    if any(targets is None for targets in column):
        return pa.array(column, type=ATTRIBUTION)
    target_offsets, labels, answers, source_offsets, sources = [0], [], ([], []), [0], ([], [])
    for targets in column:
        for t in targets:
            labels.append(t["label"])
            answers[0].append(t["answer"]["start"])
            answers[1].append(t["answer"]["end"])
            for s in t["sources"]:
                sources[0].append(s["start"])
                sources[1].append(s["end"])
            source_offsets.append(len(sources[0]))
        target_offsets.append(len(labels))

    def spans(starts_ends: tuple[list, list]) -> pa.StructArray:
        return pa.StructArray.from_arrays([pa.array(v, pa.int32()) for v in starts_ends], fields=list(SPAN))

    listed = pa.ListArray.from_arrays(pa.array(source_offsets, pa.int32()), spans(sources), type=pa.list_(SPAN))
    targets = pa.StructArray.from_arrays([pa.array(labels, pa.string()), spans(answers), listed], fields=list(TARGET))
    return pa.ListArray.from_arrays(pa.array(target_offsets, pa.int32()), targets, type=ATTRIBUTION)
