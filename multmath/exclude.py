"""Problems kept out of a corpus: `multmath-gen --exclude FILE...`.

Each file is read in the ICoT line format that multmath writes (`A * B||COT #### C`, digits
space-separated and least-significant first; a line without CoT is `A * B||#### C`), such as a
published `test_bigbench.txt`. A line is accepted only if its operands parse and its answer is
a × b (an independent check that the file is what it claims to be); blank lines are skipped.
Any other line, a missing or unreadable file, or a file without a problem is a `UsageError`
naming the file (and the line). Every listed problem is excluded in both orders, a × b and b × a.
`excluded(paths)` is cached per process, so the workers read each file once; `load` reads them
afresh before a corpus is built.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cards.errors import UsageError

REASON = "listed in an --exclude file"  # the rejection reason the corpus core counts per configuration
_NUMBER = r"\d(?: \d)*"  # digits, single spaces between them
_LINE = re.compile(rf"({_NUMBER}) \* ({_NUMBER})\|\|(?:.* )?#### ({_NUMBER})")


@dataclass(frozen=True)
class ExcludeFile:
    """What one --exclude file lists: its name (no folder), sha256 and the problems as (a, b) pairs."""

    name: str
    sha256: str
    problems: frozenset[tuple[int, int]]


def _number(reversed_digits: str) -> int:
    return int(reversed_digits.replace(" ", "")[::-1])


def parse_line(line: str) -> tuple[int, int] | None:
    """(a, b) of an ICoT multiplication line whose answer is a × b, else None."""
    match = _LINE.fullmatch(line)
    if not match:
        return None
    a, b, answer = (_number(group) for group in match.groups())
    return (a, b) if a > 0 and b > 0 and answer == a * b else None


@functools.lru_cache(maxsize=None)
def read_file(path: str) -> ExcludeFile:
    """The problems an ICoT-format file lists; UsageError if it cannot be read or a line is not such a line."""
    try:
        raw = Path(path).read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"--exclude {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--exclude {path}: cannot read it ({type(err).__name__}: {err})") from None
    problems = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        pair = parse_line(line.strip())
        if pair is None:
            shown = line.strip()[:60] + ("..." if len(line.strip()) > 60 else "")
            raise UsageError(f"--exclude {path}: line {number} is not an ICoT multiplication line "
                             f"'A * B||COT #### C' whose answer is a × b: {shown!r}")
        problems.add(pair)
    if not problems:
        raise UsageError(f"--exclude {path}: lists no problem")
    return ExcludeFile(Path(path).name, hashlib.sha256(raw).hexdigest(), frozenset(problems))


def load(paths: tuple[str, ...]) -> frozenset[tuple[int, int]]:
    """`excluded(paths)` read afresh (a file may have changed since an earlier corpus of this process)."""
    read_file.cache_clear()
    excluded.cache_clear()
    return excluded(paths)


@functools.lru_cache(maxsize=None)
def excluded(paths: tuple[str, ...]) -> frozenset[tuple[int, int]]:
    """Every problem the files list, in both orders (a, b) and (b, a)."""
    pairs = set()
    for path in paths:
        for a, b in read_file(path).problems:
            pairs.update(((a, b), (b, a)))
    return frozenset(pairs)
