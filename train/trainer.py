"""One training run, from its settings to an evaluated, Hub-ready folder: `run(RunConfig)`.

A run checks everything it can before it writes anything (that the output folder can be written,
a resumed run's settings, the corpus and its view, the objective's needs, the model or base, the
tokenizer, the objective's own checks, the step count), then trains (`train.loop`), saves the
folder (`train.output`, and the objective's own files), writes the manifest (`train.manifest`)
and the curve, then reloads the folder with `from_pretrained`, evaluates it (`train.evaluate`; the
first `--eval-limit` records of the split, all by default, none with `--no-eval`) and writes the
metrics and the model card.

An evaluation that fails never costs the run its outputs: everything but `metrics.json` is in the
folder, the model card says the evaluation failed and why, and `run` raises `EvaluationFailed`
(`zoo-train`: one line, exit status 2) naming the `zoo-eval` command that evaluates the folder.
An evaluation every `--eval-every` steps that fails is logged (`{"eval": {"error": ...}}`) and
training goes on. `zoo-train` (`train.cli`) is this function behind an argument parser.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from accelerate import PartialState

from cards.cli import first_line
from cards.dataset_folder import protected
from cards.errors import UsageError, ZooError
from cards.generator import TrainingView
from cards.model_card import worked_example
from train import data, loop, output, presets
from train.config import RunConfig
from train.manifest import CHECKPOINTS, MANIFEST, RESUME, RunManifest
from train.tokenizer import PAD, ensure_pad, load_tokenizer, train_tokenizer


class EvaluationFailed(ZooError):
    """The final evaluation raised; the run's folder holds everything but its metrics."""


def run(config: RunConfig) -> dict | None:
    """Train, save, evaluate and describe the run `config`; returns the final metrics (None on the processes
    of a multi-process run that do not write). A ZooError, before anything is written, for bad input;
    EvaluationFailed, once the run's folder is written, if its final evaluation raises."""
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise UsageError("--tensorboard needs the tensorboard package: pip install 'interp-zoo[tensorboard]'")
    if not config.progress:
        output.quiet()
    out = Path(config.out)
    resume_from, resuming = check_out(out, config)
    corpus = data.in_layout(data.open_corpus(config.data, config.config), config.layout)
    if "train" not in corpus.splits:
        raise UsageError(f"--data {config.data}: no train split (it has {', '.join(corpus.splits)})")
    records = corpus.splits["train"]
    if config.train_samples:
        records = records.select(range(min(config.train_samples, len(records))))
    objective = config.objective
    objective.check(corpus.view, corpus.kind)
    tokenizer, model, shape = build_model(config, records, corpus.view, out if resuming else None)
    data.use_tokenizer(corpus.view, tokenizer)
    max_length = min(config.max_length, shape.context) if shape else config.max_length
    train_set, dropped = data.encode(records, corpus.view, tokenizer, objective.keeps_cot, max_length,
                                     config.progress)
    if dropped:
        print(f"zoo-train: note: {dropped} training records longer than {max_length} tokens left out", file=sys.stderr)
    if not len(train_set):
        raise UsageError("no training record fits in --max-length")
    trainable = objective.trainable(model, train_set, config.seed)
    # under `accelerate launch`/torchrun every process gets this far; only one writes. Without CUDA
    # accelerate needs cpu=True to see the other processes (gloo).
    processes = PartialState(cpu=not torch.cuda.is_available())
    settings = config.resolved(len(train_set), processes.num_processes)
    objective.check_steps(trainable, settings.total_steps(len(train_set), processes.num_processes))
    start_folder(processes, out, config, resuming, tokenizer)
    result = loop.train(trainable, train_set, settings, out, tokenizer.pad_token_id, config.fingerprint(),
                        periodic_evaluation(config, corpus, tokenizer), resume_from)
    if not result["main"]:
        return None
    gold_lengths = [train_set.length(i) - len(train_set.prompt[i]) for i in range(len(train_set))]
    output.save_model(out, model, tokenizer, result["lm_state"], max(gold_lengths) + 8)
    objective.save(out, trainable, result["extra_state"])
    split = pick_split(corpus.splits, config.eval_split) if config.evaluates else None
    manifest = RunManifest(
        config=settings, command=run_command(config, corpus.name, out), corpus=corpus.name,
        generator=corpus.generator, corpus_config=corpus.config, corpus_command=corpus.command, eval_split=split,
        steps=result["steps"], steps_per_epoch=result["steps_per_epoch"], seconds=round(result["seconds"], 1),
        hardware=hardware(result["processes"]), mixed_precision=result["mixed_precision"],
        parameters=presets.parameter_counts(model), architecture=model.config.model_type,
        vocab_size=model.config.vocab_size)
    manifest.write(out)
    output.write_curve(out, loop.read_log(out))
    try:
        metrics = final_evaluation(out, corpus.view, head(corpus.splits[split], config.eval_limit) if split else [],
                                   config)
    except (Exception, KeyboardInterrupt) as err:  # the run is saved: say so, and why it has no metrics
        reason = "interrupted" if isinstance(err, KeyboardInterrupt) else f"{type(err).__name__}: {first_line(err)}"
        again = f"zoo-eval --model {out} --data {config.data} --split {split}"
        named = f"zoo-eval --model {out.resolve().name} --data {corpus.name} --split {split}"  # no paths in a card
        finish(out, manifest, None, corpus, f"The final evaluation failed ({reason}). Evaluate the model with "
                                             f"`{named}`.", config.keep_checkpoints)
        if isinstance(err, KeyboardInterrupt):
            raise
        raise EvaluationFailed(f"the final evaluation failed ({reason}); {out} holds the trained model, its "
                               f"manifest, log and card, without metrics.json: {again} evaluates it") from err
    note = None
    if not config.evaluates:
        note = "Not evaluated (the run was made with --no-eval or --eval-limit 0)."
    elif not split:
        note = "Not evaluated: the corpus has no test or validation split."
    finish(out, manifest, metrics, corpus, note, config.keep_checkpoints)
    return metrics


