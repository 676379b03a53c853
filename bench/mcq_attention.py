"""Does an MCQ checkpoint find the gold option by a duplicate-token head, or by how alike the options'
embeddings are? Measured on the test records of an MCQ corpus whose distractors the context does not
mention (levels 1 and 2).

    python bench/mcq_attention.py zoo/mcq-l1-nano-h16 --data zoo-build/corpora/mcq-l1 -n 2000

Per checkpoint, its label accuracy on those records and two markdown tables. First, for each layer
and head, the mean attention from the gold option's word (in the option list) to that word's earlier
occurrences in the context, beside the mean attention from a distractor's word to those same tokens:
a duplicate-token head has the first near 1 and the second near 0; a head that reads a context
position whatever the option is has the two alike. Second, label accuracy in five equal groups of
records, ranked by the cosine between the gold word's input embedding and its nearest distractor's.
Label accuracy is zoo-eval's (`train.evaluate.choice_logprobs`): the gold label's continuation is the
most likely (a label such as ` C` may be two tokens for a tokenizer trained on level 1's A and B).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from cards.generator import get
from train.evaluate import choice_logprobs


def word_positions(offsets, prompt: str, labels, choices) -> list[int]:
    """Token index of each option's word in the option list (the line `L. word`)."""
    starts = [prompt.rindex(f"\n{label}. {choice}") + len(f"\n{label}. ") for label, choice in zip(labels, choices)]
    return [next(i for i, (a, b) in enumerate(offsets) if a <= start < b) for start in starts]


def measure(model, tokenizer, record) -> dict:
    """Heads' attention gold word -> its earlier copies and distractor words -> those copies; the largest
    cosine between the gold word's input embedding and a distractor's."""
    encoded = tokenizer(record["prompt"], return_offsets_mapping=True)
    ids = encoded["input_ids"]
    words = word_positions(encoded["offset_mapping"], record["prompt"], record["labels"], record["choices"])
    context = min(words) - 2  # the option list starts at the first label
    out = model(torch.tensor([ids]), output_attentions=True)
    attention = torch.stack(out.attentions)[:, 0]  # layer, head, query, key
    gold = words[record["answer"]]
    copies = [i for i in range(context) if ids[i] == ids[gold]]
    distractors = [w for i, w in enumerate(words) if i != record["answer"]]
    embeddings = torch.nn.functional.normalize(model.get_input_embeddings().weight[[ids[w] for w in words]], dim=-1)
    return {"to_copies": attention[:, :, gold, copies].sum(-1),
            "distracted": attention[:, :, distractors][..., copies].sum(-1).mean(-1),
            "cosine": max(float(embeddings[record["answer"]] @ embeddings[i])
                          for i in range(len(words)) if i != record["answer"])}


def head_table(rows: list[dict]) -> list[str]:
    to_copies = torch.stack([r["to_copies"] for r in rows]).mean(0)
    distracted = torch.stack([r["distracted"] for r in rows]).mean(0)
    lines = ["| layer | head | gold word -> its copy in the context | distractor word -> that copy |",
             "|---|---|---|---|"]
    for layer in range(to_copies.shape[0]):
        for head in range(to_copies.shape[1]):
            lines.append(f"| {layer} | {head} | {to_copies[layer, head]:.2f} | {distracted[layer, head]:.2f} |")
    return lines


def similarity_table(rows: list[dict], groups: int = 5) -> list[str]:
    """Label accuracy in equal-size groups of records, by the gold/distractor embedding cosine."""
    ranked = sorted(rows, key=lambda r: r["cosine"])
    lines = ["| embedding cosine, gold vs nearest distractor | records | label accuracy |", "|---|---|---|"]
    for g in range(groups):
        group = ranked[g * len(ranked) // groups:(g + 1) * len(ranked) // groups]
        if group:
            accuracy = sum(r["correct"] for r in group) / len(group)
            lines.append(f"| {group[0]['cosine']:.2f} to {group[-1]['cosine']:.2f} | {len(group)} | {accuracy:.3f} |")
    return lines


def report(name: str, model, tokenizer, records) -> str:
    rows = [measure(model, tokenizer, record) for record in records]
    scores = choice_logprobs(model, tokenizer, records, get("mcq").view, batch_size=64, progress=False)
    for row, record, options in zip(rows, records, scores):
        row["correct"] = max(range(len(options)), key=options.__getitem__) == record["answer"]
    accuracy = sum(r["correct"] for r in rows) / len(rows)
    return "\n".join([f"{name}: label accuracy {accuracy:.3f} on {len(rows)} records", "", *head_table(rows), "",
                      *similarity_table(rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="checkpoint folders (a zoo download or release)")
    parser.add_argument("--data", required=True, help="an MCQ corpus folder (level 1 or 2)")
    parser.add_argument("-n", type=int, default=300, help="test records to read (default 300)")
    args = parser.parse_args(argv)
    missing = next((path for path in [*args.models, args.data] if not Path(path).is_dir()), None)
    if missing is not None:
        parser.error(f"{missing}: not a folder")
    torch.set_grad_enabled(False)
    records = load_dataset(args.data, split="test").select(range(args.n))
    for path in args.models:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()
        print(report(path, model, tokenizer, records), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
