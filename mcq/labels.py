"""Option labels and the MMLU-style prompt: label schemes, label styles, rendering, the label and single-token checks.

A prompt is `{question}\\n{label line per option}\\nAnswer:` (the lm-evaluation-harness MMLU layout);
an option line is the styled label, a space and the option text (`A. red`, `(A) red`, `A: red`);
the gold continuation is a space and the bare label (` A`), whatever the style.
"""

from __future__ import annotations

import random
import string

SCHEMES = {
    "abcd": "A B C D ... in order",
    "lower": "a b c d ... in order",
    "numbers": "1 2 3 4 ... in order",
    "random": "distinct random capital letters, e.g. Q M X B",
    "random-no-abcd": "distinct random capital letters from E to Z, never A-D, e.g. Q M X F",
    "shuffled": "the first k capital letters in a shuffled order (never the canonical one), e.g. C A D B",
    "shuffled-numbers": "1 2 ... k in a shuffled order (never the canonical one), e.g. 3 1 4 2",
}
STYLES = {"dot": "{}.", "paren": "({})", "colon": "{}:"}
MAX_OPTIONS = 10


NOT_ABCD = string.ascii_uppercase[4:]


def make_labels(scheme: str, k: int, rng: random.Random) -> list[str]:
    """The k labels of one record in `scheme`."""
    if scheme == "random":
        return rng.sample(string.ascii_uppercase, k)
    if scheme == "random-no-abcd":
        return rng.sample(NOT_ABCD, k)
    if scheme in ("shuffled", "shuffled-numbers"):
        canonical = in_order(scheme, k)
        shuffled = canonical
        while shuffled == canonical and k > 1:
            shuffled = rng.sample(canonical, k)
        return shuffled
    return in_order(scheme, k)


def in_order(scheme: str, k: int) -> list[str]:
    """The k labels of an ordered scheme (and the canonical order a shuffled scheme avoids)."""
    if scheme in ("abcd", "shuffled"):
        return list(string.ascii_uppercase[:k])
    if scheme == "lower":
        return list(string.ascii_lowercase[:k])
    if scheme in ("numbers", "shuffled-numbers"):
        return [str(i) for i in range(1, k + 1)]
    raise ValueError(f"unknown label scheme {scheme!r}")


def label_problem(scheme: str, labels: list[str]) -> str | None:
    """Why `labels` are not a valid label set of `scheme` (None when they are), decided from the scheme's
    definition alone: distinct, from the scheme's alphabet, in order or never in order as it requires."""
    k = len(labels)
    if len(set(labels)) != k:
        return "labels: not distinct"
    if scheme.startswith("random"):
        alphabet = NOT_ABCD if scheme == "random-no-abcd" else string.ascii_uppercase
        return None if all(label in alphabet for label in labels) else f"labels: not all in {scheme}'s letters"
    canonical = in_order(scheme, k)
    if sorted(labels) != sorted(canonical):
        return f"labels: not the {scheme} set"
    if scheme.startswith("shuffled") and k > 1 and labels == canonical:
        return "labels: shuffled scheme in canonical order"
    if not scheme.startswith("shuffled") and labels != canonical:
        return "labels: not in order"
    return None


def option_line(label: str, text: str, style: str) -> str:
    return f"{STYLES[style].format(label)} {text}"


def render_prompt(question: str, choices: list[str], labels: list[str], style: str) -> str:
    """The MMLU-style prompt; the model is scored on the continuation `continuation(label)`."""
    lines = [question, *(option_line(label, text, style) for label, text in zip(labels, choices)), "Answer:"]
    return "\n".join(lines)


def continuation(label: str) -> str:
    return " " + label


def multi_token_labels(tokenizer, prompt: str, labels: list[str]) -> list[str]:
    """The labels whose continuation ` L` is not exactly one token appended to the prompt's tokens."""
    base = tokenizer.encode(prompt, add_special_tokens=False)
    bad = []
    for label in labels:
        ids = tokenizer.encode(prompt + continuation(label), add_special_tokens=False)
        if len(ids) != len(base) + 1 or ids[: len(base)] != base:
            bad.append(label)
    return bad


def token_count(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))