def check_out(out: Path, config: RunConfig) -> tuple[Path | None, bool]:
    """(checkpoint to resume from, whether OUT already holds this run); UsageError if OUT must not be touched
    or cannot be written."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    why = protected(out.resolve())
    if why:
        raise UsageError(f"--out {out}: refusing to write a run to {out.resolve()}: it is {why}")
    check_writable(out)
    if not out.exists():
        return None, False
    if config.overwrite:
        if any(out.iterdir()) and not ((out / MANIFEST).is_file() or (out / CHECKPOINTS / RESUME).is_file()):
            raise UsageError(f"--out {out}: refusing to replace it: it is not empty and holds no zoo-train run "
                             f"({MANIFEST} or {CHECKPOINTS}/{RESUME})")
        return None, False
    if not config.resume:
        raise UsageError(f"--out {out}: already exists (pass --resume to continue its run or --overwrite to replace it)")
    run_file = out / CHECKPOINTS / RESUME
    if not run_file.exists():
        raise UsageError(f"--resume: {out} holds no unfinished zoo-train run (no {CHECKPOINTS}/{RESUME})")
    before, now = recorded_fingerprint(run_file, config), json.loads(json.dumps(config.fingerprint()))
    differ = [k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
    if differ:
        k = differ[0]
        raise UsageError(f"--resume: {out} holds another run ({len(differ)} setting(s) differ, e.g. "
                         f"--{k.replace('_', '-')} was {before.get(k)!r}, now {now.get(k)!r})")
    return loop.latest_checkpoint(out), True


def recorded_fingerprint(run_file: Path, config: RunConfig) -> dict:
    """The fingerprint a run recorded, read back as settings: a setting added since it was written counts as
    its default (which keeps what runs did before it existed)."""
    recorded = json.loads(run_file.read_text())
    try:
        return json.loads(json.dumps(RunConfig.from_dict({**recorded, "out": config.out}).fingerprint()))
    except (ZooError, TypeError, ValueError):  # not readable as settings: compared as it is
        return recorded


def check_writable(out: Path) -> None:
    """UsageError unless a folder can be made in OUT (if it exists) or in its nearest existing parent."""
    place = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not place.is_dir():
        raise UsageError(f"--out {out}: {place} is not a folder")
    try:
        Path(tempfile.mkdtemp(prefix=".zoo-train-", dir=place)).rmdir()
    except OSError as err:
        raise UsageError(f"--out {out}: cannot write in {place} ({first_line(err)})") from err


def start_folder(processes, out: Path, config: RunConfig, resuming: bool, tokenizer) -> None:
    """The first write of a run, once every check has passed: OUT (replaced with --overwrite), and what
    a resumed run needs besides a checkpoint (the tokenizer and the settings' fingerprint)."""
    processes.wait_for_everyone()
    if processes.is_main_process:
        if config.overwrite and out.exists():
            shutil.rmtree(out)
        (out / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        if not resuming:
            tokenizer.save_pretrained(out / CHECKPOINTS / "tokenizer")
            output.write_json(out / CHECKPOINTS / RESUME, config.fingerprint())
    processes.wait_for_everyone()


def build_model(config: RunConfig, records, view: TrainingView, resumed: Path | None):
    """(tokenizer, model, preset shape or None): a new model with a tokenizer trained on the corpus (or the
    one saved by the run being resumed, or --tokenizer's), or the base model and its tokenizer."""
    if config.base:
        model, tokenizer = load_pretrained("--base", config.base)
        ensure_pad(tokenizer, model)
        return tokenizer, model, None
    try:
        shape = presets.shape(config.preset, config.layers, config.hidden, config.heads)
    except ValueError as err:
        raise UsageError(str(err)) from err
    arch = config.arch or shape.arch
    if arch == "qwen2" and view.digit_tokenizer and not config.tokenizer:
        raise UsageError("a qwen2 folder is loaded by AutoTokenizer as Qwen2Tokenizer, which cannot hold the "
                         "one-token-per-digit vocabulary this corpus trains with: pass --arch llama (or gpt2)")
    if resumed is not None:
        tokenizer = load_tokenizer(str(resumed / CHECKPOINTS / "tokenizer"))
    elif config.tokenizer:
        tokenizer = given_tokenizer(config.tokenizer)
    else:
        texts = ("".join(view.pieces(r)) for r in head(records, 50_000))
        tokenizer = train_tokenizer(texts, digits=view.digit_tokenizer, vocab_size=config.vocab_size,
                                    qwen2=arch == "qwen2")
    model_config = presets.config(shape, arch, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id,
                                  tokenizer.pad_token_id)
    return tokenizer, presets.build(model_config, config.seed), shape


def given_tokenizer(name: str):
    """The tokenizer of --tokenizer (a local folder, a zoo name or a Hub id), with a pad token; UsageError if it
    cannot be loaded."""
    if not Path(name).expanduser().exists():
        name = _remote("--tokenizer", name)
    try:
        tokenizer = load_tokenizer(name)
    except Exception as err:  # OSError, ValueError, HTTP errors...: all mean "cannot load it"
        raise UsageError(f"--tokenizer {name}: cannot load it ({first_line(err)})") from err
    if tokenizer.eos_token is None:
        raise UsageError(f"--tokenizer {name}: it has no EOS token, which ends every completion")
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD})
    return tokenizer


