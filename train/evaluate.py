"""Evaluation of a causal LM on a split of any corpus, through the corpus's training view.

The model sees the prompt exactly as in training (`view.pieces`) and decodes greedily until the EOS
that ends a completion: the first, or for a layout whose gold completions hold EOS tokens (ICoT's
original layout writes one after its CoT) the one after as many more (`completion_eos`).
Every corpus reports `exact_match`: the share of records whose completion, as the view reads it
(`view.answer`), equals the view's gold (`view.gold`); the view adds its own metrics
(`view.metrics`: TinySQL's normalized and execution match, multmath's per-digit accuracy...).
When the view offers likelihood-scored choices (`view.choices`, multiple choice), `label_accuracy`
is the share of records whose gold continuation is the most likely one, and `gold_probability`
the mean probability of the gold continuation, normalised over the choices.

A record that does not fit the model's context (`max_position_embeddings`) is skipped by every
metric: one whose prompt followed by its gold completion, or by any of its choices, is longer.
`n` counts the records scored and `skipped_too_long` those skipped. Generation may add up to the
longest gold completion plus 8 tokens, fewer where the context ends first (never fewer than the
record's own gold completion).

Generation runs on batches of prompts of similar length (sorted by length, `batch_size` at a
time, left-padded with an attention mask; a batch shares one budget of new tokens); choice
scoring on right-padded batches. Sorted batches waste little on padding, where batches of exactly
equal length held one or two prompts on corpora whose prompts vary (TinySQL level 7: 129
generate calls for 300 prompts, now 5: the same completions, 6x faster).
"""

from __future__ import annotations

import itertools

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from cards.generator import TrainingView
from train.data import prompt_ids
from train.tokenizer import token_ids

SLACK = 8  # new tokens allowed beyond the longest gold completion


@torch.no_grad()
def evaluate(model, tokenizer, records, view: TrainingView, batch_size: int = 64, progress: bool = True,
             outputs: list | None = None) -> dict:
    """Metrics of `model` on `records` (a list of dicts or a datasets split); the greedy completions
    are appended to `outputs` when it is given (None for a record skipped as too long)."""
    records = list(records)
    fits = fitting(model, tokenizer, records, view)
    kept = [r for r, ok in zip(records, fits) if ok]
    counts = {"n": len(kept), "skipped_too_long": len(records) - len(kept)}
    completions = generate(model, tokenizer, kept, view, batch_size, progress) if kept else []
    if outputs is not None:
        done = iter(completions)
        outputs.extend(next(done) if ok else None for ok in fits)
    if not kept:
        return counts
    metrics = {**counts, **score(kept, completions, view)}
    if view.choices(kept[0]) is not None:
        metrics.update(choice_scores(model, tokenizer, kept, view, batch_size, progress))
    return metrics


def context_length(model) -> int | None:
    """The longest sequence the model takes (its position embeddings or rotary range), or None."""
    config = getattr(model, "config", None)
    value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return value if isinstance(value, int) and value > 0 else None


def fitting(model, tokenizer, records: list[dict], view: TrainingView) -> list[bool]:
    """Per record, whether its prompt followed by its gold completion, and by each of its choices, fits the
    model's context."""
    context = context_length(model)
    if context is None:
        return [True] * len(records)
    ids = token_ids(tokenizer)
    texts = [view.pieces(r) for r in records]
    prompts = prompt_ids(ids, view, [p for p, _, _ in texts])
    golds = ids([c + a for _, c, a in texts])
    fits = []
    for record, prompt, gold in zip(records, prompts, golds):
        choices = view.choices(record)
        continuations = [gold] + (ids(choices[0]) if choices else [])
        fits.append(len(prompt) + max(1, *map(len, continuations)) <= context)
    return fits


