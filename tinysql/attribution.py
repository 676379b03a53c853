"""TinySQL's ground-truth attribution spans (`cards.attribution`): where each part of the SQL comes from.

The SQL is scanned once, left to right; its targets, in that order:

- every table and column name (`column:t.c`, `table:t`; a qualified `t.c` gives both, an alias `r.c` the
  column of the aliased table): sources are the name's place in the table's `CREATE TABLE` of the prompt
  and every mention of it in the English request (the word the request calls it by: the name itself, or
  with `--synonyms` the synonym). An unqualified column that more than one context table has takes the
  mentions and definitions of all of them (the name is the same word);
- aggregates, directions and set keywords (`SUM`, `ASC`, `DISTINCT`, `UNION`, ...): sources are the
  request's occurrences of the words the validator requires for them (`tinysql.english.EVIDENCE`);
- literals (`'2019-04-24'`, `12`, `TRUE`): sources are the value's occurrences in the request.

Mentions are whole words, case-insensitive, found left to right, the longest at each word (`patient
number` is a column's mention, not also COUNT's `number`). A keyword or literal without a source word is no
target. Offsets go into the training view's pieces (`prompt`, `completion`); a chat-only corpus
(`--format chat`, no `prompt` column) has them in the user turn's and the assistant turn's content.
`targets(record, spec, names)` is called by `tinysql.generator` on every record, which it then checks.
"""

from __future__ import annotations

import functools
import json
import re

from cards import attribution
from cards.corpus import Candidate
from cards.errors import IntegrityError
from tinysql.english import EVIDENCE

WORD = re.compile(r"\w+")
SQL_TOKENS = re.compile(r"'(?:[^']|'')*'|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?|\d+(?:\.\d+)?")
CREATE_TABLE = re.compile(r"CREATE TABLE\s+[\"`\[]?([A-Za-z_]\w*)", re.IGNORECASE)
COLUMN_DEF = re.compile(r"[(,]\s*[\"`\[]?([A-Za-z_]\w*)")
REJECTED = "attribution spans failed their check"
BOOLEANS = {"TRUE": "true", "FALSE": "false"}
UPPER_WORD = re.compile(r"\b[A-Z]+\b")
KEYWORDS = frozenset(EVIDENCE)

CHECKED = ("attribution spans: each table and column name of the SQL points at its definition in the context "
           "and its mentions in the request, each aggregate, direction, set keyword and literal at the request's "
           "words for it; every span was read back (the texts there are the name, its mention or the value) and "
           "lies inside its text")
FIELD_DOC = (f"{attribution.DOC}. Targets: each table/column name of the SQL (sources: its `CREATE TABLE` "
             "definition and every mention of it in the request, synonyms included), each aggregate, ORDER BY "
             "direction and set keyword (sources: the request's evidence words for it) and each literal (sources: "
             "its occurrences in the request); a chat-only corpus has its offsets in the two turns' contents")


def with_targets(candidate: Candidate, format: str, spec: dict | None = None, names: dict | None = None) -> Candidate:
    """The candidate with its record's `attribution` filled and checked; a record whose spans fail their check
    is rejected (`REJECTED`), a rejected candidate stays as it is. `spec` and `names` are the query the record
    was written from (by default read back from its `clauses`)."""
    record = candidate.record
    if record is None:
        return candidate
    if spec is None or names is None:
        spec = json.loads(record["clauses"])
        names = spec["names"]
    prompt, answer = pieces(record, format)
    try:
        record["attribution"] = targets(prompt, answer, record["english_prompt"], record["create_statement"],
                                        spec, names)
        attribution.check(record["attribution"], prompt, answer)
    except IntegrityError:
        return Candidate(None, REJECTED)
    return candidate


def pieces(record: dict, format: str) -> tuple[str, str]:
    """(prompt text, answer text) the offsets go into."""
    if format == "chat":
        return record["messages"][0]["content"], record["messages"][1]["content"]
    return record["prompt"], record["completion"]


