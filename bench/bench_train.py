"""Trainer benchmarks: padding in the batches, the trainer's step throughput against a bare loop, and
the time zoo-train takes to prepare a large corpus before its first step.

    python bench/bench_train.py --padding              # real-token share of the computed batches, per corpus
    python bench/bench_train.py --throughput           # zoo-train's loop vs a bare PyTorch loop, same batches
    python bench/bench_train.py --padding --throughput --preset nano --steps 60 --repeats 3
    python bench/bench_train.py --prepare              # data preparation of `multmath-gen --digits 4x4 -n 808000`
    python bench/bench_train.py --prepare --corpus m4  # ... of a corpus folder already generated

`--prepare` times what `zoo-train` does between its start and its first step, stage by stage, with
the trainer's own functions: open the corpus, train the tokenizer and build the model, encode the
training split (wall and CPU seconds; the corpus is generated first unless `--corpus` is given).

Corpora are generated into a temporary folder. The bare loop runs the same model (same init),
the same micro-batches (`train.loop.micro_batches`, collated on the fly in both) and the same
AdamW, clipping and LR schedule, with nothing else: no accelerate, no logging, no progress bar.
The two alternate `--repeats` times; the table gives medians of the wall time and of the process's
CPU time (the trainer's setup, progress bar and logging included). On a shared machine the CPU
time is the steadier measure of the work each loop does. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcq.cli import main as mcq_gen  # noqa: E402
from multmath.cli import main as multmath_gen  # noqa: E402
from tinysql.cli import main as tinysql_gen  # noqa: E402
from train import data, loop, presets, trainer as zoo_trainer  # noqa: E402
from train.config import RunConfig  # noqa: E402
from train.objectives import objective  # noqa: E402
from train.tokenizer import train_tokenizer  # noqa: E402

CORPORA = {
    "tinysql level 1": (tinysql_gen, ["--level", "1", "-n", "4000"], "sft"),
    "tinysql level 5": (tinysql_gen, ["--level", "5", "-n", "4000"], "sft"),
    "multmath 4x4 icot": (multmath_gen, ["--digits", "4x4", "-n", "4000"], "icot"),
    "multmath 3x5,5x3 sft": (multmath_gen, ["--digits", "3x5,5x3", "-n", "4000"], "sft"),
    "mcq level 3": (mcq_gen, ["--level", "3", "-n", "4000"], "sft"),
}


def corpus(root: Path, name: str, chosen: str | None = None, tokenizer=None):
    make, args, default = CORPORA[name]
    folder = root / name.replace(" ", "_")
    if not folder.exists():
        assert make([*args, "--out", str(folder)]) == 0
    opened = data.open_corpus(str(folder))
    records, view = opened.splits["train"], opened.view
    if tokenizer is None:
        tokenizer = train_tokenizer(("".join(view.pieces(r)) for r in records), view.digit_tokenizer, 4096)
    enc, _ = data.encode(records, view, tokenizer, objective(chosen or default).keeps_cot)
    return enc, tokenizer


def padding(root: Path, batch_size: int) -> None:
    print(f"\nreal (non-padding) share of the tokens computed, batch size {batch_size}\n")
    print("| corpus | mean length | grouped by length | random batches |")
    print("|---|---|---|---|")
    for name in CORPORA:
        enc, _ = corpus(root, name)
        lengths = [enc.length(i) for i in range(len(enc))]
        grouped = data.batches(lengths, batch_size, seed=0, epoch=0)
        order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0)).tolist()
        random = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        print(f"| {name} | {statistics.mean(lengths):.1f} | {data.real_fraction(lengths, grouped):.3f} | "
              f"{data.real_fraction(lengths, random):.3f} |")


def fresh_model(shape, tokenizer, seed: int = 0):
    config = presets.config(shape, shape.arch, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id,
                            tokenizer.pad_token_id)
    return presets.build(config, seed)


def bare_loop(model, enc, settings: RunConfig, pad_id: int) -> None:
    """`settings.max_steps` steps of the plainest loop over the trainer's batches."""
    from transformers import get_scheduler

    per_epoch = settings.steps_per_epoch(len(enc))
    optimizer = torch.optim.AdamW(loop.param_groups(model, settings.weight_decay), lr=settings.lr)
    scheduler = get_scheduler(settings.schedule, optimizer, num_warmup_steps=settings.warmup_steps,
                              num_training_steps=settings.max_steps)
    plans: dict = {}
    model.train()
    for step in range(settings.max_steps):
        for batch in loop.micro_batches(enc, settings, step, per_epoch, 1, 0, pad_id, plans):
            loss = model(**batch).loss
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)