def load_pretrained(option: str, name: str):
    """(model, tokenizer) of a Hub id or a local folder; UsageError naming `option` if it cannot be loaded."""
    if not Path(name).expanduser().exists():
        name = _remote(option, name)
    try:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32), load_tokenizer(name)
    except Exception as err:  # OSError, ValueError, HTTP errors...: all mean "cannot load it"
        raise UsageError(f"{option} {name}: cannot load it ({first_line(err)})") from err


def _remote(option: str, name: str) -> str:
    """What to load for a name that is no local folder: a zoo checkpoint (downloaded and verified), or a Hub
    id. Answered at once, without asking the Hub, when it can only be a folder (a path, a local typo) or is
    an unpublished zoo checkpoint."""
    from cards import zoo

    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise UsageError(f"{option} {name}: no such folder")
    entry = zoo.find(name)
    if entry is not None:
        if not (entry["published"] or entry["shipped"]):
            raise UsageError(f"{option} {name}: a zoo checkpoint that is not published; pass its folder")
        return str(zoo.download(name))
    near = difflib.get_close_matches(name, [p.name for p in Path.cwd().iterdir() if p.is_dir()], n=1, cutoff=0.75)
    if near and "/" not in name:
        raise UsageError(f"{option} {name}: no such folder (did you mean {near[0]}?)")
    return name


