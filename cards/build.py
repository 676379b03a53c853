"""`zoo build`: make the recipe's checkpoints (`cards.recipe`) and put them where users get them.

For each chosen row that is not built yet (no registry entry with a shipped or published copy):

1. generate its corpus into BUILD/corpora/<corpus> (kept, and reused while its card records the
   recipe's command);
2. train it into BUILD/runs/<name> with `zoo-train` in a subprocess, one thread per run unless told
   otherwise (runs are then bit-reproducible) and up to --jobs runs at once; a run with saved
   checkpoints is resumed, a finished run is kept;
3. make the release: the run's published files with the weights in float16 (no checkpoints, no
   log), written to `zoo/<name>` of the source tree for the cpu tier (the shipped copy) and to
   BUILD/release/<name> for the gpu tier;
4. evaluate the release itself on the test split (the registry's metrics are those of the float16
   weights a user gets) and write its metrics and card;
5. register it (`cards.zoo.entry_from_folder`: metrics and sha256 read from the release) and, with
   --hub-dir, publish it there.

A second `zoo build` with nothing to do only checks the shipped files' sha256 and returns.
`--rebuild` trains the chosen rows again from scratch and replaces their entries.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

from cards import hub, zoo
from cards.errors import ExternalError, IntegrityError, ZooError
from cards.recipe import Row
from train.manifest import CHECKPOINTS, MANIFEST

ORG = "interp-zoo"  # the Hub organisation of the zoo's repositories
NOT_RELEASED = ("log.jsonl", "events")  # run files a release leaves out (the training log, tensorboard)
WATCH_SECONDS = 60  # how often a build with several runs at once reports their steps


def build(rows: list[Row], build_dir: Path, hub_dir: Path | None = None, jobs: int = 1, threads: int | None = 1,
          rebuild: bool = False, registry: str | None = None, progress: bool = True) -> list[str]:
    """Build the rows that need it; returns the names built."""
    todo = [row for row in rows if rebuild or not up_to_date(row, registry)]
    for row in rows:
        if row not in todo:
            say(f"{row.name}: up to date ({zoo.availability(zoo.find(row.name, registry))})")
    if not todo:
        say(f"nothing to do ({len(rows)} checkpoint{'s' * (len(rows) != 1)} up to date)")
        return []
    build_dir.mkdir(parents=True, exist_ok=True)
    for name in dict.fromkeys(row.corpus for row in todo):
        make_corpus(next(row for row in todo if row.corpus == name), build_dir)
    built = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        running = {pool.submit(train, row, build_dir, threads, rebuild, progress and jobs == 1): row for row in todo}
        while running:
            done, _ = concurrent.futures.wait(running, timeout=WATCH_SECONDS,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            if not done and jobs > 1:  # one run shows its own progress bar
                report_steps([row for f, row in running.items() if f.running()], build_dir)
            for future in done:
                row = running.pop(future)
                future.result()  # a failed run stops the build (the others finish first: the pool waits)
                release(row, build_dir, hub_dir, threads, registry, progress and jobs == 1)
                built.append(row.name)
    return built


def say(text: str) -> None:
    """One line on stderr, written whole: runs trained at once (--jobs) must not interleave halves."""
    sys.stderr.write(f"zoo build: {text}\n")
    sys.stderr.flush()


def up_to_date(row: Row, registry: str | None) -> bool:
    """Whether the registry has the row with a copy a user can get: shipped (and its files verify) or
    published."""
    entry = zoo.find(row.name, registry)
    if entry is None:
        return False
    shipped = zoo.shipped_copy(entry)
    if shipped:
        zoo.verify(shipped, entry)  # an IntegrityError if the shipped files are not the registry's
        return True
    return entry["published"]


# --- corpora --------------------------------------------------------------------------------------------


def make_corpus(row: Row, build_dir: Path) -> Path:
    """BUILD/corpora/<corpus>, generated unless it is there with the recipe's command."""
    from cards.card import read_corpus_metadata

    folder = build_dir / "corpora" / row.corpus
    if folder.is_dir():
        try:
            if without_out(read_corpus_metadata(folder).command) == without_out(row.corpus_command):
                return folder
        except ZooError:
            pass  # not a corpus this project wrote, or another one: generated again below
    argv = row.corpus_argv(folder)
    say(f"generating {row.corpus}: {shlex.join(argv)}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    main = console_script(argv[0])
    options = [*argv[1:], "--num-proc", str(os.cpu_count() or 1)] + (["--overwrite"] if folder.exists() else [])
    if main(options) != 0:
        raise ExternalError(f"generating the corpus {row.corpus} failed (above): {shlex.join(argv)}")
    return folder


def without_out(command: str) -> list[str]:
    words = shlex.split(command)
    if "--out" in words[:-1]:
        i = words.index("--out")
        del words[i:i + 2]
    return words


def console_script(name: str):
    found = entry_points(group="console_scripts", name=name)
    if not found:
        raise IntegrityError(f"the recipe names {name}, which this install does not have")
    return next(iter(found)).load()


# --- training -------------------------------------------------------------------------------------------


def train(row: Row, build_dir: Path, threads: int | None, rebuild: bool, show: bool) -> Path:
    """BUILD/runs/<name>, trained (or resumed) by zoo-train in a subprocess unless it is finished."""
    corpus, out = build_dir / "corpora" / row.corpus, build_dir / "runs" / row.name
    threads = threads if row.tier == "cpu" else None  # a GPU run takes what it needs
    finished = (out / "metrics.json").is_file() and (out / MANIFEST).is_file()
    if finished and not rebuild:
        say(f"{row.name}: trained already ({out})")
        return out
    if row.base and zoo.find(row.base) is None:
        raise ExternalError(f"{row.name}: its base {row.base} is not built (zoo build --only {row.base} first)")
    resumable = not rebuild and any((out / CHECKPOINTS).glob("step-*"))
    extra = ["--resume"] if resumable else (["--overwrite"] if out.exists() else [])
    argv = [sys.executable, "-m", "train.cli", *row.train_argv(corpus, out), *extra]
    if not show:
        argv.append("--no-progress")
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {})}
    say(f"{row.name}: {'resuming' if resumable else 'training'} ({'zoo-train ' + shlex.join(argv[3:])})")
    began = time.time()
    log = build_dir / "runs" / f"{row.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as sink:
        done = subprocess.run(argv, env=env, stdout=None if show else sink, stderr=None if show else sink)
    if done.returncode != 0:
        raise ExternalError(f"{row.name}: zoo-train failed (exit status {done.returncode}); "
                            f"{'its output is above' if show else f'see {log}'}; `zoo build` again resumes it")
    say(f"{row.name}: trained in {(time.time() - began) / 60:.1f} min")
    return out