def generate(model, tokenizer, records, view: TrainingView, batch_size: int, progress: bool) -> list[str]:
    """The greedy completion of every record's prompt, decoded without special tokens."""
    model.eval()
    ids = token_ids(tokenizer)
    texts = [view.pieces(r) for r in records]
    prompts = prompt_ids(ids, view, [p for p, _, _ in texts])
    most = max(map(len, ids([c + a for _, c, a in texts]))) + SLACK
    context = context_length(model)
    budgets = [most if context is None else min(most, context - len(p)) for p in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos, stops = tokenizer.eos_token_id, completion_eos(tokenizer, texts)
    outputs = [""] * len(records)
    device = next(model.parameters()).device
    for group in tqdm(batches([len(p) for p in prompts], batch_size, budgets), desc="generate",
                      disable=not progress, leave=False):
        width = max(len(prompts[i]) for i in group)
        batch = torch.full((len(group), width), pad, dtype=torch.long)  # left-padded: generation goes on at the right
        mask = torch.zeros_like(batch)
        for j, i in enumerate(group):
            batch[j, width - len(prompts[i]):] = torch.tensor(prompts[i])
            mask[j, width - len(prompts[i]):] = 1
        # past the first EOS, generation stops at the `stops`-th (an empty eos_token_id: none stops it by itself)
        config = GenerationConfig(max_new_tokens=budgets[group[0]], do_sample=False,
                                  eos_token_id=eos if stops == 1 else [], pad_token_id=pad)
        criteria = None if stops == 1 else StoppingCriteriaList([EosCount(eos, stops, width)])
        new = model.generate(input_ids=batch.to(device), attention_mask=mask.to(device), generation_config=config,
                             stopping_criteria=criteria)
        for i, row in zip(group, new[:, width:].tolist()):
            outputs[i] = tokenizer.decode(row if stops == 1 else until_eos(row, eos, stops), skip_special_tokens=True)
    return outputs


def completion_eos(tokenizer, texts: list[tuple[str, str, str]]) -> int:
    """How many EOS tokens end a completion: the one after it, plus those its gold (CoT and answer) writes."""
    marker = tokenizer.eos_token
    return 1 + max((c + a).count(marker) for _, c, a in texts) if marker and texts else 1


def until_eos(tokens: list[int], eos: int, stops: int) -> list[int]:
    """The tokens up to and including the `stops`-th EOS (all of them if there are fewer)."""
    seen = 0
    for n, token in enumerate(tokens):
        seen += token == eos
        if seen == stops:
            return tokens[:n + 1]
    return tokens


class EosCount(StoppingCriteria):
    """Done, per row, once the tokens after column `start` hold `stops` EOS tokens."""

    def __init__(self, eos: int, stops: int, start: int):
        self.eos, self.stops, self.start = eos, stops, start

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        return (input_ids[:, self.start:] == self.eos).sum(-1) >= self.stops


def score(records, outputs: list[str], view: TrainingView) -> dict:
    """Exact match plus the view's own metrics."""
    exact = _mean(view.answer(o) == view.gold(r) for r, o in zip(records, outputs))
    return {"exact_match": exact, **view.metrics(records, outputs)}


def prediction_rows(records, outputs: list, view: TrainingView) -> list[dict]:
    """One row per record scored (records skipped as too long, whose output is None, are left out): its id,
    the completion, the gold and whether they match exactly."""
    return [{"id": r.get("id", n), "prediction": o.strip(), "gold": view.gold(r),
             "correct": view.answer(o) == view.gold(r)}
            for n, (r, o) in enumerate(zip(records, outputs)) if o is not None]


def choice_scores(model, tokenizer, records, view: TrainingView, batch_size: int, progress: bool) -> dict:
    """Accuracy of the most likely choice and mean probability of the gold one among the choices."""
    correct, gold_prob = [], []
    for record, scores in zip(records, choice_logprobs(model, tokenizer, records, view, batch_size, progress)):
        gold, options = view.choices(record)[1], torch.tensor(scores)
        correct.append(int(options.argmax()) == gold)
        gold_prob.append(float(options.softmax(0)[gold]))
    return {"label_accuracy": _mean(correct), "gold_probability": _mean(gold_prob)}


@torch.no_grad()
def choice_logprobs(model, tokenizer, records, view: TrainingView, batch_size: int, progress: bool) -> list[list[float]]:
    """Per record, the log-likelihood of each choice's continuation after the prompt (summed over its tokens)."""
    ids = token_ids(tokenizer)
    rows, owners = [], []  # one row per (record, choice): prompt + continuation ids, continuation length
    prompts = prompt_ids(ids, view, [view.pieces(r)[0] for r in records])
    for n, (record, prompt) in enumerate(zip(records, prompts)):
        for cont in ids(view.choices(record)[0]):
            rows.append((prompt + cont, len(cont)))
            owners.append(n)
    scores = [0.0] * len(rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    for group in tqdm(batches([len(r) for r, _ in rows], batch_size), desc="choice scores", disable=not progress,
                      leave=False):
        width = max(len(rows[i][0]) for i in group)
        batch = torch.full((len(group), width), pad, dtype=torch.long)
        mask = torch.zeros_like(batch)
        for j, i in enumerate(group):
            batch[j, :len(rows[i][0])] = torch.tensor(rows[i][0])
            mask[j, :len(rows[i][0])] = 1
        logits = model(input_ids=batch.to(device), attention_mask=mask.to(device)).logits
        for j, i in enumerate(group):
            end, cont = len(rows[i][0]), rows[i][1]
            logprobs = logits[j, end - cont - 1:end - 1].float().log_softmax(-1)
            scores[i] = logprobs.gather(-1, batch[j, end - cont:end, None].to(device)).sum().item()
    per_record = [[] for _ in prompts]
    for owner, value in zip(owners, scores):
        per_record[owner].append(value)
    return per_record


def batches(lengths: list[int], batch_size: int, keys: list | None = None) -> list[list[int]]:
    """Indices sorted by length in batches of at most `batch_size`; indices with different `keys` never share
    a batch."""
    keys = keys or [0] * len(lengths)
    order = sorted(range(len(lengths)), key=lambda i: (keys[i], lengths[i]))
    out = []
    for _, same in itertools.groupby(order, key=lambda i: keys[i]):
        same = list(same)
        out += [same[s:s + batch_size] for s in range(0, len(same), batch_size)]
    return out


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else 0.0
