"""The GPU tier of cards/recipe.json, verified to start and costed: for each distinct GPU-tier shape
(TinySQL on the 33m, 0.5b and 1b presets; the 768-wide 2-layer multiplication model with each of its
objectives) a small corpus is generated with the row's own generator command (a small -n), the row's
own zoo-train options run for a few optimizer steps (only these changed: --max-steps, a tiny
--batch-size, --grad-accum 1, --no-eval, no --eval-*/--save-every), and the full recipe is projected
from what the small corpus measures.

    python bench/bench_presets.py                              # every GPU-tier shape (the 1b: ~16 GiB of RAM)
    python bench/bench_presets.py --only 33m 768 --steps 5     # some shapes: a name, a recipe row, or a part of one
    python bench/bench_presets.py --only 1b --out /tmp/bench   # keep the corpora and run folders
    python bench/bench_presets.py --dry-run                    # print the commands only
    python bench/bench_presets.py --project-only               # the projection table alone (no training)

Shapes are the GPU rows grouped by their options without `--config`; a TinySQL shape is run on its
last row (level 5: the longest records). Each run is a subprocess (`zoo-train` in a fresh
interpreter), so its peak memory is its own: the peak RSS of that process (`os.wait4`), or on CUDA
`torch.cuda.max_memory_allocated()`. Seconds per optimizer step come from the run's log.jsonl
(`--log-every 1`: tokens/s per step) and the tokens of each step, recomputed with the run's own batch
plan (`train.loop.micro_batches`) and tokenizer; the first step (start-up, first allocations) is left out.
A run whose estimated memory (16 bytes per parameter for fp32 weights, gradients and the two AdamW
moments, + 1.5 GB) exceeds the available memory less --margin-gb is skipped, and said so; a run
volunteers as the kernel's first choice should memory run out anyway (oom_score_adj 1000).

The projection, per GPU row: tokens per example = the mean over the small corpus's training split of
the row's encoded lengths (its tokenizer trained on those records as zoo-train does, its objective's
CoT handling; ICoT epoch by epoch as the CoT is removed), times the full corpus's train size (from the
generator's own size rules applied to the recipe command), times the epochs (or --max-steps x batch).
FLOPs per token = 6 N + 12 L h c, where N = the non-embedding parameters plus the output projection
(vocab x hidden: a matmul even when tied; the token and position look-ups are not), L layers, h the
width and c the tokens per example (the attention span used). GPU hours = FLOPs / (MFU x peak), at
40 % MFU of 989 TFLOP/s (H100/H200 SXM bf16 dense) unless --mfu/--peak-tflops say otherwise; the
small models cannot reach that MFU at these batch sizes, so a second column also assumes at least
--step-floor-ms (an assumption, default 10 ms) per optimizer step. The small corpus's BPE
tokenizer compresses its own few training records better than the full run's tokenizer compresses
its corpus, so tokens per example lean low: measured on TinySQL (tokens per example at 4,000 training
records: 57.7 for level 1, 148 for level 5), -n 400 gives 53.2 and 140 (-8 %, -5 %), the default
-n 2000 gives 55.8 and 147 (-3 %, -1 %).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cards import generator  # noqa: E402
from train import presets  # noqa: E402
from train.config import RunConfig  # noqa: E402

RECIPE = ROOT / "cards" / "recipe.json"
PEAK_TFLOPS = 989.0  # H100/H200 SXM, bf16 dense (no sparsity)
MFU = 0.40
STEP_FLOOR_MS = 10.0  # an assumption, not a measurement: kernel launches and the Python loop of a small model
VALUED = {"--epochs", "--max-steps", "--batch-size", "--grad-accum", "--eval-every", "--eval-samples", "--eval-limit",
          "--eval-batch-size", "--eval-split", "--save-every", "--log-every"}  # replaced or left out, with their values
SWITCHES = {"--no-eval", "--keep-checkpoints", "--tensorboard", "--no-progress"}  # left out
SIZE = {"-n", "--num-examples", "--num-train"}
# runs zoo-train in this fresh interpreter; on CUDA also writes the peak of allocated memory
CHILD = """\
import json, sys
import torch
from train.cli import train_main
status = train_main(sys.argv[2:])
peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
with open(sys.argv[1], "w") as f:
    json.dump({"status": status, "cuda_peak_bytes": peak}, f)
