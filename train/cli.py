"""`zoo-train` and `zoo-eval`: the command lines, their checks, and the order of a run.

A run checks everything it can before it writes anything (the output folder, the corpus and its
columns, the objective, the model or base, the tokenizer, the aux heads, a resumed run's
settings), then trains (`train.loop`), saves the Hub-ready folder (`train.output`), reloads it
with `from_pretrained` and evaluates it (`train.evaluate`). Bad input is one line on stderr and
exit status 2.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import shlex
import shutil
import sys
from pathlib import Path
from typing import Sequence

import torch
from accelerate import PartialState

from cards.cli import Parser, UsageError, first_line, non_negative_int, positive_int, run
from cards.card import read_dataset_card, with_option
from train import data as corpora
from train import loop, output, presets
from train.tokenizer import ensure_pad, load_tokenizer, train_tokenizer

TRAIN_DESCRIPTION = """\
Train a causal LM on a corpus of this project and write an evaluated, Hub-ready checkpoint.

The corpus is a folder written by tinysql-gen, multmath-gen or mcq-gen (or a Hub dataset id);
its kind is told from its columns. The model is built from scratch (--preset, with a tokenizer
trained on the corpus: one token per digit for multmath, byte-level BPE otherwise) or
fine-tuned from --base (a Hub id or a local folder; a pad token is added if it has none).

objectives:
  sft    loss on the completion only (the SQL, the CoT and answer, the label)
  icot   multmath: remove --icot-per-epoch CoT tokens per epoch from the start of the CoT,
         with removal smoothing P(k) ~ exp(-lambda k) and an optimizer reset at each removal
  nocot  multmath: answer only (the standard fine-tuning baseline)
  aux    multmath: answer only + the running-sum loss: linear heads on the outputs of
         --aux-heads of --aux-layer regress the running sums at each answer digit;
         loss = LM + --aux-weight * MSE (targets divided by their RMS)

OUT ends up holding model.safetensors, config.json, generation_config.json, the tokenizer,
metrics.json, training_args.json, log.jsonl, curve.png and a README.md model card.
Checkpoints go to OUT/checkpoints/ while training (--save-every); --resume continues from
the newest one and ends with the same weights as an uninterrupted run.
Multi-GPU: `accelerate launch [--num_processes N] $(which zoo-train) ...` (DDP; pass an
accelerate FSDP config for the 1b preset); the same command runs on CPU.

example:
  multmath-gen --digits 4x4 -n 80000 --out m4
  zoo-train --data m4 --preset tiny --objective icot --epochs 10 --out icot-4x4
"""

EVAL_DESCRIPTION = """\
Evaluate a checkpoint on a split of a corpus: greedy decoding, exact match, and each corpus
kind's metrics (TinySQL: normalized and execution match; multmath: per-digit accuracy;
MCQ: label accuracy and mean gold-label probability). Prints the metrics as JSON.

example:
  zoo-eval --model icot-4x4 --data m4 --split test
