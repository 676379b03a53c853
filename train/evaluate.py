"""Evaluation of a causal LM on a split of any corpus, through the corpus's training view.

The model sees the prompt exactly as in training (`view.pieces`) and decodes greedily until EOS.
Every corpus reports `exact_match`: the share of records whose completion, as the view reads it
(`view.answer`), equals the view's gold (`view.gold`); the view adds its own metrics
(`view.metrics`: TinySQL's normalized and execution match, multmath's per-digit accuracy...).
When the view offers likelihood-scored choices (`view.choices`, multiple choice), `label_accuracy`
is the share of records whose gold continuation is the most likely one, and `gold_probability`
the mean probability of the gold continuation, normalised over the choices.

Prompts are batched by exact token length, so no padding is ever fed to the model.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig

from cards.generator import TrainingView


@torch.no_grad()
def evaluate(model, tokenizer, records, view: TrainingView, batch_size: int = 64, progress: bool = True,
             outputs: list | None = None) -> dict:
    """Metrics of `model` on `records` (a list of dicts or a datasets split); the greedy completions
    are appended to `outputs` when it is given."""
    records = list(records)
    if not records:
        return {"n": 0}
    model.eval()
    completions = generate(model, tokenizer, records, view, batch_size, progress)
    if outputs is not None:
        outputs.extend(completions)
    metrics = {"n": len(records), **score(records, completions, view)}
    if view.choices(records[0]) is not None:
        metrics.update(choice_scores(model, tokenizer, records, view, batch_size, progress))
    return metrics


def generate(model, tokenizer, records, view: TrainingView, batch_size: int, progress: bool) -> list[str]:
    """The greedy completion of every record's prompt, decoded without special tokens."""
    texts = [view.pieces(r) for r in records]
    prompts = tokenizer([p for p, _, _ in texts])["input_ids"]
    gold = tokenizer([c + a for _, c, a in texts], add_special_tokens=False)["input_ids"]
    config = GenerationConfig(max_new_tokens=max(map(len, gold)) + 8, do_sample=False,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    outputs = [""] * len(records)
    device = next(model.parameters()).device
    groups = _by_length(prompts, batch_size)
    for group in tqdm(groups, desc="generate", disable=not progress, leave=False):
        ids = torch.tensor([prompts[i] for i in group], device=device)
        new = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
        for i, row in zip(group, new[:, ids.shape[1]:].tolist()):
            outputs[i] = tokenizer.decode(row, skip_special_tokens=True)
    return outputs


def score(records, outputs: list[str], view: TrainingView) -> dict:
    """Exact match plus the view's own metrics."""
    exact = _mean(view.answer(o) == view.gold(r) for r, o in zip(records, outputs))
    return {"exact_match": exact, **view.metrics(records, outputs)}


def prediction_rows(records, outputs: list[str], view: TrainingView) -> list[dict]:
    """One row per record: its id, the completion, the gold and whether they match exactly."""
    return [{"id": r.get("id", n), "prediction": o.strip(), "gold": view.gold(r),
             "correct": view.answer(o) == view.gold(r)} for n, (r, o) in enumerate(zip(records, outputs))]


@torch.no_grad()
def choice_scores(model, tokenizer, records, view: TrainingView, batch_size: int, progress: bool) -> dict:
    """Accuracy of the most likely choice and mean probability of the gold one among the choices."""
    rows, owners, golds = [], [], []  # one row per (record, choice): prompt + continuation ids, continuation length
    for n, record in enumerate(records):
        prompt = tokenizer(view.pieces(record)[0])["input_ids"]
        continuations, gold = view.choices(record)
        golds.append(gold)
        for text in continuations:
            cont = tokenizer(text, add_special_tokens=False)["input_ids"]
            rows.append((prompt + cont, len(cont)))
            owners.append(n)
    scores = [0.0] * len(rows)
    device = next(model.parameters()).device
    for group in tqdm(_by_length([r for r, _ in rows], batch_size), desc="choice scores", disable=not progress,
                      leave=False):
        ids = torch.tensor([rows[i][0] for i in group], device=device)
        logprobs = model(input_ids=ids).logits.float().log_softmax(-1)
        for j, i in enumerate(group):
            cont = rows[i][1]
            targets = ids[j, -cont:]
            scores[i] = logprobs[j, -cont - 1:-1].gather(-1, targets[:, None]).sum().item()
    per_record = defaultdict(list)
    for owner, value in zip(owners, scores):
        per_record[owner].append(value)
    correct, gold_prob = [], []
    for n, gold in enumerate(golds):
        options = torch.tensor(per_record[n])
        correct.append(int(options.argmax()) == gold)
        gold_prob.append(float(options.softmax(0)[gold]))
    return {"label_accuracy": _mean(correct), "gold_probability": _mean(gold_prob)}


def _by_length(sequences: list[list[int]], batch_size: int) -> list[list[int]]:
    groups = defaultdict(list)
    for i, seq in enumerate(sequences):
        groups[len(seq)].append(i)
    return [idx[s:s + batch_size] for _, idx in sorted(groups.items()) for s in range(0, len(idx), batch_size)]


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else 0.0
