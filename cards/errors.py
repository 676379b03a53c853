"""The project's errors: what went wrong, told apart by class rather than by message text.

- `UsageError`: bad input from the user (an option, a path, a file that is not what it should be);
- `IntegrityError`: an artefact that fails a check (a sha256 mismatch, a corrupt registry or card);
- `ExternalError`: a tool or service the project calls failed (git, olah, a Hub endpoint).

All three are `ZooError`s: a console script reports any of them as one line on stderr and exits
with status 2 (`cards.cli.run`). Set `INTERP_ZOO_TRACEBACK=1` to see the full traceback, including
the library exception a message was made from (it is kept as `__cause__`).
"""

from __future__ import annotations


class ZooError(Exception):
    """Anything the project reports as one line and exit status 2."""


class UsageError(ZooError):
    """Bad input from the user."""


class IntegrityError(ZooError):
    """An artefact that fails a check: a hash mismatch, a corrupt registry or card."""


class ExternalError(ZooError):
    """A tool or service the project relies on failed: git, olah, a Hub endpoint."""
