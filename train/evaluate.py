"""Evaluation of a causal LM on a split of any corpus kind: greedy decoding and each kind's metrics.

The model sees the prompt exactly as in training (`data.pieces`) and decodes greedily until EOS.
Every kind reports `exact_match`:

- TinySQL (and plain prompt/completion corpora): the completion equals the gold after stripping
  spaces at the ends; TinySQL adds the TinySQL scorer's `normalized` and `execution` match.
- multmath: the digits after the last `####` equal the answer (a model that still writes part of
  its CoT is scored on its answer, like the ICoT scorer); `digit_accuracy` is the share of answer
  digits right in place and `digit_accuracy_by_position` gives it per digit c_0, c_1, ...
- MCQ: the decoded label equals the gold label; `label_accuracy` is the argmax of the options'
  log-likelihoods (` A`, ` B`, ...) and `gold_probability` the mean probability of the gold
  label, normalised over the options.

Prompts are batched by exact token length, so no padding is ever fed to the model.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig

from train.data import MARKER, pieces


@torch.no_grad()
def evaluate(model, tokenizer, records, kind: str, batch_size: int = 64, progress: bool = True,
             outputs: list | None = None) -> dict:
    """Metrics of `model` on `records` (a list of dicts or a datasets split); the greedy completions
    are appended to `outputs` when it is given."""
    records = list(records)
    if not records:
        return {"n": 0}
    model.eval()
    completions = generate(model, tokenizer, records, kind, batch_size, progress)
    if outputs is not None:
        outputs.extend(completions)
    metrics = {"n": len(records), **score(records, completions, kind)}
    if kind == "mcq":
        metrics.update(label_scores(model, tokenizer, records, batch_size, progress))
    return metrics


def generate(model, tokenizer, records, kind: str, batch_size: int, progress: bool) -> list[str]:
    """The greedy completion of every record's prompt, decoded without special tokens."""
    texts = [pieces(r, kind) for r in records]
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


def gold(record: dict, kind: str) -> str:
    """What exact match compares a completion with: the answer digits, the label or the completion."""
    if kind == "multmath":
        return record["answer"].replace(" ", "")
    return record["answer_label"] if kind == "mcq" else record["completion"].strip()


def answer(output: str, kind: str) -> str:
    """The part of a completion that exact match reads."""
    return answer_digits(output) if kind == "multmath" else output.strip()


def prediction_rows(records, outputs: list[str], kind: str) -> list[dict]:
    """One row per record: its id, the completion, the gold and whether they match exactly."""
    return [{"id": r.get("id", n), "prediction": o.strip(), "gold": gold(r, kind),
             "correct": answer(o, kind) == gold(r, kind)} for n, (r, o) in enumerate(zip(records, outputs))]


def score(records, outputs: list[str], kind: str) -> dict:
    """Exact match plus the kind's own metrics."""
    if kind == "multmath":
        return _multmath(records, outputs)
    metrics = {"exact_match": _mean(answer(o, kind) == gold(r, kind) for r, o in zip(records, outputs))}
    if kind == "mcq":
        return metrics
    if kind == "tinysql":
        from tinysql.score import score_one

        scores = [score_one(r["sql_statement"], o.strip(), r["create_statement"], r.get("dialect") or "sqlite")
                  for r, o in zip(records, outputs)]
        metrics["normalized_match"] = _mean(s["normalized"] for s in scores)
        metrics["execution_match"] = _mean(s["execution"] for s in scores)
    return metrics


def answer_digits(output: str) -> str:
    """The digits after the last `####` of a multmath completion ('' if there is none)."""
    marker = MARKER.strip()
    if marker not in output:
        return ""
    return "".join(ch for ch in output.rsplit(marker, 1)[1] if ch.isdigit())


def _multmath(records, outputs: list[str]) -> dict:
    width = max(len(r["answer_digits"]) for r in records)
    right, total, exact = [0] * width, [0] * width, 0
    for record, output in zip(records, outputs):
        expected, got = gold(record, "multmath"), answer_digits(output)
        exact += got == expected
        for k, digit in enumerate(expected):
            total[k] += 1
            right[k] += k < len(got) and got[k] == digit
    return {"exact_match": exact / len(records),
            "digit_accuracy": sum(right) / sum(total),
            "digit_accuracy_by_position": [r / t for r, t in zip(right, total) if t]}


@torch.no_grad()
def label_scores(model, tokenizer, records, batch_size: int, progress: bool) -> dict:
    """MCQ: accuracy of the most likely label and mean probability of the gold one among the options."""
    rows, owners = [], []  # one row per (record, option): prompt + continuation ids, continuation length
    for n, record in enumerate(records):
        prompt = tokenizer(record["prompt"])["input_ids"]
        for label in record["labels"]:
            cont = tokenizer(" " + label, add_special_tokens=False)["input_ids"]
            rows.append((prompt + cont, len(cont)))
            owners.append(n)
    scores = [0.0] * len(rows)
    device = next(model.parameters()).device
    for group in tqdm(_by_length([r for r, _ in rows], batch_size), desc="label scores", disable=not progress,
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
    for n, record in enumerate(records):
        options = torch.tensor(per_record[n])
        correct.append(int(options.argmax()) == record["answer"])
        gold_prob.append(float(options.softmax(0)[record["answer"]]))
    return {"label_accuracy": _mean(correct), "gold_probability": _mean(gold_prob)}


def _by_length(sequences: list[list[int]], batch_size: int) -> list[list[int]]:
    groups = defaultdict(list)
    for i, seq in enumerate(sequences):
        groups[len(seq)].append(i)
    return [idx[s:s + batch_size] for _, idx in sorted(groups.items()) for s in range(0, len(idx), batch_size)]


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else 0.0