def targets(prompt: str, sql: str, english: str, create: str, spec: dict, names: dict) -> list[dict]:
    """The targets of one item: `english` and `create` are where they sit in `prompt`, `sql` is the answer."""
    english_at = prompt.find(english)
    create_at = prompt.find(create, english_at + len(english))
    if english_at < 0 or create_at < 0:
        raise IntegrityError("tinysql attribution: the request or the context is not in the prompt")
    words = _words(names, sql)
    sources = _mentions(english, words, english_at)  # key -> its source spans in the prompt
    for key, (s, e) in _definitions(create, names).items():
        sources.setdefault(key, []).append((s + create_at, e + create_at))
    _read_back(sources, words, prompt)
    tables, columns = names["tables"], names["columns"]
    owners: dict[str, list[str]] = {}  # column -> the tables that have it
    for key in columns:
        table, _, column = key.partition(".")
        owners.setdefault(column, []).append(table)
    aliases = dict(_aliases(spec))
    found = []

    def add(label: str, start: int, end: int, spans: list | None) -> None:
        if spans:
            found.append(attribution.target(label, (start, end), sorted(set(spans))))

    for token in SQL_TOKENS.finditer(sql):
        text, start, end = token.group(), token.start(), token.end()
        if text in owners:
            held = owners[text]
            add(f"column:{held[0]}.{text}" if len(held) == 1 else f"column:{text}", start, end,
                [span for t in held for span in sources.get(("column", f"{t}.{text}"), ())])
        elif text in tables:
            add(f"table:{text}", start, end, sources.get(("table", text)))
        elif "." in text:
            qualifier, column = text.split(".", 1)
            table = aliases.get(qualifier, qualifier if qualifier in tables else None)
            if qualifier in tables:
                add(f"table:{qualifier}", start, start + len(qualifier), sources.get(("table", qualifier)))
            if f"{table}.{column}" in columns:
                add(f"column:{table}.{column}", start + len(qualifier) + 1, end, sources.get(("column", f"{table}.{column}")))
        elif text in EVIDENCE:
            add(f"keyword:{text}", start, end, sources.get(("keyword", text)))
        elif text.startswith("'"):
            add(f"value:{text}", start, end, _literal(english, english_at, text))
        elif text[0].isdigit():
            add(f"value:{text}", start, end, _value(english, english_at, text))
        elif text in BOOLEANS:
            add(f"value:{text}", start, end, _value(english, english_at, BOOLEANS[text]))
    return found


def _definitions(create: str, names: dict) -> dict[tuple, tuple[int, int]]:
    """Where each table and column is named in the context: {("table", t) or ("column", "t.c"): (start, end)}.
    A column is the first `( name` or `, name` of its table's body that is a column of that table (a type's
    parameters are numbers)."""
    found = {}
    heads = list(CREATE_TABLE.finditer(create))
    for head, after in zip(heads, heads[1:] + [None]):
        table = head.group(1)
        found[("table", table)] = head.span(1)
        for column in COLUMN_DEF.finditer(create, head.end(), len(create) if after is None else after.start()):
            key = f"{table}.{column.group(1)}"
            if key in names["columns"]:
                found.setdefault(("column", key), column.span(1))
    return found


def _aliases(spec: dict) -> list[tuple[str, str]]:
    """(alias, table) of every aliased table of the query and its nested query."""
    found = [(t["alias"], t["table"]) for t in spec.get("tables") or [] if t.get("alias")]
    nested = spec.get("nested")
    return found + (_aliases(nested) if isinstance(nested, dict) else [])


def _words(names: dict, sql: str) -> dict[str, list[tuple]]:
    """Mention word (lower case) -> the keys it mentions: every table and column, and the evidence words of
    the keywords this SQL uses."""
    words: dict[str, list[tuple]] = {}
    for table, word in names["tables"].items():
        words.setdefault(_phrase(word), []).append(("table", table))
    for column, word in names["columns"].items():
        words.setdefault(_phrase(word), []).append(("column", column))
    for keyword in sorted(KEYWORDS.intersection(UPPER_WORD.findall(sql))):
        for phrase in _evidence_phrases(keyword):
            words.setdefault(phrase, []).append(("keyword", keyword))
    return words