sys.exit(status)
"""


@dataclass
class Bench:
    name: str
    rows: list[dict]  # the recipe rows of this shape (same options but --config)
    row: dict  # the one that is run

    @property
    def corpus(self) -> str:
        return self.row["corpus"]


@dataclass
class Measured:
    bench: Bench
    status: str  # "ok", or why there is no measurement
    parameters: dict = field(default_factory=dict)
    peak_bytes: int | None = None
    peak_kind: str = "RSS"
    seconds_per_step: float | None = None
    tokens_per_step: float | None = None
    flops_per_token: float | None = None
    wall: float | None = None


# --- the recipe ----------------------------------------------------------------------------------------


def gpu_benches(recipe: dict) -> list[Bench]:
    """The GPU rows grouped by shape (their options without --config), each run on its group's last row."""
    groups: dict[tuple, list[dict]] = {}
    for row in recipe["checkpoints"]:
        if row.get("tier") == "gpu":
            groups.setdefault((row["corpus"], tuple(without(shlex.split(row["train"]), {"--config"}))), []).append(row)
    benches = []
    for rows in groups.values():
        parts = [r["name"].split("-") for r in rows]
        name = "-".join(p for i, p in enumerate(parts[0]) if all(len(q) > i and q[i] == p for q in parts))
        benches.append(Bench(name if len(rows) > 1 else rows[0]["name"], rows, rows[-1]))
    return benches


def select(benches: list[Bench], names: list[str] | None) -> list[Bench]:
    """The benches a --only NAME names: a bench, a recipe row (run on that row), or a part of a bench's name."""
    if not names:
        return benches
    chosen = []
    for name in names:
        found = [b for b in benches if name == b.name or name in b.name.split("-")]
        rows = [(b, r) for b in benches for r in b.rows if r["name"] == name]
        found += [Bench(b.name if len(b.rows) == 1 else f"{b.name}:{r['name']}", b.rows, r) for b, r in rows]
        if not found:
            sys.exit(f"--only {name}: no GPU-tier shape or row of that name (shapes: "
                     f"{', '.join(b.name for b in benches)})")
        chosen += [b for b in found if b.name not in {c.name for c in chosen}]
    return chosen


def without(words: list[str], valued: set[str], switches: frozenset = frozenset()) -> list[str]:
    """`words` without the options in `valued` (and their values) and the flags in `switches`."""
    out, i = [], 0
    while i < len(words):
        if words[i] in valued:
            i += 2
            continue
        if words[i] not in switches:
            out.append(words[i])
        i += 1
    return out


def smoke_options(train: str, steps: int, batch_size: int) -> list[str]:
    """The row's zoo-train options for a short run: only the length, batch, evaluation and checkpoint cadence
    changed."""
    kept = without(shlex.split(train), VALUED, frozenset(SWITCHES))
    return kept + ["--max-steps", str(steps), "--batch-size", str(batch_size), "--grad-accum", "1", "--no-eval",
                   "--log-every", "1", "--no-progress"]


