"""Corpus generation for multmath: sizes, the per-index `make`, the schema, the card and the ICoT files.

Item `index` of the n×m configuration is problem number `permutation(index)` among
the N = 9·10^(n-1) · 9·10^(m-1) ordered problems (a sample without replacement), rendered by
`multmath.problems`, then checked by `multmath.check` before it is kept. The leakage group is the
unordered pair {a, b} (a×b and b×a always share a split) unless `commutative` is off.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cards.card import DatasetDescription
from cards.corpus import SPLITS, Candidate, Config, Report
from multmath.check import check_record
from multmath.problems import join_line, problem
from multmath.shuffle import Permutation

GENERATOR = "multmath"
MAX_DIGITS = 40
LEVELS = range(2, 21)  # level L is the L×L-digit problem
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
])


@dataclass(frozen=True)
class Spec:
    """Everything one configuration's items depend on."""

    seed: int
    digits_a: int
    digits_b: int
    format: str = "icot"
    cot: str = "explicit"
    commutative: bool = True
    validate: bool = True  # off only in the benchmark, to measure what the check costs

    @property
    def name(self) -> str:
        return f"{self.digits_a}x{self.digits_b}"

    @property
    def ordered_count(self) -> int:
        return 81 * 10 ** (self.digits_a + self.digits_b - 2)

    @property
    def distinct_count(self) -> int:
        """How many records can be asked for: ordered pairs, or unordered ones for a square size
        when a×b and b×a count as one problem."""
        if self.commutative and self.digits_a == self.digits_b:
            side = 9 * 10 ** (self.digits_a - 1)
            return side * (side + 1) // 2
        return self.ordered_count


@dataclass(frozen=True)
class Plan:
    """What `make` needs for one configuration, computed once: the spec, its constants, the permutation."""

    spec: Spec
    name: str
    count: int
    side_b: int
    low_a: int
    low_b: int
    permutation: Permutation


def config(spec: Spec, sizes: dict[str, int]) -> Config:
    """The core's Config for `spec`: a picklable `make` and exact per-split counts."""
    half = (spec.digits_a + spec.digits_b - 2) // 2  # count = 81·10^(n+m-2) = left · right, balanced
    left, right = 9 * 10**half, 9 * 10 ** (spec.digits_a + spec.digits_b - 2 - half)
    permutation = Permutation(left, right, spec.seed, GENERATOR, spec.name)
    plan = Plan(spec, spec.name, spec.ordered_count, 9 * 10 ** (spec.digits_b - 1), 10 ** (spec.digits_a - 1),
                10 ** (spec.digits_b - 1), permutation)
    return Config(spec.name, functools.partial(make, plan), sizes, chunk=CHUNK)


def make(plan: Plan, index: int) -> Candidate:
    """Candidate number `index`: a checked record, or the reason it was rejected."""
    if index >= plan.count:
        return Candidate(None, rejected="every problem already drawn")
    number = plan.permutation(index)
    a = plan.low_a + number // plan.side_b
    b = plan.low_b + number % plan.side_b
    spec = plan.spec
    record = _record(spec, plan.name, index, a, b)
    if spec.validate:
        reason = check_record(record, spec.format, spec.cot, spec.digits_a, spec.digits_b)
        if reason is not None:
            return Candidate(None, rejected=reason)
    prompt_key = f"{a}*{b}"
    group_key = prompt_key if not spec.commutative or a <= b else f"{b}*{a}"
    return Candidate(record, prompt_key=prompt_key, group_key=group_key)


def _record(spec: Spec, name: str, index: int, a: int, b: int) -> dict:
    p = problem(a, b)
    prompt, cot, answer = p.parts(spec.format, spec.cot)
    return {
        "id": f"{name}-{index}",
        "config": name,
        "digits_a": spec.digits_a,
        "digits_b": spec.digits_b,
        "a": str(a),
        "b": str(b),
        "product": str(p.product),
        "answer_digits": p.answer_digits,
        "running_sums": p.running_sums,
        "prompt": prompt,
        "cot": cot,
        "answer": answer,
        "text": join_line(spec.format, prompt, cot, answer),
    }


def icot_folder(spec: Spec) -> str:
    """Where the .txt files of a configuration go: the published ICoT layout, under icot/."""
    return f"icot/{spec.digits_a}_by_{spec.digits_b}_mult"


def write_icot_files(folder: Path, specs: list[Spec]) -> None:
    """Write train.txt / valid.txt / test_bigbench.txt from the parquet files just written, in order."""
    for spec in specs:
        target = folder / icot_folder(spec)
        target.mkdir(parents=True, exist_ok=True)
        for split, filename in ICOT_FILES.items():
            shards = sorted((folder / "data" / spec.name).glob(f"{split}-*.parquet"))
            with open(target / filename, "w", encoding="utf-8", newline="\n") as out:
                for shard in shards:
                    for batch in pq.ParquetFile(shard).iter_batches(batch_size=65_536, columns=["text"]):
                        lines = batch.column(0).to_pylist()
                        if lines:
                            out.write("\n".join(lines) + "\n")


def description(specs: list[Spec], reports: list[Report], seed: int) -> DatasetDescription:
    """What the card says about the corpus (the counts come from the reports)."""
    first = specs[0]
    notes = {
        spec.name: f"{spec.digits_a}-digit × {spec.digits_b}-digit problems "
        f"({spec.ordered_count:,} ordered problems exist; at most {spec.distinct_count:,} can be asked for)"
        for spec in specs
    }
    return DatasetDescription(
        pretty_name="multmath: multi-digit multiplication with a verified chain of thought",
        summary=_summary(first),
        config_notes=notes,
        fields=FIELDS,
        checks=_checks(first),
        seed=seed,
        leakage_group="a × b and b × a, unless `--no-commutative-leakage`",
        task_categories=["text-generation"],
        tags=["arithmetic", "multiplication", "chain-of-thought", "implicit-chain-of-thought", "interpretability",
              "synthetic"],
        packages=["pyarrow", "datasets"],
        extra=_outcome(reports) + _extra(specs),
    )


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
}


