"""`zoo-train` and `zoo-eval`: the command lines.

`zoo-train`'s options are built from the run settings (`train.config.RunConfig`, one option per
field, grouped and checked as its metadata says) and the objectives' own settings
(`train.objectives`); the parsed options become a `RunConfig` and `train.run` does the rest.
`zoo-eval` evaluates a checkpoint on a split through the corpus's view; it checks that its --out and
--predictions files can be written before it evaluates. Bad input, and a final evaluation that
fails after training (the run's folder is then complete but for metrics.json), are one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Sequence

from cards.cli import Parser, UsageError, first_line, positive_int, run
from train.config import GROUPS, LAYOUTS, RunConfig, flag
from train.objectives import OBJECTIVES, objective, owner

TRAIN_DESCRIPTION = """\
Train a causal LM on a corpus and write an evaluated, Hub-ready checkpoint.

The corpus is a folder written by a generator of this project (tinysql-gen, multmath-gen, mcq-gen,
...) or a Hub dataset id: the generator its card records decides how a record splits into prompt,
chain of thought and answer, and how completions are scored. A corpus whose card records no
generator trains as plain text if it has prompt and completion columns. The model is built from
scratch (--preset, with a tokenizer trained on the corpus: one token per digit where the
generator asks for it, byte-level BPE otherwise) or fine-tuned from --base (a Hub id or a local
folder; a pad token is added if it has none).

objectives:
{objectives}

OUT ends up holding model.safetensors, config.json, generation_config.json, the tokenizer,
metrics.json, training_args.json (the run manifest), log.jsonl, curve.png, curve.json and a
README.md model card. Checkpoints go to OUT/checkpoints/ while training (--save-every); --resume continues from
the newest one and ends with the same weights as an uninterrupted run. Everything but metrics.json
is written before the final evaluation (on all of the split, or --eval-limit N records; --no-eval
skips it; records longer than the model's context are skipped and counted as skipped_too_long):
if it fails, the card says so, zoo-train exits with status 2 and zoo-eval evaluates the folder.
Multi-GPU: `accelerate launch [--num_processes N] $(which zoo-train) ...` (DDP; pass an
accelerate FSDP config for the 1b preset); the same command runs on CPU.
From Python: `train.run(train.RunConfig(data=..., out=..., preset="tiny"))`.

example:
  multmath-gen --digits 4x4 -n 80000 --out m4
  zoo-train --data m4 --preset tiny --objective icot --epochs 10 --out icot-4x4
"""

EVAL_DESCRIPTION = """\
Evaluate a checkpoint on a split of a corpus: greedy decoding, exact match, and the metrics of
the corpus's generator (TinySQL: normalized and execution match; multmath: per-digit accuracy;
MCQ: label accuracy and mean gold-label probability). Prints the metrics as JSON.
--attribution instead scores attribution methods' token relevance against the ground-truth spans of
the corpus's attribution column (train/attribution.py) and prints a markdown table.

examples:
  zoo-eval --model icot-4x4 --data m4 --split test
  zoo-eval --model icot-4x4 --data m4 --split test --attribution grad-input,rollout,random
