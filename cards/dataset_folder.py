"""A Hub-ready dataset folder, written atomically.

Layout: `data/<config>/<split>-<fingerprint>-NNNNN-of-NNNNN.parquet` plus a `README.md` (the dataset
card, whose YAML header declares the configs). The fingerprint is a hash of the configuration's
parquet bytes: `datasets.load_dataset(<folder>)` caches a local folder by the file patterns its card
declares, not by the files, so without it a corpus regenerated into the same folder would be read
back from the stale cache. Everything is written into a hidden temporary folder beside the target
and renamed into place at the end, so an interrupted run leaves no half-written output.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cards.errors import UsageError

ROWS_PER_SHARD = 250_000
ROWS_PER_GROUP = 10_000


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output folder that exists (without overwrite) or can't be made."""
    if out.exists() and not overwrite:
        raise UsageError(f"output folder {out} already exists (pass --overwrite to replace it)")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output path {out} exists and is not a folder")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise UsageError(f"cannot create {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot create {out}: folder {parent} is not writable")


class DatasetFolder:
    """Context manager: a temporary folder that becomes `out` only if the block succeeds."""

    def __init__(self, out: str | Path, overwrite: bool = False):
        self.out = Path(out)
        self.overwrite = overwrite
        check_target(self.out, overwrite)

    def __enter__(self) -> "DatasetFolder":
        parent = self.out.resolve().parent
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=parent))
        self._old_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        signal.signal(signal.SIGTERM, self._old_sigterm)
        if exc_type is not None:
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
        name = f"{self.split}-{self.shard:05d}-of-{self.shards:05d}.parquet"
        self.writer = pq.ParquetWriter(self.folder / name, self.schema, compression="zstd")

    def _flush(self, final: bool) -> None:
        """Write whole row groups (and, when final, the rest), so the layout never depends on chunking."""
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