def trainer(model, enc, settings: RunConfig, pad_id: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        loop.train(loop.Trainable(model), enc, settings, Path(out), pad_id, {})


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of fn(*args)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def throughput(root: Path, preset: str, steps: int, batch_size: int, repeats: int) -> None:
    name = "tinysql level 1"
    enc, tokenizer = corpus(root, name)
    shape = presets.PRESETS[preset]
    settings = RunConfig(data=name, out="unused", preset=preset, batch_size=batch_size, max_steps=steps,
                         warmup_steps=steps // 10, log_every=10).resolved(len(enc))
    plans: dict = {}
    per_epoch = settings.steps_per_epoch(len(enc))
    tokens = sum(int(b["attention_mask"].sum()) for step in range(steps)
                 for b in loop.micro_batches(enc, settings, step, per_epoch, 1, 0, tokenizer.pad_token_id, plans))
    runs = {"bare loop": [], "zoo-train loop": []}
    for _ in range(repeats):
        runs["bare loop"].append(timed(bare_loop, fresh_model(shape, tokenizer), enc, settings, tokenizer.pad_token_id))
        runs["zoo-train loop"].append(timed(trainer, fresh_model(shape, tokenizer), enc, settings,
                                            tokenizer.pad_token_id))
    params = presets.parameter_counts(fresh_model(shape, tokenizer))["total"]
    print(f"\n{preset} ({params:,} parameters), {name}, batch {batch_size}, {steps} steps, {tokens:,} real tokens, "
          f"{torch.get_num_threads()} threads, {repeats} alternating runs each (median)\n")
    print("| loop | wall s | steps/s | tokens/s | CPU s | CPU s per step | throughput vs bare (wall) | (CPU) |")
    print("|---|---|---|---|---|---|---|---|")
    bare_wall = statistics.median(w for w, _ in runs["bare loop"])
    bare_cpu = statistics.median(c for _, c in runs["bare loop"])
    for label, values in runs.items():
        wall, cpu = statistics.median(w for w, _ in values), statistics.median(c for _, c in values)
        print(f"| {label} | {wall:.2f} | {steps / wall:.2f} | {tokens / wall:,.0f} | {cpu:.2f} | {cpu / steps:.3f} | "
              f"{bare_wall / wall:.3f} | {bare_cpu / cpu:.3f} |")
    print("\nall runs (wall s / CPU s): " + "; ".join(
        f"{k}: {', '.join(f'{w:.1f}/{c:.1f}' for w, c in vs)}" for k, vs in runs.items()))


def prepare(root: Path, folder: str | None, examples: int) -> None:
    if folder is None:
        folder = str(root / "m4")
        wall, cpu = timed(multmath_gen, ["--digits", "4x4", "-n", str(examples), "--seed", "1", "--out", folder])
        print(f"generated multmath-gen --digits 4x4 -n {examples} in {wall:.0f} s")
    config = RunConfig(data=folder, out="unused", preset="tiny", progress=False)
    stages, made = [], {}

    def stage(name, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        made[name] = fn()
        stages.append((name, time.perf_counter() - wall, time.process_time() - cpu))

    stage("open the corpus", lambda: data.open_corpus(folder))
    corpus = made["open the corpus"]
    records = corpus.splits["train"]
    stage("train the tokenizer, build the model", lambda: zoo_trainer.build_model(config, records, corpus.view, None))
    tokenizer, model, shape = made["train the tokenizer, build the model"]
    stage("encode the training split", lambda: data.encode(records, corpus.view, tokenizer, True,
                                                           min(config.max_length, shape.context)))
    encoded, dropped = made["encode the training split"]
    print(f"\ndata preparation of {len(records):,} training records ({len(encoded):,} kept), "
          f"{torch.get_num_threads()} threads\n")
    print("| stage | wall s | CPU s |")
    print("|---|---|---|")
    for name, wall, cpu in stages + [("total", sum(s[1] for s in stages), sum(s[2] for s in stages))]:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--padding", action="store_true")
    p.add_argument("--throughput", action="store_true")
    p.add_argument("--preset", default="nano", choices=list(presets.PRESETS)[:3])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--prepare", action="store_true")
    p.add_argument("--corpus", help="--prepare: a corpus folder (default: generate multmath 4x4)")
    p.add_argument("--examples", type=int, default=808_000, help="--prepare: examples to generate")
    args = p.parse_args()
    if not (args.padding or args.throughput or args.prepare):
        args.padding = args.throughput = True
    with tempfile.TemporaryDirectory() as tmp:
        if args.prepare:
            prepare(Path(tmp), args.corpus, args.examples)
        if args.padding:
            padding(Path(tmp), args.batch_size)
        if args.throughput:
            throughput(Path(tmp), args.preset, args.steps, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