def periodic_evaluation(config: RunConfig, corpus: data.Corpus, tokenizer):
    """The evaluation the loop runs every --eval-every steps on validation records, or None."""
    split = pick_split(corpus.splits, "validation")
    if not (split and config.eval_every):
        return None
    records = head(corpus.splits[split], config.eval_samples)

    def evaluate(model) -> dict:
        from train.evaluate import evaluate

        try:
            return evaluate(model, tokenizer, records, corpus.view, config.eval_batch_size, False)
        except Exception as err:  # an evaluation on the way never stops the training
            print(f"zoo-train: warning: evaluation failed ({first_line(err)})", file=sys.stderr)
            return {"error": f"{type(err).__name__}: {first_line(err)}"}

    return evaluate


def final_evaluation(out: Path, view: TrainingView, records: list[dict], config: RunConfig) -> dict:
    """Reload the saved folder (as a user would) and evaluate it."""
    if not records:
        return {}
    from train.evaluate import evaluate

    model, tokenizer = load_pretrained("--out", str(out))
    data.use_tokenizer(view, tokenizer)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    metrics = evaluate(model, tokenizer, records, view, config.eval_batch_size, config.progress)
    return {**metrics, **config.objective.compare(model, tokenizer, records, view, config.base,
                                                  config.eval_batch_size)}


def finish(out: Path, manifest: RunManifest, metrics: dict | None, corpus: data.Corpus, note: str | None,
           keep_checkpoints: bool) -> None:
    """metrics.json (unless the evaluation failed: `metrics` None) and README.md, whose evaluation section
    is `note` when there is one; then OUT/checkpoints goes, unless kept."""
    train_split = corpus.splits["train"]
    levels = sorted(set(train_split["level"])) if "level" in train_split.column_names else []
    if metrics is not None:
        output.write_json(out / "metrics.json", {"split": manifest.eval_split, "corpus": manifest.corpus,
                                                 "config": manifest.corpus_config, **metrics})
    shown = corpus.splits[manifest.eval_split or "train"]
    example = worked_example(corpus.view, shown[0], manifest.config.objective.keeps_cot) if len(shown) else None
    output.write_card(out, manifest, metrics or {}, corpus.task, levels, note, example)
    if not keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)


def run_command(config: RunConfig, corpus: str, out: Path) -> str:
    """The command of the run, naming the corpus and the output folder the same way on every machine."""
    from cards.card import with_option

    return with_option(with_option(config.command(), "--data", corpus), "--out", out.resolve().name)


def pick_split(splits, wanted: str) -> str | None:
    for split in (wanted, "test", "validation"):
        if split in splits and len(splits[split]):
            return split
    return None


def head(split, n: int | None = None) -> list[dict]:
    """The first n records of a split (all of them if n is None) as plain dicts."""
    if n is not None:
        split = split.select(range(min(n, len(split))))
    return split.to_list()


def hardware(processes: int) -> str:
    if torch.cuda.is_available():
        return f"{processes} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {platform.machine()})"
