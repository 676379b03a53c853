"""A Hub-ready dataset folder, written atomically, and the rules for where one may be written.

Layout: `data/<config>/<split>-<fingerprint>-NNNNN-of-NNNNN.parquet` plus a `README.md` (the dataset
card, whose YAML header declares the configs; multmath also writes `icot/`). The fingerprint is a
hash of the configuration's parquet bytes: `datasets.load_dataset(<folder>)` caches a local folder by
the file patterns its card declares, not by the files, so without it a corpus regenerated into the
same folder would be read back from the stale cache.

Everything is written into a hidden temporary folder `.OUT.tmp-PID-XXXX` beside the target and
renamed into place at the end, so an interrupted run leaves no half-written output; SIGTERM and
SIGINT end a run as `KeyboardInterrupt`, which removes that folder. A run that could not clean up
(SIGKILL, power loss) leaves it behind: the next run to the same target removes every
`.OUT.tmp-PID-*` and `.OUT.old-PID` folder whose process PID is gone, and nothing else.

`check_target` decides, before any work, whether a target may be written (symlinks resolved): never
the root, the home folder, the current folder or a folder above it; an existing folder only with
overwrite, and only when it is empty or a corpus folder this project wrote (`replaceable`: a card
with `interp_zoo` metadata and nothing but `data/*.parquet` and `icot/*.txt` beside it); and only
where the temporary folder can actually be created.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from cards.errors import IntegrityError, UsageError

if TYPE_CHECKING:  # imported where the parquet files are written: a generator's --help needs neither
    import pyarrow as pa
    import pyarrow.parquet as pq

ROWS_PER_SHARD = 250_000
ROWS_PER_GROUP = 10_000
CORPUS_CONTENTS = {"README.md": None, "data": ".parquet", "icot": ".txt"}  # entry: None (a file) or its files' suffix
INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


def check_target(out: str | Path, overwrite: bool) -> Path:
    """Refuse (UsageError), before any work, an output folder that may not be written; return its real path."""
    if str(out) == "":
        raise UsageError("output folder: expected a path, got an empty string")
    target = Path(out).resolve()
    why = protected(target)
    if why:
        raise UsageError(f"refusing to write a corpus to {out}: {target} is {why}")
    if target.exists() and not overwrite:
        raise UsageError(f"output folder {out} already exists (pass --overwrite to replace it)")
    if target.exists() and not target.is_dir():
        raise UsageError(f"output path {out} exists and is not a folder")
    if target.exists():
        why = replaceable(target)
        if why:
            raise UsageError(f"refusing to replace {out}: {why}")
    if not target.parent.is_dir():
        raise UsageError(f"cannot create {out}: folder {target.parent} does not exist")
    try:
        os.rmdir(_make_temp(target))  # the one sure test that the folder can be made there
    except OSError as err:
        raise UsageError(f"cannot create {out} in {target.parent}: {err.strerror or err}") from None
    return target


def protected(target: Path) -> str | None:
    """Why the resolved path `target` must never be written or replaced (the home folder, the current one,
    a folder above it, the root), or None."""
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if target == home:
        return "the home folder"
    if target == cwd:
        return "the current folder"
    if target in cwd.parents:
        return "a folder above the current one"
    return None


def replaceable(folder: Path) -> str | None:
    """Why --overwrite may not replace `folder`, or None when it may: it is empty, or it is a corpus folder
    this project wrote (README.md card with `interp_zoo` metadata, and only what a generator writes)."""
    from cards.card import read_corpus_metadata  # cards.card imports this module (through cards.corpus)

    entries = sorted(folder.iterdir())
    if not entries:
        return None
    for entry in entries:
        if entry.name not in CORPUS_CONTENTS or entry.is_symlink() or \
                entry.is_dir() != (CORPUS_CONTENTS[entry.name] is not None):
            return f"it holds {entry.name}, which no generator of this project writes"
        for path in entry.rglob("*") if entry.is_dir() else ():
            if path.is_symlink() or not (path.is_dir() or path.suffix == CORPUS_CONTENTS[entry.name]):
                return f"it holds {path.relative_to(folder)}, which no generator of this project writes"
    try:
        read_corpus_metadata(folder)
    except IntegrityError:
        return "its README.md records no interp_zoo generator (not a corpus folder this project wrote)"
    return None


@contextlib.contextmanager
def signals_blocked():
    """Hold SIGINT and SIGTERM while the block runs (cleanup, forking workers); a held one arrives after it.

    Masking the calling thread is not enough: the kernel may hand a process-wide signal to another thread
    (tqdm's monitor), and Python then runs the handler in the main thread anyway, in the middle of the block.
    So in the main thread the handlers are also swapped for one that only remembers the signal; it is
    raised again once the block is over and the handlers are back."""
    held: list[int] = []
    in_main = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.signal(sig, lambda signum, frame: held.append(signum)) for sig in sorted(INTERRUPTS)} \
        if in_main else {}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal held by the mask is remembered now
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if held:
            signal.raise_signal(held[0])


def remove_stale(target: Path) -> None:
    """Remove the temporary and trash folders beside `target` left by runs whose process is gone."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:tmp-(\d+)-\w+|old-(\d+))")
    for entry in target.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink() and not _alive(int(match[1] or match[2])):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _make_temp(target: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))


