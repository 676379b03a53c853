"""Corpora in, token batches out: loading a corpus, telling its kind, turning records into
(prompt, CoT, answer) token ids, and batching them with little padding.

A record becomes three pieces of text (`pieces`), tokenised separately and concatenated:

- TinySQL: the `prompt` (ending `### Response: `) and the SQL `completion`;
- multmath: `A * B ||`, ` COT` and ` #### C` (the answer digits, least-significant first);
- MCQ: the `prompt` (ending `Answer:`) and the continuation ` L` of the gold label.

The answer always ends with EOS. Labels are -100 on the prompt (and on padding): the loss is on
the completion only. `nocot` and `aux` drop the CoT; `icot` removes its first tokens at batch time
(`collate`). Batches are grouped by length: shuffled, sorted by length within windows of 64
batches, then the batch order is shuffled, all from (seed, epoch), so a resumed run sees the
same batches.
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from cards.cli import UsageError, first_line

KINDS = {  # checked in this order: the first kind whose columns are all present wins
    "multmath": ("prompt", "cot", "answer", "answer_digits", "running_sums"),
    "mcq": ("prompt", "choices", "labels", "answer", "answer_label"),
    "tinysql": ("prompt", "completion", "sql_statement", "create_statement"),
    "text": ("prompt", "completion"),
}
OBJECTIVES = ("sft", "icot", "nocot", "aux")
MULTMATH_ONLY = ("icot", "nocot", "aux")
MARKER = " ####"  # multmath: what separates the CoT from the answer


def load_corpus(data: str, config: str | None = None):
    """The corpus as a DatasetDict (a local folder or a Hub dataset id); UsageError if it cannot be loaded.

    A local folder is converted into a fresh temporary cache: datasets' own cache is keyed by the
    folder's name and config, not its contents, so two corpora in folders of the same name (or one
    regenerated in place) would otherwise be mixed up.
    """
    import datasets

    datasets.disable_progress_bars()
    path = Path(data).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--data {data}: not a folder")
    if not path.exists() and (data.startswith((".", "/", "~")) or data.count("/") != 1):
        raise UsageError(f"--data {data}: no such corpus folder")
    cache = None
    if path.exists():
        cache = tempfile.mkdtemp(prefix="zoo-data-")
        atexit.register(shutil.rmtree, cache, True)
    try:
        corpus = datasets.load_dataset(str(path) if path.exists() else data, config, cache_dir=cache)
    except Exception as err:  # datasets raises many kinds; all mean "cannot load this"
        raise UsageError(f"--data {data}: cannot load it ({first_line(err)})") from None
    if not isinstance(corpus, datasets.DatasetDict) or not corpus:
        raise UsageError(f"--data {data}: no splits found")
    return corpus


def detect_kind(columns) -> str:
    """`multmath`, `mcq`, `tinysql` or `text` (any prompt/completion corpus); UsageError otherwise."""
    present = set(columns)
    for kind, needed in KINDS.items():
        if present.issuperset(needed):
            return kind
    raise UsageError("the corpus has none of the known column sets (multmath: prompt, cot, answer, "
                     "answer_digits, running_sums; mcq: prompt, choices, labels, answer, answer_label; "
                     f"tinysql or text: prompt, completion); it has: {', '.join(sorted(present))}")


def check_objective(kind: str, objective: str) -> None:
    if objective in MULTMATH_ONLY and kind != "multmath":
        raise UsageError(f"--objective {objective} needs a multmath corpus (this one is {kind})")


def pieces(record: dict, kind: str) -> tuple[str, str, str]:
    """(prompt, cot, answer) text of a record; cot is '' except for multmath with a chain of thought."""
    if kind == "multmath":
        return f"{record['prompt']} ||", (f" {record['cot']}" if record["cot"] else ""), f"{MARKER} {record['answer']}"
    if kind == "mcq":
        return record["prompt"], "", " " + record["answer_label"]
    return record["prompt"], "", record["completion"]


@dataclass
class Encoded:
    """Token ids of a split, one list per record. `digits_at[i]` is where the answer digits start in
    `answer[i]` (multmath only); `running_sums[i]` are the aux targets ĉ_k."""

    prompt: list[list[int]]
    cot: list[list[int]]
    answer: list[list[int]]
    digits_at: list[int] | None = None
    running_sums: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.prompt)

    def length(self, i: int, removed: int = 0) -> int:
        return len(self.prompt[i]) + max(len(self.cot[i]) - removed, 0) + len(self.answer[i])

    @property
    def max_cot(self) -> int:
        return max((len(c) for c in self.cot), default=0)


def encode(records, kind: str, tokenizer, objective: str = "sft", max_length: int | None = None) -> tuple[Encoded, int]:
    """Tokenise a split; returns the encoded split and how many records were dropped as too long."""
    prompts, cots, answers = zip(*(pieces(r, kind) for r in records)) if len(records) else ((), (), ())
    if objective in ("nocot", "aux"):
        cots = [""] * len(prompts)
    prompt_ids, cot_ids = _ids(tokenizer, prompts, True), _ids(tokenizer, cots)
    eos = [tokenizer.eos_token_id]
    if kind == "multmath":
        marker = _ids(tokenizer, [MARKER])[0]
        digits = _ids(tokenizer, [" " + r["answer"] for r in records])
        answer_ids = [marker + d + eos for d in digits]
        digits_at, sums = [len(marker)] * len(records), [list(r["running_sums"]) for r in records]
    else:
        answer_ids, digits_at, sums = [a + eos for a in _ids(tokenizer, answers)], None, None
    enc = Encoded(prompt_ids, cot_ids, answer_ids, digits_at, sums)
    if max_length is None:
        return enc, 0
    keep = [i for i in range(len(enc)) if enc.length(i) <= max_length]
    return subset(enc, keep), len(enc) - len(keep)


def _ids(tokenizer, texts, special: bool = False) -> list[list[int]]:
    return tokenizer(list(texts), add_special_tokens=special)["input_ids"] if texts else []


def subset(enc: Encoded, keep: list[int]) -> Encoded:
    pick = lambda xs: None if xs is None else [xs[i] for i in keep]  # noqa: E731
    return Encoded(pick(enc.prompt), pick(enc.cot), pick(enc.answer), pick(enc.digits_at), pick(enc.running_sums))


def check_aux(enc: Encoded) -> None:
    """The aux loss needs each answer digit to be one token (one running sum per digit token)."""
    for i in range(len(enc)):
        if len(enc.answer[i]) - enc.digits_at[i] - 1 != len(enc.running_sums[i]):
            raise UsageError("--objective aux needs a tokenizer with one token per answer digit; this one "
                             f"writes {len(enc.running_sums[i])} digits in {len(enc.answer[i]) - enc.digits_at[i] - 1} tokens")


def batches(lengths: list[int], batch_size: int, seed: int, epoch: int, window: int = 64) -> list[list[int]]:
    """Indices grouped into batches of similar length; the same (seed, epoch) gives the same batches."""
    rng = random.Random(f"{seed}-{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    out = []
    for start in range(0, len(order), window * batch_size):
        chunk = sorted(order[start:start + window * batch_size], key=lambda i: lengths[i])
        out += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def real_fraction(lengths: list[int], plan: list[list[int]]) -> float:
    """Share of the computed tokens that are real (not padding) when running `plan`."""
    real = sum(lengths[i] for batch in plan for i in batch)
    computed = sum(max(lengths[i] for i in batch) * len(batch) for batch in plan)
    return real / computed if computed else 1.0


def collate(enc: Encoded, indices: list[int], pad_id: int, removed: list[int] | None = None,
            aux: bool = False) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels (-100 on prompt and padding) for `indices`,
    with the first `removed[j]` CoT tokens of example j left out; with `aux`, the positions that
    predict each answer digit and their running-sum targets."""
    removed = removed or [0] * len(indices)
    rows, masks, positions, targets = [], [], [], []
    for i, r in zip(indices, removed):
        cot = enc.cot[i][r:]
        rows.append((enc.prompt[i] + cot + enc.answer[i], len(enc.prompt[i])))
        if aux:
            first = len(enc.prompt[i]) + len(cot) + enc.digits_at[i]
            positions.append([first + k - 1 for k in range(len(enc.running_sums[i]))])
            targets.append(enc.running_sums[i])
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for j, (ids, prompt_len) in enumerate(rows):
        input_ids[j, :len(ids)] = torch.tensor(ids)
        labels[j, prompt_len:len(ids)] = input_ids[j, prompt_len:len(ids)]
        attention[j, :len(ids)] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
    if aux:
        batch.update(_aux_targets(positions, targets))
    return batch


def _aux_targets(positions: list[list[int]], targets: list[list[int]]) -> dict[str, torch.Tensor]:
    n = max(len(p) for p in positions)
    pos = torch.zeros((len(positions), n), dtype=torch.long)
    tgt = torch.zeros((len(positions), n), dtype=torch.float32)
    mask = torch.zeros((len(positions), n), dtype=torch.bool)
    for j, (p, t) in enumerate(zip(positions, targets)):
        pos[j, :len(p)], tgt[j, :len(t)], mask[j, :len(p)] = torch.tensor(p), torch.tensor(t, dtype=torch.float32), True
    return {"aux_positions": pos, "aux_targets": tgt, "aux_mask": mask}
