"""Does an MCQ checkpoint find the gold option by a duplicate-token head? Attention, per head, on the
test records of an MCQ corpus whose distractors the context does not mention (levels 1 and 2).

    python bench/mcq_attention.py zoo/mcq-l1-nano-cool --data zoo-build/corpora/mcq-l1 -n 300

For each layer and head, the mean attention from the gold option's word (in the option list) to that
word's earlier occurrences in the context, beside the same head's largest attention from a distractor's
word to those same tokens: a duplicate-token head has the first near 1 and the second near 0, a head
that reads a context position whatever the option is has the two alike. Prints one markdown table per checkpoint with its label accuracy on those records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer


def word_positions(offsets, prompt: str, labels, choices) -> list[int]:
    """Token index of each option's word in the option list (the line `L. word`)."""
    starts = [prompt.rindex(f"\n{label}. {choice}") + len(f"\n{label}. ") for label, choice in zip(labels, choices)]
    return [next(i for i, (a, b) in enumerate(offsets) if a <= start < b) for start in starts]


def measure(model, tokenizer, record) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(heads' attention gold word -> its earlier copies, distractor words -> those copies, correct)."""
    encoded = tokenizer(record["prompt"], return_offsets_mapping=True)
    ids = encoded["input_ids"]
    words = word_positions(encoded["offset_mapping"], record["prompt"], record["labels"], record["choices"])
    context = min(words) - 2  # the option list starts at the first label
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    attention = torch.stack(out.attentions)[:, 0]  # layer, head, query, key
    gold = words[record["answer"]]
    copies = [i for i in range(context) if ids[i] == ids[gold]]
    to_copies = attention[:, :, gold, copies].sum(-1)
    distractors = [w for i, w in enumerate(words) if i != record["answer"]]
    distracted = attention[:, :, distractors][..., copies].sum(-1).mean(-1)
    labels = [tokenizer.encode(" " + label, add_special_tokens=False)[0] for label in record["labels"]]
    picked = int(out.logits[0, -1, labels].argmax())
    return to_copies, distracted, picked == record["answer"]


def table(name: str, model, tokenizer, records) -> str:
    rows = [measure(model, tokenizer, record) for record in records]
    to_copies = torch.stack([r[0] for r in rows]).mean(0)
    distracted = torch.stack([r[1] for r in rows]).mean(0)
    accuracy = sum(r[2] for r in rows) / len(rows)
    lines = [f"{name}: label accuracy {accuracy:.3f} on {len(rows)} records", "",
             "| layer | head | gold word -> its copy in the context | distractor word -> that copy |",
             "|---|---|---|---|"]
    for layer in range(to_copies.shape[0]):
        for head in range(to_copies.shape[1]):
            lines.append(f"| {layer} | {head} | {to_copies[layer, head]:.2f} | {distracted[layer, head]:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="checkpoint folders (a zoo download or release)")
    parser.add_argument("--data", required=True, help="an MCQ corpus folder (level 1 or 2)")
    parser.add_argument("-n", type=int, default=300, help="test records to read (default 300)")
    args = parser.parse_args(argv)
    missing = next((path for path in [*args.models, args.data] if not Path(path).is_dir()), None)
    if missing is not None:
        parser.error(f"{missing}: not a folder")
    records = load_dataset(args.data, split="test").select(range(args.n))
    for path in args.models:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()
        print(table(path, model, tokenizer, records), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