class DatasetFolder:
    """Context manager: a temporary folder that becomes `out` only if the block succeeds."""

    def __init__(self, out: str | Path, overwrite: bool = False):
        self.out = check_target(out, overwrite)  # the real path: a symlink to a corpus is followed, not replaced
        self.overwrite = overwrite

    def __enter__(self) -> "DatasetFolder":
        remove_stale(self.out)
        self.tmp = _make_temp(self.out)
        self._old_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            with signals_blocked():  # a second interrupt must not stop the cleanup or the swap halfway
                self._finish(exc_type is None)
        finally:
            signal.signal(signal.SIGTERM, self._old_sigterm)

    def _finish(self, succeeded: bool) -> None:
        if not succeeded:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        os.chmod(self.tmp, 0o755)
        if self.out.exists():
            trash = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            os.rename(self.out, trash)
            os.rename(self.tmp, self.out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(self.tmp, self.out)

    def split_writer(self, config: str, split: str, rows: int, schema: pa.Schema) -> "SplitWriter":
        return SplitWriter(self.tmp / "data" / config, split, rows, schema)

    def name_by_content(self, config: str) -> str:
        """Put the fingerprint of the config's (closed) parquet files into their names; returns it."""
        folder = self.tmp / "data" / config
        files = sorted(folder.glob("*.parquet"))
        digest = hashlib.blake2b(digest_size=5)
        for file in files:
            digest.update(file.name.encode())
            with open(file, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        fingerprint = digest.hexdigest()
        for file in files:
            split, shard = re.fullmatch(r"(.+)-(\d+-of-\d+\.parquet)", file.name).groups()
            file.rename(folder / f"{split}-{fingerprint}-{shard}")
        return fingerprint

    def write_text(self, name: str, text: str) -> None:
        (self.tmp / name).write_text(text, encoding="utf-8")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


class SplitWriter:
    """Streams the rows of one split into a known number of parquet shards, in row groups of a fixed size."""

    def __init__(self, folder: Path, split: str, rows: int, schema: pa.Schema):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.split, self.schema = folder, split, schema
        self.shards = max(1, math.ceil(rows / ROWS_PER_SHARD))
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.shard = -1
        self.in_shard = 0
        self.writer: pq.ParquetWriter | None = None
        if rows == 0:
            self._open_next()

    def add(self, rows: pa.Table) -> None:
        self.buffer.append(rows)
        self.buffered += rows.num_rows
        if self.buffered >= ROWS_PER_GROUP:
            self._flush(final=False)

    def close(self) -> None:
        self._flush(final=True)
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _open_next(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.shard += 1
        self.in_shard = 0
        import pyarrow.parquet as pq

        name = f"{self.split}-{self.shard:05d}-of-{self.shards:05d}.parquet"
        self.writer = pq.ParquetWriter(self.folder / name, self.schema, compression="zstd")

    def _flush(self, final: bool) -> None:
        """Write whole row groups (and, when final, the rest), so the layout never depends on chunking."""
        import pyarrow as pa

        pending = pa.concat_tables(self.buffer) if self.buffer else self.schema.empty_table()
        offset = 0
        while pending.num_rows - offset >= ROWS_PER_GROUP or (final and offset < pending.num_rows):
            if self.writer is None or self.in_shard >= ROWS_PER_SHARD:
                self._open_next()
            size = min(ROWS_PER_GROUP, pending.num_rows - offset, ROWS_PER_SHARD - self.in_shard)
            self.writer.write_table(pending.slice(offset, size).combine_chunks(), row_group_size=ROWS_PER_GROUP)
            self.in_shard += size
            offset += size
        rest = pending.slice(offset)
        self.buffer, self.buffered = ([rest] if rest.num_rows else []), rest.num_rows
