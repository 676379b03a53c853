"""`facts-gen`: write a factual-recall corpus over a synthetic knowledge base as a Hub-ready dataset folder
(the shared generator command)."""

from __future__ import annotations

import sys
from typing import Sequence

from cards.generator import command_main
from facts.generator import GENERATOR


def main(argv: Sequence[str] | None = None) -> int:
    return command_main(GENERATOR, argv)


if __name__ == "__main__":
    sys.exit(main())