def report_steps(rows: list[Row], build_dir: Path) -> None:
    """One line with the latest logged step of each running row."""
    from train.loop import read_log

    steps = []
    for row in rows:
        entries = [e for e in read_log(build_dir / "runs" / row.name) if "loss" in e]
        steps.append(f"{row.name} step {entries[-1]['step']} (loss {entries[-1]['loss']:.3f})" if entries
                     else f"{row.name} starting")
    say("; ".join(steps))


# --- release --------------------------------------------------------------------------------------------


def release(row: Row, build_dir: Path, hub_dir: Path | None, threads: int | None, registry: str | None,
            progress: bool) -> Path:
    """Write the row's release (float16 weights, evaluated, with its card), register it and publish it."""
    run = build_dir / "runs" / row.name
    target = (zoo.shipped_dir() if row.tier == "cpu" else build_dir / "release") / row.name
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{row.name}.partial-", dir=target.parent))
    try:
        folder = staging / row.name  # the card is named after its folder
        copy_release(run, folder)
        metrics = evaluate_release(folder, build_dir / "corpora" / row.corpus, threads, progress)
        if target.exists():
            shutil.rmtree(target)
        folder.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    entry = zoo.entry_from_folder(target, row.name, f"{ORG}/{row.name}", shipped=row.tier == "cpu")
    before = zoo.find(row.name, registry)
    entries = [e for e in zoo.read_registry(registry) if e["name"] != row.name]
    zoo.write_registry([*entries, entry], registry)
    where = f"shipped in {target}" if row.tier == "cpu" else f"released in {target}"
    say(f"{row.name}: test {zoo.headline(metrics)} (float16 weights), {where}, registered")
    if before:
        same = "the same weights (sha256)" if before["files"] == entry["files"] else "different weights"
        say(f"{row.name}: replaced the entry of test {zoo.headline(before['metrics'])}: {same}")
    refresh_contrasts(registry)
    if hub_dir:
        commit, _ = hub.publish_to_dir(target, hub_dir, entry["repo_id"])
        say(f"{row.name}: published to {hub_dir} ({entry['repo_id']} {commit[:12]})")
    return target