"""

NEUTRAL = ("out", "resume", "overwrite", "keep_checkpoints", "tensorboard", "log_every", "save_every",
           "eval_every", "eval_samples", "eval_batch_size", "no_progress")


def train_parser() -> Parser:
    p = Parser(prog="zoo-train", description=TRAIN_DESCRIPTION)
    p.add_argument("--data", required=True, metavar="DIR_OR_ID", help="corpus folder or Hub dataset id")
    p.add_argument("--config", help="corpus config (default: the corpus's default)")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--preset", choices=list(presets.PRESETS), help="train from scratch with this shape")
    model.add_argument("--base", metavar="ID_OR_DIR", help="fine-tune this model (Hub id or local folder)")
    p.add_argument("--arch", choices=presets.ARCHS, help="family of a --preset model (default: the preset's own)")
    p.add_argument("--layers", type=positive_int, help="override the preset's number of layers")
    p.add_argument("--hidden", type=positive_int, help="override the preset's width (MLP stays 4x)")
    p.add_argument("--heads", type=positive_int, help="override the preset's number of attention heads")
    p.add_argument("--vocab-size", type=positive_int, default=4096, help="BPE vocabulary trained from scratch "
                   "(default 4096; multmath always gets one token per digit)")
    p.add_argument("--objective", choices=corpora.OBJECTIVES, default="sft", help="training objective (default sft)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_int, default=1, help="passes over the training split (default 1)")
    length.add_argument("--max-steps", type=positive_int, help="optimizer steps (instead of --epochs)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="examples per micro-batch per process (32)")
    p.add_argument("--grad-accum", type=positive_int, default=1, help="micro-batches per optimizer step (1)")
    p.add_argument("--lr", type=_positive_float, help="peak learning rate (default: 2e-5 with --base, "
                   "1e-3 for tiny/nano, 6e-4 for 33m, 3e-4 for 0.5b/1b)")
    p.add_argument("--schedule", default="linear", choices=["linear", "cosine", "constant", "constant_with_warmup"],
                   help="learning-rate schedule after warm-up (default linear decay)")
    p.add_argument("--warmup-steps", type=non_negative_int, help="default: min(50, a tenth of the steps)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (0.01)")
    p.add_argument("--max-grad-norm", type=_positive_float, default=1.0, help="gradient clipping (1.0)")
    p.add_argument("--precision", choices=["auto", "no", "bf16", "fp16"], default="auto",
                   help="mixed precision (auto: bf16 on GPUs that have it, else fp32)")
    p.add_argument("--max-length", type=positive_int, default=512, help="drop longer examples (512)")
    p.add_argument("--train-samples", type=positive_int, help="use only the first N training records")
    p.add_argument("--seed", type=int, default=0, help="model init, data order, removal smoothing (0)")
    icot = p.add_argument_group("icot")
    icot.add_argument("--icot-per-epoch", type=positive_int, default=8, help="CoT tokens removed per epoch (8)")
    icot.add_argument("--icot-lambda", type=_lambda, default=4.0, help="removal smoothing lambda; inf = off (4)")
    aux = p.add_argument_group("aux")
    aux.add_argument("--aux-layer", type=int, default=-1, help="layer whose heads are read (default -1: the last)")
    aux.add_argument("--aux-heads", default="0,1", help="comma-separated heads of that layer (default 0,1)")
    aux.add_argument("--aux-weight", type=_positive_float, default=1.0, help="lambda of the MSE term (1); the "
                     "running sums are divided by their RMS over the training set")
    ev = p.add_argument_group("evaluation and logging")
    ev.add_argument("--eval-split", default="test", help="split evaluated at the end (default test, else validation)")
    ev.add_argument("--eval-every", type=positive_int, help="evaluate on validation records every N steps")
    ev.add_argument("--eval-samples", type=positive_int, default=200, help="records per --eval-every evaluation")
    ev.add_argument("--eval-batch-size", type=positive_int, default=64, help="prompts per generation batch (64)")
    ev.add_argument("--log-every", type=positive_int, default=10, help="steps per log.jsonl line (10)")
    ev.add_argument("--tensorboard", action="store_true",
                    help="also write TensorBoard events to OUT/runs (needs: pip install 'interp-zoo[tensorboard]')")
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")
    out = p.add_argument_group("output")
    out.add_argument("--out", required=True, help="output folder (must not exist, unless --resume/--overwrite)")
    out.add_argument("--save-every", type=positive_int, help="checkpoint the full training state every N steps")
    out.add_argument("--resume", action="store_true", help="continue the run in OUT from its newest checkpoint")
    out.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    out.add_argument("--keep-checkpoints", action="store_true", help="keep OUT/checkpoints after the run")
    return p


def eval_parser() -> Parser:
    p = Parser(prog="zoo-eval", description=EVAL_DESCRIPTION)
    p.add_argument("--model", required=True, metavar="DIR_OR_ID", help="checkpoint folder (or Hub model id)")
    p.add_argument("--data", required=True, metavar="DIR_OR_ID", help="corpus folder or Hub dataset id")
    p.add_argument("--config", help="corpus config (default: the corpus's default)")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--samples", type=positive_int, help="evaluate only the first N records")
    p.add_argument("--batch-size", type=positive_int, default=64, help="prompts per generation batch (64)")
    p.add_argument("--out", help="also write the metrics to this JSON file (must not exist)")
    p.add_argument("--predictions", metavar="FILE",
                   help="also write one JSON line per record (id, prediction, gold, correct) to FILE (must not "
                        "exist); for TinySQL it is the input of tinysql-score")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def train_main(argv: Sequence[str] | None = None) -> int:
    return run("zoo-train", _train, argv)


def eval_main(argv: Sequence[str] | None = None) -> int:
    return run("zoo-eval", _eval, argv)


def _train(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = train_parser().parse_args(argv)
    if args.base and (args.arch or args.layers or args.hidden or args.heads):
        raise UsageError("--arch, --layers, --hidden and --heads only apply to --preset models")
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise UsageError("--tensorboard needs the tensorboard package: pip install 'interp-zoo[tensorboard]'")
    out = Path(args.out)
    run_settings = {k: v for k, v in vars(args).items() if k not in NEUTRAL}
    resume_from, resuming = _check_out(out, args, run_settings)
    corpus = corpora.load_corpus(args.data, args.config)
    if "train" not in corpus:
        raise UsageError(f"--data {args.data}: no train split (it has {', '.join(corpus)})")
    train_records = corpus["train"]
    if args.train_samples:
        train_records = train_records.select(range(min(args.train_samples, len(train_records))))
    kind = corpora.detect_kind(train_records.column_names)
    corpora.check_objective(kind, args.objective)
    eval_split = _pick_split(corpus, args.eval_split)
    tokenizer, model, shape = _model(args, train_records, kind, out if resuming else None)
    max_length = min(args.max_length, shape.context) if shape else args.max_length
    train_set, dropped = corpora.encode(train_records, kind, tokenizer, args.objective, max_length)
    if dropped:
        print(f"zoo-train: note: {dropped} training records longer than {max_length} tokens left out", file=sys.stderr)
    if not len(train_set):
        raise UsageError("no training record fits in --max-length")
    aux, aux_meta = _aux(args, model, train_set)
    # under `accelerate launch`/torchrun every process gets this far; only one writes. Without CUDA
    # accelerate needs cpu=True to see the other processes (gloo).
    processes = PartialState(cpu=not torch.cuda.is_available())
    settings = _settings(args, len(train_set), processes.num_processes)
    _start_folder(processes, out, args, resuming, tokenizer, run_settings)
    periodic_split = _pick_split(corpus, "validation")
    periodic = _head(corpus[periodic_split], args.eval_samples) if periodic_split and args.eval_every else []
    evaluate = (lambda m: _evaluate(m, tokenizer, periodic, kind, args.eval_batch_size, False)) if periodic else None
    result = loop.train(loop.Objective(model, aux, args.aux_weight), train_set, settings, out, tokenizer.pad_token_id,
                        run_settings, evaluate, resume_from)
    if not result["main"]:
        return 0
    gold_lengths = [train_set.length(i) - len(train_set.prompt[i]) for i in range(len(train_set))]
    output.save_model(out, model, tokenizer, result["lm_state"], result["aux_state"], aux_meta, max(gold_lengths) + 8)
    metrics = _final_eval(out, kind, eval_split, _head(corpus[eval_split]) if eval_split else [], args)
    _finish(out, args, argv, kind, corpus, eval_split, metrics, result, settings, shape, model)
    if not args.keep_checkpoints:
        shutil.rmtree(out / loop.CHECKPOINTS, ignore_errors=True)
    print(json.dumps(metrics))
    return 0


def _start_folder(processes, out: Path, args, resuming: bool, tokenizer, run_settings: dict) -> None:
    """The first write of a run, once every check has passed: OUT (replaced with --overwrite), and what
    a resumed run needs besides a checkpoint (the tokenizer and the settings)."""
    processes.wait_for_everyone()
    if processes.is_main_process:
        if args.overwrite and out.exists() and not args.resume:
            shutil.rmtree(out)
        (out / loop.CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        if not resuming:
            tokenizer.save_pretrained(out / loop.CHECKPOINTS / "tokenizer")
            output.write_json(out / loop.CHECKPOINTS / "run.json", run_settings)
    processes.wait_for_everyone()


def _check_out(out: Path, args, run_settings: dict) -> tuple[Path | None, bool]:
    """(checkpoint to resume from, whether OUT already holds this run); UsageError if OUT must not be touched."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if not out.exists() or args.overwrite and not args.resume:
        return None, False
    if not args.resume:
        raise UsageError(f"--out {out}: already exists (pass --resume to continue its run or --overwrite to replace it)")
    run_file = out / loop.CHECKPOINTS / "run.json"
    if not run_file.exists():
        raise UsageError(f"--resume: {out} holds no unfinished zoo-train run (no {loop.CHECKPOINTS}/run.json)")
    before = json.loads(run_file.read_text())
    differ = [k for k in sorted(set(before) | set(run_settings)) if before.get(k) != run_settings.get(k)]
    if differ:
        k = differ[0]
        raise UsageError(f"--resume: {out} holds another run ({len(differ)} setting(s) differ, e.g. "
                         f"--{k.replace('_', '-')} was {before.get(k)!r}, now {run_settings.get(k)!r})")
    return loop.latest_checkpoint(out), True