def small_corpus_command(command: str, examples: int) -> list[str]:
    """The corpus command with a small size (-n; validation and test shrunk with it where they are given)."""
    words, out, i = shlex.split(command), [], 0
    while i < len(words):
        word = words[i]
        if word in SIZE:
            out += [word, str(examples)]
            i += 2
        elif word in ("--num-valid", "--num-test"):
            out += [word, str(max(examples // 20, 10))]
            i += 2
        else:
            out.append(word)
            i += 1
    return out


def full_train_size(command: str) -> int:
    """Training examples per config of the recipe's corpus command, by its generator's own size rules."""
    words = shlex.split(command)
    gen = generator.get(words[0].removesuffix("-gen"))
    return gen.sizes_from(generator.command_parser(gen).parse_args(words[1:]))["train"]


def run_config(train: str, data: str = "corpus", out: str = "run") -> RunConfig:
    from train.cli import config_from, train_parser

    return config_from(train_parser().parse_args([*shlex.split(train), "--data", data, "--out", out]))


def counts(c: RunConfig, vocab: int) -> dict:
    """Exact parameter counts of the row's model (its overrides of the preset included), on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM

    s = presets.shape(c.preset, c.layers, c.hidden, c.heads)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(presets.config(s, c.arch or s.arch, vocab, 0, 0, 0))
    return {**presets.parameter_counts(model), "layers": s.layers, "hidden": s.hidden, "vocab": vocab,
            "context": s.context}


def flops_per_token(p: dict, context: float) -> float:
    """6 N + 12 L h c: N the non-embedding parameters plus the output projection (vocab x hidden)."""
    return 6 * (p["non_embedding"] + p["vocab"] * p["hidden"]) + 12 * p["layers"] * p["hidden"] * context


# --- small corpora, tokenizers, encodings --------------------------------------------------------------


def generate(recipe: dict, corpus: str, folder: Path, examples: int, dry: bool) -> None:
    command = small_corpus_command(recipe["corpora"][corpus], examples) + ["--out", str(folder)]
    print("$ " + shlex.join(command), flush=True)
    if dry or (folder / "README.md").exists():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    beside = Path(sys.executable).parent / command[0]  # the console script of this interpreter's environment
    subprocess.run([str(beside) if beside.exists() else command[0], *command[1:]], check=True,
                   stdout=subprocess.DEVNULL)


_ENCODED: dict = {}


def encoded(folder: Path, c: RunConfig, tokenizer=None):
    """(Encoded training split of the small corpus as the row's run encodes it, tokenizer, corpus)."""
    from train import data
    from train.tokenizer import train_tokenizer
    from train.trainer import head

    s = presets.shape(c.preset, c.layers, c.hidden, c.heads)
    arch = c.arch or s.arch
    key = (str(folder), c.config, arch == "qwen2", c.vocab_size, c.objective.keeps_cot, c.train_samples,
           None if tokenizer is None else tokenizer.name_or_path)
    if key not in _ENCODED:
        corpus = data.open_corpus(str(folder), c.config)
        records = corpus.splits["train"]
        if c.train_samples:
            records = records.select(range(min(c.train_samples, len(records))))
        if tokenizer is None:
            texts = ("".join(corpus.view.pieces(r)) for r in head(records, 50_000))
            tokenizer = train_tokenizer(texts, digits=corpus.view.digit_tokenizer, vocab_size=c.vocab_size,
                                        qwen2=arch == "qwen2")
        if isinstance(corpus.view, data.ChatView):
            corpus.view.use(tokenizer)
        enc, dropped = data.encode(records, corpus.view, tokenizer, c.objective.keeps_cot, min(c.max_length, s.context))
        _ENCODED[key] = (enc, dropped, tokenizer, corpus)
    return _ENCODED[key]


# --- measuring one short run ---------------------------------------------------------------------------


def available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def first_to_kill() -> None:
    """In the child: be the process the kernel kills if memory runs out (not the user's other work)."""
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass


def measure(b: Bench, recipe: dict, corpus: Path, runs: Path, a: argparse.Namespace) -> Measured:
    import torch

    out = runs / b.name.replace(":", "-")
    options = smoke_options(b.row["train"], a.steps, a.batch_size)
    print(f"$ zoo-train --data {corpus} {shlex.join(options)} --out {out} --overwrite", flush=True)
    if a.dry_run:
        return Measured(b, "dry run")
    estimate = counts(run_config(b.row["train"]), 4096)["total"] * 16 + 1.5e9
    free = available_bytes()
    if not torch.cuda.is_available() and free is not None and estimate > free - a.margin_gb * 1e9:
        return Measured(b, f"skipped: needs ~{estimate / 1e9:.0f} GB of RAM, {free / 1e9:.0f} GB available")
    env = dict(os.environ, HF_HUB_OFFLINE="1", **({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {}))
    memory_file = runs / f".{out.name}.memory.json"
    began = time.perf_counter()
    with open(runs / f"{out.name}.log", "w") as log:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(memory_file), "--data", str(corpus), *options,
                                  "--out", str(out), "--overwrite"], stdout=log, stderr=subprocess.STDOUT, env=env,
                                 cwd=ROOT, preexec_fn=first_to_kill)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN is a running max)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    if child.returncode != 0:
        tail = (runs / f"{out.name}.log").read_text().strip().splitlines()[-1:]
        return Measured(b, f"failed (exit {child.returncode}): {' '.join(tail)[:200]}")
    m = Measured(b, "ok", wall=wall, peak_bytes=usage.ru_maxrss * 1024)
    cuda = json.loads(memory_file.read_text()).get("cuda_peak_bytes") if memory_file.exists() else None
    if cuda is not None:
        m.peak_bytes, m.peak_kind = cuda, "CUDA allocated"
    per_step(m, out, corpus)
    return m


def per_step(m: Measured, out: Path, corpus: Path) -> None:
    """Parameters, tokens and seconds per optimizer step (steps after the first) and FLOPs per token of a run."""
    from train.loop import micro_batches, read_log
    from train.manifest import RunManifest
    from train.tokenizer import load_tokenizer

    manifest = RunManifest.from_folder(out)
    c = manifest.config
    enc, _, tokenizer, _ = encoded(corpus, c, load_tokenizer(str(out)))
    per_epoch, plans = c.steps_per_epoch(len(enc), 1), {}
    tokens = [sum(int(x["attention_mask"].sum()) for x in
                  micro_batches(enc, c, step, per_epoch, 1, 0, tokenizer.pad_token_id, plans))
              for step in range(manifest.steps)]
    rates = [e["tokens_per_s"] for e in read_log(out) if "tokens_per_s" in e]
    seconds = [t / r for t, r in zip(tokens, rates)]
    later = seconds[1:] or seconds
    m.parameters = {**manifest.parameters, "vocab": manifest.vocab_size}
    m.seconds_per_step = sum(later) / len(later)
    m.tokens_per_step = sum(tokens[1:] or tokens) / len(later)
    shape = counts(c, manifest.vocab_size)
    m.flops_per_token = flops_per_token(shape, sum(enc.length(i) for i in range(len(enc))) / len(enc))


# --- projecting a full recipe row ----------------------------------------------------------------------


def project(row: dict, recipe: dict, corpus: Path, a: argparse.Namespace) -> dict:
    """Tokens, FLOPs and GPU hours of the full run of a recipe row, from its small corpus."""
    c = run_config(row["train"])
    enc, dropped, tokenizer, view_corpus = encoded(corpus, c)
    digits = view_corpus.view.digit_tokenizer
    p = counts(c, len(tokenizer) if digits else c.vocab_size)
    train = full_train_size(recipe["corpora"][row["corpus"]])
    if c.train_samples:
        train = min(train, c.train_samples)
    kept = round(train * len(enc) / (len(enc) + dropped))
    steps, per_epoch = c.total_steps(kept, 1), c.steps_per_epoch(kept, 1)
    full, rest = divmod(steps, per_epoch)
    epochs = [per_epoch] * full + ([rest] if rest else [])  # optimizer steps in each epoch run
    if c.objective.name == "icot":  # epoch e removes k*e .. k*e + k-1 CoT tokens, evenly over its steps
        k = c.objective.icot_per_epoch
        lengths = [sum(enc.length(i, r) for i in range(len(enc)) for r in range(k * e, k * e + k)) / (k * len(enc))
                   for e in range(len(epochs))]
    else:
        lengths = [sum(enc.length(i) for i in range(len(enc))) / len(enc)] * len(epochs)
    per_step = c.batch_size * c.grad_accum  # examples per optimizer step (a last short batch counts whole)
    tokens = sum(n * per_step * t for n, t in zip(epochs, lengths))
    flops = sum(n * per_step * t * flops_per_token(p, t) for n, t in zip(epochs, lengths))
    return {"row": row["name"], "parameters": p, "train": kept, "tokens_per_example": tokens / (steps * per_step),
            "epochs": steps / per_epoch, "steps": steps, "tokens": tokens, "flops_per_token": flops / tokens,
            "flops": flops, "gpu_hours": flops / (a.mfu * a.peak_tflops * 1e12) / 3600,
            "floor_hours": max(flops / (a.mfu * a.peak_tflops * 1e12), steps * a.step_floor_ms / 1e3) / 3600,
            "dropped": dropped / (len(enc) + dropped)}


# --- tables ----------------------------------------------------------------------------------------------


def human(n: float, unit: str = "") -> str:
    for size, suffix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.3g} {suffix}{unit}".rstrip()
    return f"{n:.3g} {unit}".rstrip()


def measured_table(results: list[Measured], a: argparse.Namespace, device: str) -> str:
    lines = [f"Short runs ({a.steps} optimizer steps, --batch-size {a.batch_size}, --grad-accum 1, {device}; "
             f"seconds/step over steps 2-{a.steps}):", "",
             "| shape | row run | parameters (total / non-embedding) | peak memory | s / step | tokens / step "
             "| FLOPs / token | achieved FLOP/s | wall s |", "|---|---|---|---|---|---|---|---|---|"]
    for m in results:
        if m.status != "ok":
            lines.append(f"| {m.bench.name} | {m.bench.row['name']} | | {m.status} | | | | | |")
            continue
        p = m.parameters
        rate = m.flops_per_token * m.tokens_per_step / m.seconds_per_step
        lines.append(f"| {m.bench.name} | {m.bench.row['name']} | {human(p['total'])} / {human(p['non_embedding'])} "
                     f"| {m.peak_bytes / 2**30:.2f} GiB {m.peak_kind} | {m.seconds_per_step:.3g} "
                     f"| {m.tokens_per_step:.0f} | {human(m.flops_per_token)} | {human(rate)} | {m.wall:.0f} |")
    return "\n".join(lines)


def projection_table(rows: list[dict], a: argparse.Namespace) -> str:
    lines = [f"Full recipe, projected (FLOPs/token = 6N + 12·L·h·c; GPU hours at {a.mfu:.0%} MFU of "
             f"{a.peak_tflops:g} TFLOP/s bf16, one H100/H200; the last column also assumes at least "
             f"{a.step_floor_ms:g} ms per optimizer step, which bounds the small models):", "",
             "| row | parameters (total / non-emb.) | train examples | tokens / example | epochs | optimizer steps "
             f"| tokens | FLOPs / token | FLOPs | GPU hours | GPU hours, >= {a.step_floor_ms:g} ms/step |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r["parameters"]
        lines.append(f"| {r['row']} | {human(p['total'])} / {human(p['non_embedding'])} | {r['train']:,} "
                     f"| {r['tokens_per_example']:.1f} | {r['epochs']:g} | {r['steps']:,} | {human(r['tokens'])} "
                     f"| {human(r['flops_per_token'])} | {human(r['flops'])} | {r['gpu_hours']:.3g} "
                     f"| {r['floor_hours']:.3g} |")
    lines.append(f"| all {len(rows)} rows | | | | | | | | | {sum(r['gpu_hours'] for r in rows):.3g} "
                 f"| {sum(r['floor_hours'] for r in rows):.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", metavar="NAME", help="shapes to run: a shape (tinysql-33m, "
                   "multmath-4x4-aux-768), a recipe row, or a part of a shape's name (33m, 1b, 768, icot)")
    p.add_argument("--steps", type=int, default=4, help="optimizer steps per short run (default 4; the first is "
                   "not timed)")
    p.add_argument("--batch-size", type=int, default=1, help="examples per step in the short runs (default 1)")
    p.add_argument("-n", "--examples", type=int, default=2000, help="-n of the small corpora (default 2000: "
                   "enough for the tokens per example to be within a few %% of the full corpus's)")
    p.add_argument("--out", type=Path, help="keep the small corpora and run folders here (default: a temporary "
                   "folder, removed)")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS of the runs (default: torch's own)")
    p.add_argument("--margin-gb", type=float, default=2.0, help="memory left to others: skip a run whose estimate "
                   "exceeds the available memory less this (default 2)")
    p.add_argument("--mfu", type=float, default=MFU, help=f"model FLOPs utilisation (default {MFU})")
    p.add_argument("--peak-tflops", type=float, default=PEAK_TFLOPS, help=f"dense bf16 peak (default {PEAK_TFLOPS:g})")
    p.add_argument("--step-floor-ms", type=float, default=STEP_FLOOR_MS, help="assumed least time of one optimizer "
                   f"step on the GPU, for the last column (default {STEP_FLOOR_MS:g}: launches and Python)")
    p.add_argument("--project-only", action="store_true", help="no short runs: the projection table alone")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    p.add_argument("--recipe", type=Path, default=RECIPE)
    a = p.parse_args(argv)
    if a.steps < 2:
        p.error("--steps must be at least 2 (the first step is not timed)")
    recipe = json.loads(a.recipe.read_text())
    benches = select(gpu_benches(recipe), a.only)
    with tempfile.TemporaryDirectory(prefix="bench-presets-") as temporary:
        root = a.out or Path(temporary)
        if not a.dry_run:
            (root / "runs").mkdir(parents=True, exist_ok=True)
        corpora = {b.corpus: root / "corpora" / b.corpus for b in benches}
        for name, folder in corpora.items():
            generate(recipe, name, folder, a.examples, a.dry_run)
        results = [] if a.project_only else [measure(b, recipe, corpora[b.corpus], root / "runs", a) for b in benches]
        if a.dry_run:
            return 0
        import torch

        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else (
            f"CPU, {a.threads or torch.get_num_threads()} thread(s), fp32")
        if results:
            print("\n" + measured_table(results, a, device))
        rows = [r for b in benches for r in b.rows]
        rows = [r for i, r in enumerate(rows) if r["name"] not in {q["name"] for q in rows[:i]}]
        print("\n" + projection_table([project(r, recipe, corpora[r["corpus"]], a) for r in rows], a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
