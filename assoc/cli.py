"""`assoc-gen`: write an association and pattern corpus as a Hub-ready dataset folder (the shared generator command)."""

from __future__ import annotations

import sys
from typing import Sequence

from assoc.generator import GENERATOR
from cards.generator import command_main


def main(argv: Sequence[str] | None = None) -> int:
    return command_main(GENERATOR, argv)


if __name__ == "__main__":
    sys.exit(main())
