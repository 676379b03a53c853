"""The corpus core shared by every generator: randomness, parallel generation, de-duplication, splits.

A generator supplies, per configuration, a function `make(index) -> Candidate` that is a pure
function of the index: its randomness comes from `item_rng(seed, generator, config, index)`, a
hash of all four, so items are random-access and neighbouring seeds share nothing. `build` runs
`make` over consecutive indices on worker processes (at most `num_proc`, the CPU count and the chunks
the configuration needs: `workers`), consumes the results strictly in index order (so the output
does not depend on the worker count), drops rejected candidates and duplicate prompts, assigns each
leakage group (e.g. normalised label + schema) to exactly one split (stratified when candidates name a
stratum: each split then gets its share of every stratum), and streams the kept records
into a Hub-ready folder (`cards.dataset_folder`). An interrupt (SIGINT, SIGTERM) terminates and
joins the workers and removes the unfinished folder.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import math
import multiprocessing
import os
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from cards.errors import UsageError
from cards.dataset_folder import INTERRUPTS, DatasetFolder, signals_blocked

if TYPE_CHECKING:  # pyarrow and tqdm are imported where they are used: a generator's --help needs neither
    import pyarrow as pa

SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}  # the default split of -n examples


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of the parts' text, identical across processes and runs."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def item_rng(seed: int, generator: str, config: str, index: int) -> random.Random:
    """The random stream of one item, derived by hashing (seed, generator, config, index)."""
    return random.Random(stable_hash(seed, generator, config, index))


@dataclass
class Candidate:
    """What `make(index)` returns: a record, or the reason it was rejected.

    `prompt_key` de-duplicates (the same prompt is kept once); `group_key` is the leakage group:
    all records of one group land in the same split. A non-empty `stratum` (e.g. a gold position)
    makes a new group's split the one furthest below its share of that stratum, so every split holds
    the same proportions of each stratum (within two records); without it the split is drawn by hash.
    A non-empty `splits` limits a new group to those splits (a generator that decides what a split holds
    out, e.g. held-out phrasings only in validation and test); a candidate none of whose splits is
    being built is dropped (counted as `split_full`).
    """

    record: dict | None
    rejected: str | None = None
    prompt_key: str = ""
    group_key: str = ""
    stratum: str = ""
    splits: tuple[str, ...] = ()


@dataclass
class Config:
    """One configuration (a level, a size) of a corpus: how to make items and how many per split."""

    name: str
    make: Callable[[int], Candidate]
    sizes: dict[str, int]
    chunk: int = 256


@dataclass
class Report:
    """What happened while building one configuration; the dataset card is written from it."""

    name: str
    sizes: dict[str, int]
    candidates: int = 0
    rejected: collections.Counter = field(default_factory=collections.Counter)
    duplicates: int = 0
    split_full: int = 0
    fingerprint: str = ""  # of the configuration's parquet files, part of their names

    @property
    def kept(self) -> int:
        return sum(self.sizes.values())


def summary(reports: list[Report], out: str | Path) -> str:
    """The one line a generator prints when it is done."""
    per_config = ", ".join(f"{r.name}: {r.kept}" for r in reports)
    rejected = sum(sum(r.rejected.values()) for r in reports)
    return f"wrote {sum(r.kept for r in reports)} examples ({per_config}; {rejected} candidates rejected) to {out}"


def split_sizes(total: int, fractions: dict[str, float]) -> dict[str, int]:
    """Exact per-split counts that add up to `total` (largest remainder)."""
    if total < 0:
        raise UsageError("the number of examples must be >= 0")
    raw = {split: total * frac / sum(fractions.values()) for split, frac in fractions.items()}
    sizes = {split: int(value) for split, value in raw.items()}
    by_remainder = sorted(raw, key=lambda s: (sizes[s] - raw[s], list(raw).index(s)))
    for split in by_remainder[: total - sum(sizes.values())]:
        sizes[split] += 1
    return sizes


def build(
    out: str | Path,
    configs: list[Config],
    schema: pa.Schema,
    finish: Callable[[Path, list[Report]], str],
    num_proc: int = 1,
    overwrite: bool = False,
) -> list[Report]:
    """Generate every configuration into the Hub-ready folder `out`, atomically. `finish(folder, reports)`
    may write more files into the (still temporary) folder and returns the text of its README.md card."""
    for config in configs:  # an empty split is left out: a declared split must have data to load
        config.sizes = {split: size for split, size in config.sizes.items() if size > 0}
        if not config.sizes:
            raise UsageError(f"{config.name}: nothing to generate (every split has 0 examples)")
    reports = []
    with DatasetFolder(out, overwrite) as folder:
        for config in configs:
            writers = {s: folder.split_writer(config.name, s, n, schema) for s, n in config.sizes.items()}
            reports.append(_fill(config, schema, writers, num_proc))
            for writer in writers.values():
                writer.close()
            reports[-1].fingerprint = folder.name_by_content(config.name)
        folder.write_text("README.md", finish(folder.tmp, reports))
    return reports


@dataclass
class _Chunk:
    """What a worker returns for a run of indices: per candidate its rejection reason (None for a
    record), per record its two key hashes, its stratum and its allowed splits, and the records themselves
    as one Arrow table."""

    reasons: list[str | None]
    hashes: list[tuple[int, int]]
    table: pa.Table
    strata: list[str] = field(default_factory=list)
    allowed: list[tuple[str, ...]] = field(default_factory=list)


def _fill(config: Config, schema: pa.Schema, writers: dict, num_proc: int) -> Report:
    report = Report(config.name, {split: 0 for split in config.sizes})
    targets = dict(config.sizes)
    total, kept = sum(targets.values()), 0
    seen_prompts, group_split = _KeyIndex(), _KeyIndex()  # prompt hash -> 0; group hash -> its split's number
    strata: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)  # stratum -> kept per split
    stall_limit = max(50_000, 200 * config.chunk)
    since_last_kept = 0
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=config.name, unit="ex", disable=None, leave=False)
    with contextlib.closing(_chunks(config, schema, num_proc, lambda: total - kept)) as chunks, bar:
        for chunk in chunks:
            taken: dict[str, list[int]] = {split: [] for split in targets}
            seen_prompts.look_up([prompt for prompt, _ in chunk.hashes])
            group_split.look_up([group for _, group in chunk.hashes])
            row = -1
            for reason in chunk.reasons:
                if kept == total:
                    break
                report.candidates += 1
                since_last_kept += 1
                if since_last_kept > stall_limit:
                    raise UsageError(f"{config.name}: only {kept} distinct items could be made of the {total} "
                                     "asked for; ask for fewer examples")
                if reason is not None:
                    report.rejected[reason] += 1
                    continue
                row += 1
                prompt_hash, group_hash = chunk.hashes[row]
                if prompt_hash in seen_prompts:
                    report.duplicates += 1
                    continue
                stratum = chunk.strata[row]
                room = {s: n for s, n in targets.items() if s in chunk.allowed[row]} if chunk.allowed[row] \
                    else targets
                if group_hash not in group_split and room:
                    chosen = (_stratified_split(strata[stratum], report.sizes, room) if stratum
                              else _choose_split(group_hash, report.sizes, room))
                    group_split[group_hash] = SPLITS.index(chosen)
                number = group_split.get(group_hash)
                split = None if number is None else SPLITS[number]
                if split not in room or report.sizes[split] >= targets[split]:
                    report.split_full += 1
                    continue
                strata[stratum][split] += 1
                seen_prompts[prompt_hash] = 0
                taken[split].append(row)
                report.sizes[split] += 1
                kept += 1
                since_last_kept = 0
            for split, rows in taken.items():
                if rows:
                    writers[split].add(chunk.table.take(rows))
            bar.update(sum(map(len, taken.values())))
            if kept == total:
                break
    return report


class _KeyIndex:
    """64-bit keys -> small numbers, in about 9 bytes a key (a dict or set of Python ints takes 60-80).

    Keys live in a sorted numpy array beside their values; new keys go to a dict that is merged into the
    arrays (sorted, then inserted in place) once it outgrows a sixteenth of them. `look_up(keys)` answers,
    in one vectorised search, which of a chunk's keys the arrays hold; after it, `in`, `get` and assignment
    work for the keys of that chunk.
    """

    def __init__(self) -> None:
        import numpy as np

        self.keys, self.values = np.empty(0, np.uint64), np.empty(0, np.int8)
        self.recent: dict[int, int] = {}
        self.found: dict[int, int] = {}  # the chunk's keys that the arrays hold

    def look_up(self, keys: list[int]) -> None:
        import numpy as np

        if len(self.recent) > max(1 << 14, len(self.keys) // 16):
            new_keys = np.fromiter(self.recent, np.uint64, len(self.recent))
            order = np.argsort(new_keys)
            at = np.searchsorted(self.keys, new_keys[order])
            self.keys = np.insert(self.keys, at, new_keys[order])
            self.values = np.insert(self.values, at, np.fromiter(self.recent.values(), np.int8)[order])
            self.recent = {}
        self.found = {}
        if len(self.keys) and keys:
            query = np.fromiter(keys, np.uint64, len(keys))
            at = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
            hit = self.keys[at] == query
            self.found = dict(zip(query[hit].tolist(), self.values[at[hit]].tolist()))

    def __contains__(self, key: int) -> bool:
        return key in self.recent or key in self.found

    def get(self, key: int) -> int | None:
        value = self.recent.get(key)
        return self.found.get(key) if value is None else value

    def __setitem__(self, key: int, value: int) -> None:
        self.recent[key] = value


def _choose_split(group_hash: int, filled: dict[str, int], targets: dict[str, int]) -> str:
    """A new group's split: drawn by the group's hash in proportion to the targets, else the first with room."""
    total = sum(targets.values()) or 1
    point = (group_hash % 1_000_003) / 1_000_003 * total
    for split, size in targets.items():
        if point < size and filled[split] < size:
            return split
        point -= size
    return next((s for s in targets if filled[s] < targets[s]), next(iter(targets)))


def _stratified_split(kept: collections.Counter, filled: dict[str, int], targets: dict[str, int]) -> str:
    """A new group's split when its record has a stratum whose records so far went `kept` (per split): the split
    with room furthest below its share of the stratum (the first such split on a tie)."""
    total, seen = sum(targets.values()) or 1, sum(kept.values()) + 1
    open_splits = [s for s in targets if filled[s] < targets[s]] or list(targets)
    return max(open_splits, key=lambda s: targets[s] * seen / total - kept[s])


_worker: tuple[Callable[[int], Candidate], pa.Schema] | None = None


def workers(num_proc: int, total: int, chunk: int) -> int:
    """The worker processes for `total` items in chunks of `chunk`: at most `num_proc`, the CPU count and
    the chunks needed (one worker means no pool: the items are made in this process)."""
    return max(1, min(num_proc, os.cpu_count() or 1, math.ceil(total / chunk)))


def _init_worker(make: Callable[[int], Candidate], schema: pa.Schema, in_pool: bool = False) -> None:
    global _worker
    _worker = (make, schema)
    if in_pool:  # the main process handles interrupts and ends the pool; SIGTERM ends a worker
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)  # held while the pool forked


def _run_chunk(bounds: tuple[int, int]) -> _Chunk:
    make, schema = _worker
    reasons, hashes, records, strata, allowed = [], [], [], [], []
    for index in range(*bounds):
        candidate = make(index)
        reasons.append(candidate.rejected if candidate.record is None else None)
        if candidate.record is not None:
            records.append(candidate.record)
            hashes.append((stable_hash(candidate.prompt_key), stable_hash(candidate.group_key)))
            strata.append(candidate.stratum)
            allowed.append(tuple(candidate.splits))
    from cards.attribution import table  # = pa.Table.from_pylist, with the nested span columns built fast

    return _Chunk(reasons, hashes, table(records, schema), strata, allowed)


def _settle(in_flight, forked: list) -> None:
    """Wait until every chunk handed out has arrived, while all `forked` workers live. Pool.terminate stops
    reading results and then waits for the lock a worker holds while it writes one: a chunk still being
    written then hangs the build (seen in CI). A worker that died (SIGTERM to the process group) writes
    nothing, so then there is nothing to wait for."""
    for result in in_flight:
        while not result.ready() and all(worker.is_alive() for worker in forked):
            result.wait(0.1)


def _chunks(config: Config, schema: pa.Schema, num_proc: int, wanted: Callable[[], int]) -> Iterator[_Chunk]:
    """The chunks of indices 0, 1, 2, ... in order, computed by `num_proc` workers. `wanted()` is how many
    more records the caller still needs: near the end no more indices are handed out than that (with a
    quarter more for rejections and duplicates), so the workers do not make items that would be thrown away."""
    bounds = ((start, start + config.chunk) for start in range(0, 1 << 62, config.chunk))
    num_proc = workers(num_proc, sum(config.sizes.values()), config.chunk)
    if num_proc <= 1:
        _init_worker(config.make, schema)
        for chunk_bounds in bounds:
            yield _run_chunk(chunk_bounds)
        return
    import pyarrow as pa

    pa.array([0])  # pyarrow's first conversion imports pandas (0.5-1 s): once here, not again in every worker
    pool = None
    in_flight: collections.deque = collections.deque()
    try:
        with signals_blocked():  # an interrupt while forking would leave workers behind
            pool = multiprocessing.get_context("fork").Pool(num_proc, initializer=_init_worker,
                                                            initargs=(config.make, schema, True))
            forked = multiprocessing.active_children()
        while True:
            while len(in_flight) < num_proc * 3 and (not in_flight or len(in_flight) * config.chunk < wanted() * 1.25):
                in_flight.append(pool.apply_async(_run_chunk, (next(bounds),)))
            yield in_flight.popleft().get()
    finally:  # done, failed or interrupted: no worker outlives the build
        if pool is not None:
            with signals_blocked():
                _settle(in_flight, forked)
                pool.terminate()
                pool.join()