def _summary(spec: Spec) -> str:
    return (
        "Multi-digit multiplication problems a × b whose operands have exactly the stated number of "
        f"digits, written in the `{spec.format}` format "
        + ("with the full chain of thought (partial products and running sums). " if spec.cot == "explicit"
           else "with the answer only (no chain of thought). ")
        + "Every record carries the operands, the product, the answer digits c_k and the running-sum "
        "targets ĉ_k as structured columns, and was checked by an independent checker before it was kept. "
        "No problem appears in two splits"
        + (" (a × b and b × a count as the same problem)." if spec.commutative else ".")
    )


def _checks(spec: Spec) -> list[str]:
    if not spec.validate:
        return ["NOT checked: generated with the benchmark-only switch --no-validate"]
    checks = [
        "the line was parsed back from the text (strict format: single digits separated by single spaces, "
        "the exact separators) by a checker that shares no code with the generator",
        "both operands have exactly the configuration's number of digits and a non-zero leading digit",
        "the answer equals a × b computed with Python integers"
        + (" and has exactly len(a)+len(b) digits" if spec.format == "icot" else ""),
    ]
    if spec.cot == "explicit":
        checks += [
            "there is one partial product per digit b_k of b, equal to a·b_k·10^k"
            + (" and written with width len(a)+1+k" if spec.format == "icot" else ""),
            "every partial product but the first and the last is followed by the running sum, equal to "
            "a × (the low k+1 digits of b)",
        ]
    checks += [
        "the columns `a`, `b`, `product`, `digits_a`, `digits_b` agree with the parsed text",
        "`answer_digits` are the digits of a × b; `running_sums` were recomputed as ĉ_k = ⌊P_k/10^k⌋ with "
        "P_k = Σ_(i+j≤k) a_i·b_j·10^(i+j), an equivalent closed form of the recursive definition",
        "`prompt`, `cot` and `answer` reassemble exactly into `text`",
    ]
    return checks


def _outcome(reports: list[Report]) -> str:
    """The check's result in words (the table above has a column per rejection reason, if any)."""
    lines = []
    for report in reports:
        rejected = sum(report.rejected.values())
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(report.rejected.items()))
        lines.append(f"- `{report.name}`: {report.candidates:,} candidates checked, {report.kept:,} kept, "
                     f"{rejected:,} rejected by the check" + (f" ({reasons})" if reasons else ""))
    return "Check outcome:\n\n" + "\n".join(lines) + "\n\n"


def _extra(specs: list[Spec]) -> str:
    first = specs[0]
    lines = [
        "## Format",
        "",
        "`icot` is byte-compatible with the implicit chain-of-thought (ICoT) multiplication data files: "
        "digits space-separated and least-significant first, one problem per line, `A * B||COT #### C`. "
        "The CoT lists the partial products a·b_k·10^k (reversed, k leading zeros, width len(a)+1+k) joined by "
        "` + `, and after every partial product except the first and the last the running sum of the partial "
        "products so far in `( ... )`, same width. The answer always has len(a)+len(b) digits. Example "
        "(3719 × 3349):",
        "",
        "```",
        problem(3719, 3349).icot_line(),
        "```",
        "",
        "Without CoT the line is `A * B||#### C`: ICoT-style loaders split it at `||` and `####` and read an "
        "empty chain of thought. `plain` is human order, `3719 * 3349 = 12454931` (with CoT "
        f"`{problem(3719, 3349).plain_line(cot=True)}`).",
        "",
        "A trainer that removes CoT tokens (implicit CoT) finds them in the `cot` column; `text` is "
        "`prompt`, `cot` and `answer` joined by the format's separators (see `text` above).",
        "",
    ]
    if first.format == "icot":
        lines += [
            "## ICoT text files",
            "",
            "The same records, in the same order, are also written as the plain-text files of the published "
            "ICoT layout (one line per record, `\\n`-terminated): split `train` → `train.txt`, `validation` → "
            "`valid.txt`, `test` → `test_bigbench.txt`, in these folders:",
            "",
            *[f"- `{spec.name}`: `{icot_folder(spec)}/`" for spec in specs],
            "",
            "Copy such a folder into the `data/` folder of an ICoT codebase to train on it unchanged.",
            "",
        ]
    else:
        lines += ["The `plain` format has no text files: use the parquet files.", ""]
    lines += [
        "## Levels",
        "",
        "`--level L` is the L×L-digit configuration (levels "
        f"{LEVELS[0]} to {LEVELS[-1]}: `{LEVELS[0]}x{LEVELS[0]}` to `{LEVELS[-1]}x{LEVELS[-1]}`); "
        f"`--digits AxB` gives any size from 1 to {MAX_DIGITS} digits per operand.",
        "",
        "## Sampling and leakage",
        "",
        "Item i of a configuration is problem number π(i) of a seeded pseudo-random permutation π of all "
        "ordered problems of that size, so records are a sample without replacement. "
        + ("The leakage group of a record is the unordered pair {a, b}: a × b and b × a are in the same split. "
           if first.commutative else "The leakage group of a record is the ordered pair (a, b). ")
        + "Leakage is prevented within a configuration; configurations are built independently (a `3x7` "
        "and a `7x3` configuration may hold a × b and b × a in different splits).",
        "",
    ]
    return "\n".join(lines)


def split_sizes(num_train: int, num_valid: int, num_test: int) -> dict[str, int]:
    return dict(zip(SPLITS, (num_train, num_valid, num_test)))
