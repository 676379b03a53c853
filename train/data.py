"""Corpora in, token batches out: opening a corpus with its training view, turning records into
(prompt, CoT, answer) token ids, and batching them with little padding.

How a corpus trains is recorded, not guessed: the `interp_zoo` metadata of its card names the
generator that wrote it (`cards.card.read_corpus_metadata`), and that generator's `view`
(`cards.generator.TrainingView`) splits every record into three pieces of text. A corpus whose
card records no generator trains as generic text through the base view when it has `prompt` and
`completion` columns. A chat corpus (a `messages` column of role/content turns, and not the
columns its view needs: `tinysql-gen --format chat`, or any folder of chats) trains through
`ChatView`: the prompt is the tokenizer's chat template applied to every turn but the last, with
the generation prompt, and the completion is the last turn's content; the generator's view still
adds its metrics. Anything else is refused (`open_corpus`).

A multiplication corpus trains in one of two sequence layouts (`LAYOUTS`, `--layout`, `in_layout`): `ours`,
its generator's view (`A * B || COT #### C`, one token per digit from scratch), or `original`, the layout of
the ICoT code (Deng et al.), ` A * B <eos> COT <eos> #### C <eos>` with a space on either side of every EOS,
meant for GPT-2's BPE tokenizer (`OriginalLayout`: the prompt ends with the first EOS, the CoT is what lies
between the two, the answer starts with the second, which stays when the CoT is removed or left out).

The pieces are tokenised separately and concatenated: the prompt with the tokenizer's special tokens (a
chat prompt without: its template writes them), the chain of thought, and the answer, which ends with
EOS. A view with an `answer_prefix` (multmath's ` ####`) has it, and any whitespace after the answer
proper, tokenised apart from the answer proper, so that starts at the same token (`digits_at`) in every
record and ends at `digits_end`. Labels are -100 on the prompt (and on padding): the loss is on the
completion only, or on every token with `--objective lm`. Objectives that train without the chain of
thought drop it here (`keep_cot=False`); icot removes its first tokens at batch time (`collate`).
Records are read and tokenised in chunks of `CHUNK` (`records_in_chunks`: datasets' row-by-row access
costs more than the tokenising), with a progress bar. Batches are grouped by length: shuffled, sorted by
length within windows of 64 batches, then the batch order is shuffled, all from (seed, epoch), so a
resumed run sees the same batches.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm

from cards.card import CorpusMetadata, default_config, read_corpus_metadata, with_option
from cards.cli import first_line
from cards.errors import IntegrityError, UsageError
from cards.generator import TrainingView, get
from train.config import LAYOUTS
from train.tokenizer import CHAT_TEMPLATE, EOS, render_chat, token_ids, with_chat_template

TEXT_COLUMNS = TrainingView.columns  # what a corpus without generator metadata needs
CHAT_COLUMN = "messages"
CHUNK = 50_000  # records read and tokenised at a time


class ChatView(TrainingView):
    """A chat record through a tokenizer's chat template: the prompt is every turn but the last, rendered
    with the generation prompt; the answer is the last turn's content. `use(tokenizer)` picks the template
    (the tokenizer's own, or `train.tokenizer.CHAT_TEMPLATE` given to a tokenizer without one); before
    that, prompts are rendered with `CHAT_TEMPLATE` (to train a tokenizer on them). Metrics and the
    reading of an answer are the corpus generator's view's (`inner`)."""

    columns = (CHAT_COLUMN,)
    prompt_special_tokens = False  # a template writes the special tokens it wants

    def __init__(self, inner: TrainingView | None = None):
        self.inner = inner or TrainingView()
        self.tokenizer = None

    def use(self, tokenizer) -> None:
        self.tokenizer = with_chat_template(tokenizer)

    def pieces(self, record: dict) -> tuple[str, str, str]:
        *context, last = record[CHAT_COLUMN]
        if self.tokenizer is None or self.tokenizer.chat_template == CHAT_TEMPLATE:  # the same text, without jinja
            return render_chat(context), "", last["content"]
        prompt = self.tokenizer.apply_chat_template(context, tokenize=False, add_generation_prompt=True)
        return prompt, "", last["content"]

    def gold(self, record: dict) -> str:
        return record[CHAT_COLUMN][-1]["content"].strip()

    def answer(self, output: str) -> str:
        return self.inner.answer(output)

    def metrics(self, records: list[dict], outputs: list[str]) -> dict:
        return self.inner.metrics(records, outputs)


class OriginalLayout(TrainingView):
    """A multiplication record in the layout of the ICoT code: ` A * B <eos>`, ` COT `, `<eos> #### C ` + EOS,
    the text their loader builds from the line `A * B||COT #### C`, written with the tokenizer's EOS (`use`;
    before that, `train.tokenizer.EOS`). What is scored, and how, is the multmath view's (`inner`)."""

    columns = ("prompt", "cot", "answer", "answer_digits", "running_sums")
    chain_of_thought = True

    def __init__(self, inner: TrainingView):
        self.inner = inner
        self.eos = EOS
        self.digit_tokenizer = inner.digit_tokenizer  # from scratch, the same vocabulary as in our layout

    def use(self, tokenizer) -> None:
        if tokenizer.eos_token is None:
            raise UsageError("--layout original needs a tokenizer with an EOS token")
        self.eos = tokenizer.eos_token

    @property
    def answer_prefix(self) -> str:
        return f"{self.eos} ####"

    def pieces(self, record: dict) -> tuple[str, str, str]:
        return f" {record['prompt']} {self.eos}", f" {record['cot']} ", f"{self.answer_prefix} {record['answer']} "

    def gold(self, record: dict) -> str:
        return self.inner.gold(record)

    def answer(self, output: str) -> str:
        return self.inner.answer(output)

    def metrics(self, records: list[dict], outputs: list[str]) -> dict:
        return self.inner.metrics(records, outputs)

    def running_sums(self, record: dict) -> list[int] | None:
        return self.inner.running_sums(record)


