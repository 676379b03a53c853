"""Corpus items for multmath: sizes, the per-index item, the schema, the field docs and the ICoT files.

Item `index` of the n×m configuration is problem number `permutation(index)` among
the N = 9·10^(n-1) · 9·10^(m-1) ordered problems (a sample without replacement), rendered by
`multmath.problems`, then checked by `multmath.check` before it is kept (a problem listed in an
`--exclude` file, in either order, is dropped first: `multmath.exclude`). The leakage group is the
unordered pair {a, b} (a×b and b×a always share a split) unless `commutative` is off.
`multmath.generator` declares all this to `cards.generator`; `options` here is its `Options`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cards import attribution
from cards.corpus import Candidate
from multmath import attribution as spans
from multmath import exclude
from multmath.check import check_record
from multmath.problems import join_line, problem
from multmath.shuffle import Permutation

GENERATOR = "multmath"
MAX_DIGITS = 40
CHUNK = 4096
ICOT_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test_bigbench.txt"}

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("config", pa.string()),
    ("digits_a", pa.int8()),
    ("digits_b", pa.int8()),
    ("a", pa.string()),
    ("b", pa.string()),
    ("product", pa.string()),
    ("answer_digits", pa.list_(pa.int8())),
    ("running_sums", pa.list_(pa.int32())),
    ("prompt", pa.string()),
    ("cot", pa.string()),
    ("answer", pa.string()),
    ("text", pa.string()),
    attribution.FIELD,
])

FIELDS = {
    "id": "stable identifier `<config>-<index>` (the index of the candidate that produced the record)",
    "config": "the configuration, `<digits of a>x<digits of b>`",
    "digits_a": "number of digits of a (its leading digit is never 0)",
    "digits_b": "number of digits of b",
    "a": "the first operand, in ordinary decimal",
    "b": "the second operand, in ordinary decimal",
    "product": "a × b, in ordinary decimal",
    "answer_digits": "the answer digits c_k, least-significant first, len(a)+len(b) of them "
    "(zero-padded at the most-significant end)",
    "running_sums": "the running-sum targets ĉ_k = s_k + ⌊ĉ_(k-1)/10⌋ with s_k = Σ_(i+j=k) a_i·b_j "
    "(c_k = ĉ_k mod 10), one per answer digit, least-significant first",
    "prompt": "the question part of `text` (for `icot`: `A * B`, digits least-significant first)",
    "cot": "the chain of thought part of `text` (empty when the corpus has no CoT)",
    "answer": "the answer part of `text`",
    "text": "the full line: `prompt||cot #### answer` for `icot` (`prompt||#### answer` without CoT), "
    "`prompt = cot = answer` for `plain` (`prompt = answer` without CoT)",
    "attribution": f"{attribution.DOC}; one target `c_k` per answer digit written, its sources the digits a_i "
    "and b_j with i + j ≤ k (the digits a_0 .. a_k and b_0 .. b_k)",
}


def size_name(digits_a: int, digits_b: int) -> str:
    """The configuration name of a size: `4x4`, `3x7`."""
    return f"{digits_a}x{digits_b}"


def ordered_count(digits_a: int, digits_b: int) -> int:
    return 81 * 10 ** (digits_a + digits_b - 2)


def distinct_count(digits_a: int, digits_b: int, commutative: bool) -> int:
    """How many records can be asked for: ordered pairs, or unordered ones for a square size
    when a×b and b×a count as one problem."""
    if commutative and digits_a == digits_b:
        side = 9 * 10 ** (digits_a - 1)
        return side * (side + 1) // 2
    return ordered_count(digits_a, digits_b)


@dataclass(frozen=True)
class Plan:
    """What `make_item` needs for one configuration, computed once: its constants and the permutation."""

    name: str
    digits_a: int
    digits_b: int
    count: int
    side_b: int
    low_a: int
    low_b: int
    permutation: Permutation


@functools.lru_cache(maxsize=None)
def plan(options, digits_a: int, digits_b: int) -> Plan:
    """The plan of the digits_a×digits_b configuration under `options` (once per process)."""
    name = size_name(digits_a, digits_b)
    half = (digits_a + digits_b - 2) // 2  # count = 81·10^(n+m-2) = left · right, balanced
    left, right = 9 * 10**half, 9 * 10 ** (digits_a + digits_b - 2 - half)
    return Plan(name, digits_a, digits_b, ordered_count(digits_a, digits_b), 9 * 10 ** (digits_b - 1),
                10 ** (digits_a - 1), 10 ** (digits_b - 1), Permutation(left, right, options.seed, GENERATOR, name))


def make_item(options, size: tuple[int, int], index: int) -> Candidate:
    """Candidate number `index` of the configuration `size` (digits of a, digits of b): a checked
    record, or the reason it was rejected."""
    at = plan(options, *size)
    if index >= at.count:
        return Candidate(None, rejected="every problem already drawn")
    number = at.permutation(index)
    a = at.low_a + number // at.side_b
    b = at.low_b + number % at.side_b
    if options.exclude and (a, b) in exclude.excluded(options.exclude):
        return Candidate(None, rejected=exclude.REASON)
    record = _record(options, at, index, a, b)
    record["attribution"] = spans.targets(record, options.format)
    if options.validate:
        reason = check_record(record, options.format, options.cot, at.digits_a, at.digits_b)
        if reason is not None:
            return Candidate(None, rejected=reason)
    prompt_key = f"{a}*{b}"
    group_key = prompt_key if not options.commutative or a <= b else f"{b}*{a}"
    return Candidate(record, prompt_key=prompt_key, group_key=group_key)


def _record(options, at: Plan, index: int, a: int, b: int) -> dict:
    p = problem(a, b)
    prompt, cot, answer = p.parts(options.format, options.cot)
    return {
        "id": f"{at.name}-{index}",
        "config": at.name,
        "digits_a": at.digits_a,
        "digits_b": at.digits_b,
        "a": str(a),
        "b": str(b),
        "product": str(p.product),
        "answer_digits": p.answer_digits,
        "running_sums": p.running_sums,
        "prompt": prompt,
        "cot": cot,
        "answer": answer,
        "text": join_line(options.format, prompt, cot, answer),
    }


def icot_folder(digits_a: int, digits_b: int) -> str:
    """Where the .txt files of a configuration go: the published ICoT layout, under icot/."""
    return f"icot/{digits_a}_by_{digits_b}_mult"


def write_icot_files(folder: Path, sizes: list[tuple[int, int]]) -> None:
    """Write train.txt / valid.txt / test_bigbench.txt from the parquet files just written, in order."""
    for size in sizes:
        target = folder / icot_folder(*size)
        target.mkdir(parents=True, exist_ok=True)
        for split, filename in ICOT_FILES.items():
            shards = sorted((folder / "data" / size_name(*size)).glob(f"{split}-*.parquet"))
            with open(target / filename, "w", encoding="utf-8", newline="\n") as out:
                for shard in shards:
                    for batch in pq.ParquetFile(shard).iter_batches(batch_size=65_536, columns=["text"]):
                        lines = batch.column(0).to_pylist()
                        if lines:
                            out.write("\n".join(lines) + "\n")