def _pick_split(corpus, wanted: str) -> str | None:
    for split in (wanted, "test", "validation"):
        if split in corpus and len(corpus[split]):
            return split
    return None


def _model(args, records, kind: str, resumed: Path | None):
    """(tokenizer, model, preset shape or None): a new model with a tokenizer trained on the corpus, or the base."""
    if args.base:
        _check_model_path("--base", args.base)
        try:
            tokenizer = load_tokenizer(args.base)
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32)
        except Exception as err:  # OSError, ValueError, HTTP errors...: all mean "cannot load it"
            raise UsageError(f"--base {args.base}: cannot load it ({first_line(err)})") from None
        ensure_pad(tokenizer, model)
        return tokenizer, model, None
    try:
        shape = presets.shape(args.preset, args.layers, args.hidden, args.heads)
    except ValueError as err:
        raise UsageError(str(err)) from None
    arch = args.arch or shape.arch
    if arch == "qwen2" and kind == "multmath":
        raise UsageError("a qwen2 folder is loaded by AutoTokenizer as Qwen2Tokenizer, which cannot hold the "
                         "one-token-per-digit vocabulary: pass --arch llama (or gpt2) for multmath")
    if resumed is not None:
        tokenizer = load_tokenizer(str(resumed / loop.CHECKPOINTS / "tokenizer"))
    else:
        texts = ("".join(corpora.pieces(r, kind)) for r in _head(records, 50_000))
        tokenizer = train_tokenizer(texts, digits=kind == "multmath", vocab_size=args.vocab_size, qwen2=arch == "qwen2")
    config = presets.config(shape, arch, len(tokenizer), tokenizer.bos_token_id,
                            tokenizer.eos_token_id, tokenizer.pad_token_id)
    return tokenizer, presets.build(config, args.seed), shape