def in_layout(corpus: "Corpus", layout: str) -> "Corpus":
    """The corpus with its view in the sequence layout `layout` (`LAYOUTS`); UsageError for a corpus that has
    no such layout (only multiplication corpora have `original`)."""
    if layout not in LAYOUTS:
        raise UsageError(f"--layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    if layout == "ours":
        return corpus
    if corpus.generator != "multmath" or isinstance(corpus.view, ChatView):
        raise UsageError(f"--layout {layout}: only multiplication corpora (multmath) have ICoT's original layout; "
                         f"this one is {corpus.kind}")
    return dataclasses.replace(corpus, view=OriginalLayout(corpus.view))


def recorded_layout(model: str) -> str:
    """The layout the run of a checkpoint (a local folder or a Hub id) recorded in its manifest; `ours` when it
    records none (a run made before layouts existed, a model not trained here)."""
    from train.manifest import MANIFEST

    file = Path(model) / MANIFEST
    try:
        if not file.is_file():
            from huggingface_hub import hf_hub_download

            file = Path(hf_hub_download(model, MANIFEST))
        return json.loads(file.read_text(encoding="utf-8"))["config"].get("layout", "ours")
    except Exception:  # no manifest, offline, not a repository, malformed...: nothing recorded
        return "ours"


def use_tokenizer(view: TrainingView, tokenizer) -> None:
    """Give a view that writes text of the tokenizer's (a chat template, an EOS) the tokenizer it trains with."""
    if isinstance(view, (ChatView, OriginalLayout)):
        view.use(tokenizer)


@dataclass
class Corpus:
    """A loaded corpus and what its card records about it."""

    splits: Any  # a datasets.DatasetDict
    view: TrainingView
    generator: str | None  # None: generic prompt/completion text
    task: str  # in words, for the model card
    name: str  # how cards name it: the folder's name or the Hub id (never a path of this machine)
    config: str | None  # the config loaded (None: a corpus without metadata, loaded with its default)
    command: str | None  # the generator command that makes it, writing to `name`

    @property
    def kind(self) -> str:
        return self.generator or "prompt/completion text"


def open_corpus(data: str, config: str | None = None) -> Corpus:
    """The corpus `data` (a local folder or a Hub dataset id) with the view its card records; UsageError
    if it cannot be loaded, or tells neither a generator nor prompt/completion columns."""
    path = Path(data).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--data {data}: not a folder")
    if not path.exists() and (data.startswith((".", "/", "~")) or data.count("/") != 1):
        raise UsageError(f"--data {data}: no such corpus folder")
    meta, missing_because = _metadata(data, path)
    name = path.resolve().name if path.exists() else data
    if meta is None:
        splits = load_corpus(data, config)
        if _is_chat(splits, TEXT_COLUMNS):
            return Corpus(splits, ChatView(), None, "chat", name, config, None)
        _require_columns(data, splits, TEXT_COLUMNS, f"its card records no generator ({missing_because}), and "
                                                     "a corpus without one needs")
        return Corpus(splits, TrainingView(), None, "prompt completion", name, config, None)
    generator = get(meta.generator)
    config = default_config(meta, config)
    splits = load_corpus(data, config)
    view = ChatView(generator.view) if _is_chat(splits, generator.view.columns) else generator.view
    _require_columns(data, splits, view.columns, f"its card names the {meta.generator} generator, "
                                                 "whose records have")
    return Corpus(splits, view, meta.generator, generator.task, name, config,
                  with_option(meta.command, "--out", name))


def _is_chat(splits, needed) -> bool:
    """Whether the corpus is chats: a `messages` column, and not every column its view needs."""
    columns = set(next(iter(splits.values())).column_names)
    return CHAT_COLUMN in columns and not set(needed) <= columns


def _metadata(data: str, path: Path) -> tuple[CorpusMetadata | None, str]:
    """(the corpus card's generator metadata, or None and why there is none)."""
    folder = path
    if not path.exists():
        from huggingface_hub import hf_hub_download

        try:
            folder = Path(hf_hub_download(data, "README.md", repo_type="dataset")).parent
        except Exception as err:  # offline, no such repository, no card...: all mean "no metadata to read"
            return None, f"cannot fetch its card: {first_line(err)}"
    try:
        return read_corpus_metadata(folder), ""
    except IntegrityError as err:  # no card, or one without the metadata
        return None, str(err)


def _require_columns(data: str, splits, needed, what: str) -> None:
    columns = set(next(iter(splits.values())).column_names)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise UsageError(f"--data {data}: {what} the columns {', '.join(needed)}; it lacks {', '.join(missing)} "
                         f"(it has: {', '.join(sorted(columns))})")


def load_corpus(data: str, config: str | None = None):
    """The corpus as a DatasetDict (a local folder or a Hub dataset id); UsageError if it cannot be loaded.

    A local folder is converted into a fresh temporary cache: datasets' own cache is keyed by the
    folder's name and config, not its contents, so two corpora in folders of the same name (or one
    regenerated in place) would otherwise be mixed up.
    """
    import datasets

    datasets.disable_progress_bars()
    path = Path(data).expanduser()
    cache = None
    if path.exists():
        cache = tempfile.mkdtemp(prefix="zoo-data-")
        atexit.register(shutil.rmtree, cache, True)
    try:
        corpus = datasets.load_dataset(str(path) if path.exists() else data, config, cache_dir=cache)
    except Exception as err:  # datasets raises many kinds; all mean "cannot load this"
        raise UsageError(f"--data {data}: cannot load it ({first_line(err)})") from err
    if not isinstance(corpus, datasets.DatasetDict) or not corpus:
        raise UsageError(f"--data {data}: no splits found")
    return corpus


@dataclass
class Encoded:
    """Token ids of a split, one list per record. `digits_at[i]` and `digits_end[i]` are where the answer
    proper starts and ends in `answer[i]` (after the view's answer prefix, before any whitespace after it and
    EOS); `running_sums[i]` are the aux targets ĉ_k (None when the view has none)."""

    prompt: list[list[int]]
    cot: list[list[int]]
    answer: list[list[int]]
    digits_at: list[int]
    running_sums: list[list[int]] | None = None
    digits_end: list[int] | None = None

    def __len__(self) -> int:
        return len(self.prompt)

    def length(self, i: int, removed: int = 0) -> int:
        return len(self.prompt[i]) + max(len(self.cot[i]) - removed, 0) + len(self.answer[i])

    @property
    def max_cot(self) -> int:
        return max((len(c) for c in self.cot), default=0)


def encode(records, view: TrainingView, tokenizer, keep_cot: bool = True,
           max_length: int | None = None, progress: bool = False) -> tuple[Encoded, int]:
    """Tokenise a split through its view; returns the encoded split and how many records were dropped
    as longer than `max_length` tokens."""
    ids = token_ids(tokenizer)
    enc, sums = Encoded([], [], [], [], digits_end=[]), []
    with tqdm(total=len(records), desc="prepare data", unit="records", disable=not progress, leave=False) as bar:
        for chunk in records_in_chunks(records):
            pieces = [view.pieces(record) for record in chunk]
            sums += [view.running_sums(record) for record in chunk]
            enc.prompt += prompt_ids(ids, view, [p for p, _, _ in pieces])
            enc.cot += ids([c if keep_cot else "" for _, c, _ in pieces])
            answers, ends = answer_ids(ids, view, [a for _, _, a in pieces], tokenizer.eos_token_id)
            enc.answer += answers
            enc.digits_end += ends
            bar.update(len(chunk))
    enc.digits_at = [len(ids([view.answer_prefix])[0]) if view.answer_prefix else 0] * len(enc.prompt)
    enc.running_sums = None if not sums or None in sums else [list(s) for s in sums]
    if max_length is None:
        return enc, 0
    keep = [i for i in range(len(enc)) if enc.length(i) <= max_length]
    return subset(enc, keep), len(enc) - len(keep)


def answer_ids(ids, view: TrainingView, answers: list[str], eos: int) -> tuple[list[list[int]], list[int]]:
    """Token ids of answers, each ending with EOS, and where the answer proper ends in each. With an
    `answer_prefix`, the prefix, the answer proper and the whitespace after it are tokenised apart."""
    if not view.answer_prefix:
        proper = ids(answers)
        return [rest + [eos] for rest in proper], [len(rest) for rest in proper]
    prefix = ids([view.answer_prefix])[0]
    rests = [a[len(view.answer_prefix):] for a in answers]
    proper = ids([rest.rstrip() for rest in rests])
    tails = [rest[len(rest.rstrip()):] for rest in rests]
    after = ids(tails) if any(tails) else [[] for _ in tails]
    return [prefix + p + t + [eos] for p, t in zip(proper, after)], [len(prefix) + len(p) for p in proper]


def records_in_chunks(records, size: int = CHUNK) -> Iterator[list[dict]]:
    """The records (a datasets split or any sequence of dicts) as lists of dicts, `size` at a time: a
    split is read a batch of columns at a time, ten times faster than row by row."""
    if hasattr(records, "iter") and hasattr(records, "column_names"):
        for batch in records.iter(batch_size=size):
            yield [dict(zip(batch, values)) for values in zip(*batch.values())]
        return
    records = list(records)
    for start in range(0, len(records), size):
        yield records[start:start + size]


def prompt_ids(ids, view: TrainingView, prompts: list[str]) -> list[list[int]]:
    """Token ids of prompts: with the tokenizer's special tokens, unless the view writes them itself (a chat
    template). `ids` is `train.tokenizer.token_ids(tokenizer)`."""
    return ids(prompts, view.prompt_special_tokens)


def subset(enc: Encoded, keep: list[int]) -> Encoded:
    pick = lambda xs: None if xs is None else [xs[i] for i in keep]  # noqa: E731
    return Encoded(pick(enc.prompt), pick(enc.cot), pick(enc.answer), pick(enc.digits_at), pick(enc.running_sums),
                   pick(enc.digits_end))


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
            prompt_loss: bool = False) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels (-100 on padding, and on the prompt unless
    `prompt_loss`) for `indices`, with the first `removed[j]` CoT tokens of example j left out."""
    removed = removed or [0] * len(indices)
    rows = [(enc.prompt[i] + enc.cot[i][r:] + enc.answer[i], 0 if prompt_loss else len(enc.prompt[i]))
            for i, r in zip(indices, removed)]
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for j, (ids, prompt_len) in enumerate(rows):
        input_ids[j, :len(ids)] = torch.tensor(ids)
        labels[j, prompt_len:len(ids)] = input_ids[j, prompt_len:len(ids)]
        attention[j, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