"""


def train_parser() -> Parser:
    described = "\n".join(textwrap.fill(o.summary, 100, initial_indent=f"  {name:6} ", subsequent_indent=" " * 9,
                                        break_on_hyphens=False)
                          for name, o in OBJECTIVES.items())
    p = Parser(prog="zoo-train", description=TRAIN_DESCRIPTION.format(objectives=described))
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for f in dataclasses.fields(RunConfig):
        group, together = groups[f.metadata["group"]], f.metadata["exclusive"]
        if together and together not in exclusive:
            exclusive[together] = group.add_mutually_exclusive_group()
        _add(exclusive.get(together, group), f, f.default)
    for o in OBJECTIVES.values():
        if dataclasses.fields(o):
            group = p.add_argument_group(f"--objective {o.name}")
            for f in dataclasses.fields(o):
                _add(group, f, argparse.SUPPRESS)  # absent unless given: see config_from
    return p


def _add(group, f: dataclasses.Field, default) -> None:
    """The option of one settings field."""
    meta, required = f.metadata, f.default is dataclasses.MISSING
    hidden = f.default is None or f.default is dataclasses.MISSING or isinstance(f.default, bool)
    shown = "" if hidden else f" (default {_shown(f.default)})"
    kwargs = {"dest": f.name, "help": meta["help"] + shown}
    if meta["type"] is bool:
        kwargs.update(action="store_false" if f.default is True else "store_true")
    else:
        choices = meta["choices"]() if callable(meta["choices"]) else meta["choices"]
        kwargs.update(type=meta["parse"], choices=choices, metavar=meta["metavar"], required=required,
                      default=None if required else default)
    group.add_argument(flag(f), **kwargs)


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def config_from(args: argparse.Namespace) -> RunConfig:
    """The run settings of parsed `zoo-train` options; UsageError for an objective option given with another
    objective."""
    values = vars(args)
    chosen = values["objective"]
    given = {k: v for k, v in values.items() if owner(k)}
    for key in given:
        if owner(key) != chosen:
            raise UsageError(f"--{key.replace('_', '-')} only applies to --objective {owner(key)}")
    settings = {k: v for k, v in values.items() if k not in given and k != "objective"}
    return RunConfig(**settings, objective=objective(chosen, given))


def eval_parser() -> Parser:
    p = Parser(prog="zoo-eval", description=EVAL_DESCRIPTION)
    p.add_argument("--model", required=True, metavar="DIR_OR_ID", help="checkpoint folder (or Hub model id)")
    p.add_argument("--data", required=True, metavar="DIR_OR_ID", help="corpus folder or Hub dataset id")
    p.add_argument("--config", help="corpus config (default: the corpus's default)")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--layout", choices=LAYOUTS,
                   help="sequence layout of a multiplication corpus (default: the one the model's run recorded in "
                        "its training_args.json, else ours); see zoo-train --help")
    p.add_argument("--samples", type=positive_int, help="evaluate only the first N records")
    p.add_argument("--batch-size", type=positive_int, default=64, help="prompts per generation batch (64)")
    p.add_argument("--out", help="also write the metrics to this JSON file (must not exist)")
    p.add_argument("--predictions", metavar="FILE",
                   help="also write one JSON line per record (id, prediction, gold, correct) to FILE (must not "
                        "exist); for TinySQL it is the input of tinysql-score")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--attribution", metavar="METHOD[,METHOD...]",
                   help="instead of decoding, score attribution methods (grad-input, gradient, rollout, random) "
                        "against the ground-truth spans of the corpus's attribution column: a markdown table, and "
                        "JSON in --out")
    p.add_argument("--attribution-samples", type=positive_int, default=200, metavar="N",
                   help="records of the split whose targets --attribution scores (the first N; 200)")
    return p


def train_main(argv: Sequence[str] | None = None) -> int:
    return run("zoo-train", _train, argv)


def eval_main(argv: Sequence[str] | None = None) -> int:
    return run("zoo-eval", _eval, argv)


def _train(argv: Sequence[str] | None) -> int:
    from train.trainer import run as train_run

    metrics = train_run(config_from(train_parser().parse_args(argv)))
    if metrics is not None:
        print(json.dumps(metrics))
    return 0


def _eval(argv: Sequence[str] | None) -> int:
    import torch

    from train import attribution
    from train.data import in_layout, open_corpus, recorded_layout, use_tokenizer
    from train.evaluate import evaluate, prediction_rows
    from train.output import quiet
    from train.trainer import head, load_pretrained

    args = eval_parser().parse_args(argv)
    if args.no_progress:
        quiet()
    chosen = attribution.methods(args.attribution) if args.attribution else None
    if chosen and args.predictions:
        raise UsageError("--predictions does not go with --attribution (which decodes nothing)")
    for option, path in (("--out", args.out), ("--predictions", args.predictions)):
        if path:
            check_new_file(option, path)
    if args.out and args.predictions and Path(args.out).resolve() == Path(args.predictions).resolve():
        raise UsageError(f"--out and --predictions name the same file {args.out}")
    corpus = open_corpus(args.data, args.config)
    if args.split not in corpus.splits:
        raise UsageError(f"--split {args.split}: the corpus has {', '.join(corpus.splits)}")
    if chosen:
        attribution.check_corpus(corpus.splits[args.split], corpus.view)
    records = head(corpus.splits[args.split], args.attribution_samples if chosen else args.samples)
    model, tokenizer = load_pretrained("--model", args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    corpus = in_layout(corpus, args.layout or recorded_layout(model.name_or_path))
    use_tokenizer(corpus.view, tokenizer)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    if chosen:
        return _attribution(args, chosen, corpus, model, tokenizer, records)
    outputs: list[str | None] = []
    metrics = {"split": args.split,
               **evaluate(model, tokenizer, records, corpus.view, args.batch_size, not args.no_progress, outputs)}
    text = json.dumps(metrics, indent=2)
    print(text)
    try:
        if args.out:
            Path(args.out).write_text(text + "\n")
        if args.predictions:
            rows = prediction_rows(records, outputs, corpus.view)
            Path(args.predictions).write_text("".join(json.dumps(row) + "\n" for row in rows))
    except OSError as err:
        raise UsageError(f"cannot write the results ({first_line(err)}); the metrics are above") from err
    return 0


def _attribution(args, chosen: list[str], corpus, model, tokenizer, records: list[dict]) -> int:
    """`zoo-eval --attribution`: the methods' scores as a markdown table, and as JSON in --out."""
    from train import attribution

    attribution.check_corpus(corpus.splits[args.split], corpus.view)  # the view in the model's recorded layout
    result = {"model": args.model, "corpus": corpus.name, "config": corpus.config, "split": args.split,
              **attribution.report(model, tokenizer, records, corpus.view, chosen, model.name_or_path)}
    print(attribution.table(result, f"Attribution on {corpus.kind} ({corpus.name}, config {corpus.config}, "
                                    f"{args.split}: {result['targets']} targets of {result['records']} records), "
                                    f"model {args.model} (target accuracy {result['target_accuracy']:.3f})"))
    try:
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    except OSError as err:
        raise UsageError(f"cannot write the results ({first_line(err)}); the table is above") from err
    return 0


def check_new_file(option: str, path: str) -> None:
    """UsageError unless `path` does not exist and its folder exists and can be written."""
    file = Path(path)
    folder = file.parent
    if file.exists():
        raise UsageError(f"{option} {path}: already exists")
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: {folder} is not a folder" if folder.exists() else
                         f"{option} {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: cannot write in {folder}")


if __name__ == "__main__":
    sys.exit(train_main())