RELEASE_NOTE = ("\n\n## Weights\n\nTrained in float32 and stored in float16 (`zoo build`); the metrics in "
                "this card were measured on these float16 weights, loaded in float32 as `zoo-eval` loads them.\n")
CONTRAST = ("<!-- zoo:contrast -->", "<!-- /zoo:contrast -->")


def refresh_contrasts(registry: str | None) -> None:
    """Put the table comparing the objectives of each multiplication size (`zoo.contrast_tables`) into
    the cards of its shipped checkpoints, replacing the one an earlier build wrote."""
    entries = zoo.read_registry(registry)
    for entry in entries:
        card = zoo.shipped_dir() / entry["name"] / "README.md"
        tables = zoo.contrast_tables([e for e in entries if e["task"] == entry["task"] and e["level"] == entry["level"]])
        if not (entry["shipped"] and tables and card.is_file()):
            continue
        text = card.read_text(encoding="utf-8")
        if CONTRAST[0] in text:
            text = text[:text.index(CONTRAST[0])].rstrip("\n") + text[text.index(CONTRAST[1]) + len(CONTRAST[1]):]
        section = (f"\n\n{CONTRAST[0]}\n## The objectives compared\n\nThe same shape, corpus and steps with "
                   f"each objective (from the zoo registry):\n\n{tables[0]}\n{CONTRAST[1]}\n")
        card.write_text(text.rstrip("\n") + section, encoding="utf-8")


def copy_release(run: Path, folder: Path) -> None:
    """The run's published files without the log, with every floating-point weight in float16."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True)
    for rel in hub.published_files(run):
        if rel.parts[0] in NOT_RELEASED or rel.name == "metrics.json":
            continue
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel.suffix == ".safetensors":
            tensors = load_file(run / rel)
            with safe_open(run / rel, "pt") as source:  # keep what the run wrote there (the aux heads' settings)
                metadata = {"format": "pt", **(source.metadata() or {})}
            save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}, folder / rel,
                      metadata=metadata)
        else:
            shutil.copy2(run / rel, folder / rel)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "dtype": "float16"}, indent=2) + "\n")
    for file in folder.rglob("*"):
        file.chmod(0o755 if file.is_dir() else 0o644)  # readable by all, like a clone's files


def evaluate_release(folder: Path, corpus_dir: Path, threads: int | None, progress: bool) -> dict:
    """Evaluate the release on its run's evaluation split (as zoo-eval would) and write its metrics and
    card (`train.trainer.finish`)."""
    import torch

    from train import data
    from train.manifest import RunManifest
    from train.output import quiet
    from train.trainer import final_evaluation, finish, head

    if threads:
        torch.set_num_threads(threads)
    if not progress:
        quiet()
    manifest = RunManifest.from_folder(folder)
    corpus = data.open_corpus(str(corpus_dir), manifest.corpus_config)
    config = manifest.config
    config = type(config).from_dict({**config.to_dict(), "progress": progress})
    records = head(corpus.splits[manifest.eval_split], config.eval_limit) if manifest.eval_split else []
    metrics = final_evaluation(folder, corpus.view, records, config)
    finish(folder, manifest, metrics, corpus, None, keep_checkpoints=True)
    card = folder / "README.md"
    card.write_text(card.read_text(encoding="utf-8").rstrip("\n") + RELEASE_NOTE, encoding="utf-8")
    return metrics
