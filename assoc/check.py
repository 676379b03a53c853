"""The independent check of an assoc record: re-derive the answer from the prompt text alone and
compare it with the completion, then check that the attribution spans hold what they claim.

Nothing here reads the maker's variables: each `solve_*` parses the rendered prompt (words split at
spaces) and applies the kind's rule; `check_record(record, kb)` returns None for a good record or the
reason it is wrong. Analogies are solved with the facts knowledge base (`assoc.analogy.solve`).
"""

from __future__ import annotations

from assoc.levels import BRACKETS


class Unsolvable(Exception):
    """The prompt does not determine one answer under its kind's rule."""


def solve_kv(words: list[str]) -> list[str]:
    if len(words) < 6 or words[-3] != "." or words[-1] != "=":
        raise Unsolvable("kv: the prompt does not end with '. KEY ='")
    body, query = words[:-3], words[-2]
    if len(body) % 4 != 3 or any(body[i] != "," for i in range(3, len(body), 4)):
        raise Unsolvable("kv: the context is not 'KEY = VALUE' pairs separated by ','")
    pairs = [body[i:i + 3] for i in range(0, len(body), 4)]
    if any(eq != "=" for _, eq, _ in pairs):
        raise Unsolvable("kv: a pair is not 'KEY = VALUE'")
    keys = [k for k, _, _ in pairs]
    if len(set(keys)) != len(keys) or query not in keys:
        raise Unsolvable("kv: the queried key is missing or a key is bound twice")
    return [pairs[keys.index(query)][2]]


def solve_repeat(words: list[str]) -> list[str]:
    """The smallest period p shown at least twice in full (words[i] == words[i - p] throughout)."""
    n = len(words)
    for p in range(1, n // 2 + 1):
        if all(words[i] == words[i - p] for i in range(p, n)):
            return [words[n - p]]
    raise Unsolvable("repeat: no motif is shown twice")


def solve_brackets(words: list[str]) -> list[str]:
    closers = {c: o for o, c in BRACKETS.items()}
    stack = []
    for w in words:
        if w in BRACKETS:
            stack.append(w)
        elif w in closers:
            if not stack or stack.pop() != closers[w]:
                raise Unsolvable("brackets: a closing bracket does not match")
    if not stack:
        raise Unsolvable("brackets: nothing is left open")
    return [BRACKETS[o] for o in reversed(stack)]


def solve_copy(words: list[str]) -> list[str]:
    if len(words) < 2 or words[-1] not in ("->", "<-"):
        raise Unsolvable("copy: the prompt does not end with -> or <-")
    return words[:-1] if words[-1] == "->" else words[-2::-1]


def solve_induction(words: list[str]) -> list[str]:
    query = words[-1]
    earlier = [i for i, w in enumerate(words[:-1]) if w == query]
    if len(earlier) != 1 or earlier[0] + 1 >= len(words) - 1:
        raise Unsolvable("induction: the last word does not occur exactly once earlier with a word after it")
    return [words[earlier[0] + 1]]


SOLVERS = {"kv": solve_kv, "repeat": solve_repeat, "brackets": solve_brackets, "copy": solve_copy,
           "induction": solve_induction}


def solve(kind: str, prompt: str, kb=None) -> list[str]:
    """The answer words the prompt's rule gives; Unsolvable if it gives none or several."""
    if kind == "analogy":
        from assoc.analogy import solve as solve_analogy
        return solve_analogy(prompt, kb)
    return SOLVERS[kind](prompt.split(" "))


def check_record(record: dict, kb=None) -> str | None:
    """None if the record's completion is the answer its prompt determines and its attribution spans hold
    the words that determine it; else why not."""
    try:
        expected = solve(record["kind"], record["prompt"], kb)
    except Unsolvable as problem:
        return str(problem)
    if record["completion"] != " " + " ".join(expected):
        return f"{record['kind']}: the completion is not the answer the prompt determines"
    return check_spans(record)


def check_spans(record: dict) -> str | None:
    """The attribution texts agree with the rule: a copied or recalled word is the word at its source; a
    kv target's sources are the queried key and the value after it; a closer's source is its opener; an
    analogy's are X, a and Y."""
    prompt, answer, kind = record["prompt"], record["completion"], record["kind"]
    for t in record["attribution"]:
        said = answer[t["answer"]["start"]:t["answer"]["end"]]
        sources = [prompt[s["start"]:s["end"]] for s in t["sources"]]
        if kind == "kv":
            key, value = sources
            query = prompt.split(" ")[-2]
            after = prompt[t["sources"][0]["end"]:t["sources"][1]["start"]]
            good = key == query and value == said and after == " = "
        elif kind == "brackets":
            good = sources in ([o] for o, c in BRACKETS.items() if c == said)
        elif kind == "induction":
            good = len(sources) == 2 and sources[0] == prompt.split(" ")[-1] and sources[1] == said
        elif kind == "analogy":
            words = prompt.split(" ")
            good = sources == [words[0], words[2], words[4]]
        else:  # repeat, copy: every source is the answer word itself
            good = bool(sources) and all(s == said for s in sources)
        if not good:
            return f"{kind}: attribution target {t['label']!r} does not hold the words that determine it"
    return None