@functools.cache
def _evidence_phrases(keyword: str) -> tuple[str, ...]:
    return tuple(_phrase(word) for word in EVIDENCE[keyword])


@functools.lru_cache(maxsize=1 << 16)
def _phrase(text: str) -> str:
    """A name or evidence word as the words it is made of, lower case, joined by single spaces."""
    return " ".join(WORD.findall(text.lower()))


def _mentions(text: str, words: dict[str, list[tuple]], offset: int = 0) -> dict[tuple, list[tuple[int, int]]]:
    """Occurrences of `words` (phrases) in `text`, matched word by word, case-insensitive: left to right, the
    longest phrase that starts at a word is a mention, and the scan goes on after it. Spans are shifted by
    `offset` (where `text` sits in the prompt)."""
    starting: dict[str, list] = {}  # first word -> (words of the phrase, its keys), longest phrase first
    for phrase, keys in words.items():
        if phrase:
            parts = _parts(phrase)
            starting.setdefault(parts[0], []).append((parts, keys))
    for phrases in starting.values():
        if len(phrases) > 1:
            phrases.sort(key=lambda phrase: -len(phrase[0]))
    low = text.lower()
    seen = WORD.findall(low)
    spans = None  # the words' (start, end), found only when a mention needs them
    found: dict[tuple, list[tuple[int, int]]] = {}
    at = 0
    while at < len(seen):
        for parts, keys in starting.get(seen[at], ()):
            if len(parts) == 1 or tuple(seen[at:at + len(parts)]) == parts:
                spans = spans or [m.span() for m in WORD.finditer(low)]
                for key in keys:
                    found.setdefault(key, []).append((spans[at][0] + offset, spans[at + len(parts) - 1][1] + offset))
                at += len(parts)
                break
        else:
            at += 1
    return found


@functools.lru_cache(maxsize=1 << 16)
def _parts(phrase: str) -> tuple[str, ...]:
    """A phrase's words."""
    return tuple(phrase.split(" "))


def _occurrences(text: str, word: str) -> list[tuple[int, int]]:
    """(start, end) of `word` in `text` where it is a whole word (a number: not part of a longer number)."""
    found, at = [], text.find(word)
    while at >= 0:
        end = at + len(word)
        before = text[at - 1] if at else " "
        after = text[end:end + 2]
        if not (before.isalnum() or before in "_.") and not (after[:1].isalnum() or after[:1] == "_"
                                                            or after[:1] == "." and after[1:].isdigit()):
            found.append((at, end))
        at = text.find(word, at + 1)
    return found


def _literal(english: str, english_at: int, text: str) -> list[tuple[int, int]]:
    """A string literal's sources: its quoted value in the request, or else its bare value (LIKE's `%` left out)."""
    value = text[1:-1].replace("''", "'").strip("%")
    spans = _occurrences(english, value) if value else []
    quoted = [(s - 1, e + 1) for s, e in spans if s and english[s - 1] == "'" and english[e:e + 1] == "'"]
    return [(s + english_at, e + english_at) for s, e in quoted or spans]


def _value(english: str, english_at: int, word: str) -> list[tuple[int, int]]:
    """A number's or boolean's sources: its occurrences (as `word`, lower case) in the request."""
    return [(s + english_at, e + english_at) for s, e in _occurrences(english.lower(), word)]


def _read_back(sources: dict[tuple, list], words: dict[str, list[tuple]], prompt: str) -> None:
    """Every source span reads (case-insensitively) as the name it defines or a word that mentions its key."""
    for key, spans in sources.items():
        own = key[1].rpartition(".")[2].lower()
        for s, e in spans:
            text = prompt[s:e].lower()
            if not (text == own or key in words.get(text, ()) or _phrase(text) == own
                    or key in words.get(_phrase(text), ())):
                raise IntegrityError(f"tinysql attribution: a source of {key} reads otherwise in {prompt!r}")