def _aux(args, model, train_set):
    if args.objective != "aux":
        return None, None
    from train.aux import AuxHeads, target_scale

    n_layers, n_heads = model.config.num_hidden_layers, model.config.num_attention_heads
    layer = args.aux_layer % n_layers if -n_layers <= args.aux_layer < n_layers else None
    try:
        heads = [int(h) for h in args.aux_heads.split(",")]
    except ValueError:
        heads = [-1]
    if layer is None:
        raise UsageError(f"--aux-layer {args.aux_layer}: the model has {n_layers} layers")
    if not heads or any(not 0 <= h < n_heads for h in heads) or len(set(heads)) != len(heads):
        raise UsageError(f"--aux-heads {args.aux_heads}: expected distinct heads from 0 to {n_heads - 1}")
    corpora.check_aux(train_set)
    torch.manual_seed(args.seed)
    scale = target_scale(train_set.running_sums)
    return AuxHeads(model, layer, heads, scale), {"layer": layer, "heads": heads, "weight": args.aux_weight,
                                                  "scale": scale}


def _settings(args, examples: int, world: int) -> loop.Settings:
    s = loop.Settings(
        objective=args.objective, batch_size=args.batch_size, grad_accum=args.grad_accum,
        lr=args.lr or (2e-5 if args.base else {"tiny": 1e-3, "nano": 1e-3, "33m": 6e-4}.get(args.preset, 3e-4)),
        weight_decay=args.weight_decay, schedule=args.schedule, max_grad_norm=args.max_grad_norm,
        precision=args.precision, seed=args.seed, epochs=args.epochs, max_steps=args.max_steps,
        save_every=args.save_every, eval_every=args.eval_every, log_every=args.log_every,
        icot_per_epoch=args.icot_per_epoch, icot_lambda=args.icot_lambda, aux_weight=args.aux_weight,
        tensorboard=args.tensorboard, progress=not args.no_progress)
    if loop.steps_per_epoch(examples, s, world) == 0:
        raise UsageError(f"the training split ({examples} examples) is smaller than one optimizer step "
                         f"(--batch-size {s.batch_size} x --grad-accum {s.grad_accum} x {world} processes)")
    steps = loop.total_steps(examples, s, world)
    s.warmup_steps = args.warmup_steps if args.warmup_steps is not None else min(50, steps // 10)
    return s


def _final_eval(out: Path, kind: str, split: str | None, records, args) -> dict:
    """Reload the saved folder (as a user would) and evaluate it."""
    if not split:
        return {}
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    tokenizer = load_tokenizer(str(out))
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    return _evaluate(model, tokenizer, records, kind, args.eval_batch_size, not args.no_progress)


def _evaluate(model, tokenizer, records, kind, batch_size, progress, outputs: list | None = None) -> dict:
    from train.evaluate import evaluate

    return evaluate(model, tokenizer, records, kind, batch_size, progress, outputs)


def _finish(out: Path, args, argv, kind, corpus, split, metrics, result, settings, shape, model) -> None:
    """metrics.json, training_args.json, curve.png and README.md."""
    from cards.model_card import ModelDescription

    counts = presets.parameter_counts(model)
    levels = sorted(set(corpus["train"]["level"])) if "level" in corpus["train"].column_names else []
    command = shlex.join(["zoo-train", *[a for a in argv if a not in ("--resume", "--overwrite")]])
    hardware = _hardware(result["processes"])
    training = {k: v for k, v in vars(settings).items() if k not in ("progress",)}
    output.write_json(out / "metrics.json", {"split": split, "corpus": args.data, "config": args.config, **metrics})
    output.write_json(out / "training_args.json", {
        "command": command, "args": vars(args), "settings": training, "kind": kind, "steps": result["steps"],
        "steps_per_epoch": result["steps_per_epoch"], "seconds": round(result["seconds"], 1), "hardware": hardware,
        "mixed_precision": result["mixed_precision"], "parameters": counts, "vocab_size": model.config.vocab_size,
        "architecture": model.config.model_type})
    output.plot(out, loop.read_log(out))
    name = out.resolve().name
    dataset, corpus_command = _corpus_origin(args.data)
    output.write_card(out, ModelDescription(
        name=name, dataset=dataset, dataset_config=args.config, kind=kind, split=split or "none",
        objective=args.objective, metrics=metrics, parameters=counts, architecture=model.config.model_type,
        command=with_option(with_option(command, "--data", dataset), "--out", name), corpus_command=corpus_command,
        hardware=hardware, seconds=result["seconds"], steps=result["steps"], base_model=args.base,
        preset=args.preset, levels=levels,
        training={k: training[k] for k in ("objective", "epochs", "max_steps", "batch_size", "grad_accum", "lr",
                                           "schedule", "warmup_steps", "weight_decay", "max_grad_norm", "seed")
                  if training[k] is not None and not (k == "epochs" and training["max_steps"])}))


def _corpus_origin(data: str) -> tuple[str, str | None]:
    """How the card names the corpus: a Hub id as it is; a local folder by its name, with the generator
    command from its own card (so the card holds no path of this machine)."""
    folder = Path(data).expanduser()
    if not folder.is_dir():
        return data, None
    name = folder.resolve().name
    try:
        return name, with_option(read_dataset_card(folder)[1], "--out", name)
    except (OSError, ValueError):
        return name, None


def _hardware(processes: int) -> str:
    if torch.cuda.is_available():
        return f"{processes} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {platform.machine()})"


def _eval(argv: Sequence[str] | None) -> int:
    args = eval_parser().parse_args(argv)
    for option, path in (("--out", args.out), ("--predictions", args.predictions)):
        if path and Path(path).exists():
            raise UsageError(f"{option} {path}: already exists")
    corpus = corpora.load_corpus(args.data, args.config)
    if args.split not in corpus:
        raise UsageError(f"--split {args.split}: the corpus has {', '.join(corpus)}")
    records = _head(corpus[args.split], args.samples)
    kind = corpora.detect_kind(corpus[args.split].column_names)
    _check_model_path("--model", args.model)
    try:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
        tokenizer = load_tokenizer(args.model)
    except Exception as err:
        raise UsageError(f"--model {args.model}: cannot load it ({first_line(err)})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    outputs = []
    metrics = {"split": args.split,
               **_evaluate(model, tokenizer, records, kind, args.batch_size, not args.no_progress, outputs)}
    text = json.dumps(metrics, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.predictions:
        from train.evaluate import prediction_rows

        rows = prediction_rows(records, outputs, kind)
        Path(args.predictions).write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(text)
    return 0


def _check_model_path(option: str, name: str) -> None:
    """A name that can only be a local folder (a path, or more than ORG/NAME) must exist."""
    if not Path(name).expanduser().exists() and (name.startswith((".", "/", "~")) or name.count("/") > 1):
        raise UsageError(f"{option} {name}: no such folder")


def _head(split, n: int | None = None) -> list[dict]:
    """The first n records of a split (all of them if n is None) as plain dicts."""
    if n is not None:
        split = split.select(range(min(n, len(split))))
    return split.to_list()


def _positive_float(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _lambda(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number or inf, got {text!r}")
    return value
