"""Command-line conventions shared by every console script of the project.

Bad input is one line on stderr and exit status 2, never a traceback. `Parser` makes argparse
follow that rule (and `refuse_empty` refuses an option given as the empty string), library code
raises the errors of `cards.errors`, and `run` turns any of them into that line and status (with
`INTERP_ZOO_TRACEBACK=1`, the full traceback as well); an interrupt is `prog: interrupted`, status 130.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Callable, Sequence

from cards.errors import UsageError, ZooError

TRACEBACK_SWITCH = "INTERP_ZOO_TRACEBACK"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line, not the usage block."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(message)


def refuse_empty(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """UsageError for an option given as the empty string (`--out ""` must not quietly mean the default)."""
    for action in parser._actions:
        if action.option_strings and getattr(args, action.dest, None) == "":
            raise UsageError(f"{action.option_strings[-1]}: expected a value, got an empty string")


def first_line(err: Exception) -> str:
    """An exception from a library as the tail of a one-line error: its first line, at most 300 characters."""
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def run(prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Call `main(argv)`; report a ZooError as `prog: error: ...` and return 2."""
    try:
        status = main(argv)
        sys.stdout.flush()
        return status
    except ZooError as err:
        if os.environ.get(TRACEBACK_SWITCH, "") not in ("", "0"):
            traceback.print_exc()
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`zoo list | head`): stop quietly, like `yes | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type accepting integers >= `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def parse_levels(text: str, lowest: int, highest: int) -> list[int]:
    """'3' -> [3]; '1-4' -> [1, 2, 3, 4]; '1,3,5' -> [1, 3, 5]. Raises UsageError when out of range."""
    levels: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            start, stop = int(first), int(last or first)
            if start > stop:
                raise ValueError
            levels.extend(range(start, stop + 1))
    except ValueError:
        raise UsageError(f"--level: expected a level, a range like 1-4, or a list like 1,3; got {text!r}") from None
    bad = [lvl for lvl in levels if not lowest <= lvl <= highest]
    if bad:
        raise UsageError(f"--level: level {bad[0]} does not exist (levels are {lowest} to {highest})")
    return sorted(set(levels))
