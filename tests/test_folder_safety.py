"""The shared generator command is safe to point anywhere (issue 12, "hardening"): `--overwrite` replaces
only a corpus folder this project wrote, never the home, current or a parent folder; stale temporary
folders of killed runs are cleaned; workers are bounded and stop on SIGTERM; impossible sizes, unwritable
targets and empty values are one-line errors; every generator's --help says what -n counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cards.dataset_folder import signals_blocked
from cards.generator import command_parser
from conftest import one_line_error
from mcq.cli import main as mcq_gen
from multmath.cli import main as multmath_gen
from tinysql.cli import main as tinysql_gen
from tinysql.generator import GENERATOR as TINYSQL

GENERATORS = {"tinysql": tinysql_gen, "multmath": multmath_gen, "mcq": mcq_gen}
SMALL = {"tinysql": ["-n", "10"], "multmath": ["-n", "8", "--num-valid", "1", "--num-test", "1"], "mcq": ["-n", "10"]}


def start(module: str, *args, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            preexec_fn=_default_interrupts, start_new_session=True)  # its own group: see finish


def _default_interrupts():
    """In the child: SIGINT as a shell leaves it. An ignored SIGINT is inherited across exec (and Python then
    never installs its handler), so a test process that ignores it would make the SIGINT test meaningless."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # the whole group: killing listed workers one by one races the pool, which forks replacements that
        # would outlive the run and hold its stderr open (a communicate() that never returns)
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        pytest.fail(f"still running after {timeout} s")
    return process.returncode, err


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (zombies included), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError):
            pass
    return found


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def split_rows(folder: Path, config: str) -> dict[str, int]:
    rows: dict[str, int] = {}
    for path in (folder / "data" / config).glob("*.parquet"):
        split = path.name.split("-")[0]
        rows[split] = rows.get(split, 0) + pq.ParquetFile(path).metadata.num_rows
    return rows


@pytest.fixture
def corpus(tmp_path, cli) -> Path:
    """A fresh, small tinysql corpus folder of this project (safe to replace)."""
    assert cli(tinysql_gen, "-n", "10", "--out", tmp_path / "corpus")[0] == 0
    return tmp_path / "corpus"


# 1. --overwrite replaces only a corpus folder this project wrote, and never where the user stands


@pytest.mark.parametrize("name", GENERATORS)
def test_overwrite_refuses_a_folder_it_did_not_write(cli, tmp_path, name):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "thesis.txt").write_text("x")
    status, _, err = cli(GENERATORS[name], *SMALL[name], "--out", tmp_path / "p", "--overwrite")
    assert "thesis.txt" in one_line_error(status, err)
    assert [p.name for p in tmp_path.iterdir()] == ["p"] and (tmp_path / "p" / "thesis.txt").read_text() == "x"


def test_overwrite_refuses_a_corpus_folder_holding_other_files(cli, corpus):
    for stray in (corpus / "notes.txt", next((corpus / "data").iterdir()) / "notes.txt"):
        stray.write_text("mine")
        status, _, err = cli(tinysql_gen, "-n", "10", "--out", corpus, "--overwrite")
        assert "notes.txt" in one_line_error(status, err) and stray.read_text() == "mine"
        stray.unlink()
    (corpus / "README.md").write_text("# my notes\n")  # the layout of a corpus, but not a card it wrote
    assert "interp_zoo" in one_line_error(*cli(tinysql_gen, "-n", "10", "--out", corpus, "--overwrite")[::2])
    assert (corpus / "README.md").read_text() == "# my notes\n"


def test_overwrite_replaces_a_corpus_folder_and_an_empty_one(cli, corpus, tmp_path):
    before = files_of(corpus)
    assert cli(tinysql_gen, "-n", "20", "--out", corpus, "--overwrite")[0] == 0
    assert files_of(corpus) != before and sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
    (tmp_path / "empty").mkdir()
    assert cli(tinysql_gen, "-n", "10", "--out", tmp_path / "empty", "--overwrite")[0] == 0
    link = tmp_path / "link"  # a link is followed: the corpus it points to is replaced, the link stays
    link.symlink_to(corpus)
    assert cli(tinysql_gen, "-n", "10", "--out", link, "--overwrite")[0] == 0
    assert link.is_symlink() and split_rows(corpus, "level1") == {"train": 8, "validation": 1, "test": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "empty", "link"]


def test_never_the_current_folder_a_parent_or_home_even_if_a_corpus(cli, corpus, tmp_path, monkeypatch):
    inner = corpus / "data" / "level1"
    before = files_of(corpus)
    (tmp_path / "to-here").symlink_to(corpus)
    for cwd, out in ((corpus, "."), (inner, ".."), (inner, "../.."), (inner, corpus), (corpus, tmp_path / "to-here")):
        monkeypatch.chdir(cwd)
        status, _, err = cli(tinysql_gen, "-n", "10", "--out", out, "--overwrite")
        assert "refusing" in one_line_error(status, err), (cwd, out)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(corpus))
    assert "home" in one_line_error(*cli(tinysql_gen, "-n", "10", "--out", corpus, "--overwrite")[::2])
    assert files_of(corpus) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "to-here"], "no temporary folder left"


def test_never_the_root(cli):
    status, _, err = cli(tinysql_gen, "-n", "10", "--out", "/", "--overwrite")
    assert "refusing" in one_line_error(status, err)


# 2. stale temporary folders of killed runs are removed on the next run to the same --out, nothing else


def test_stale_temporary_folders_of_dead_runs_are_removed(cli, tmp_path):
    out = tmp_path / "out"
    killed = start("tinysql.cli", "--level", "4", "-n", "1000000", "--out", out)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    killed.kill()
    killed.communicate()
    stale = list(tmp_path.glob(".out.tmp-*"))
    assert len(stale) == 1 and stale[0].is_dir()
    dead = killed.pid  # a pid whose process is gone
    ours = os.getpid()  # alive: a run in progress
    kept = [tmp_path / f".out.tmp-{ours}-abc123", tmp_path / ".out.tmp-abc123", tmp_path / f".other.tmp-{dead}-abc",
            tmp_path / f".out.tmp-{dead}", tmp_path / f".out.old-{ours}"]
    removed = [stale[0], tmp_path / f".out.old-{dead}", tmp_path / f".out.tmp-{dead}-x_9"]
    for folder in kept + removed[1:]:
        folder.mkdir()
        (folder / "f").write_text("x")
    (tmp_path / f".out.tmp-{dead}-file").write_text("not a folder")
    kept.append(tmp_path / f".out.tmp-{dead}-file")
    assert cli(tinysql_gen, "-n", "10", "--out", out)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [out, *kept])


# 3. workers: bounded by the work and the machine, and stopped cleanly by SIGTERM


def test_num_proc_is_bounded_by_the_work(tmp_path):
    args = ["--level", "2", "-n", "50", "--seed", "4", "--out", "o"]  # the same relative --out: the same card
    for folder in ("one", "many"):
        (tmp_path / folder).mkdir()
    assert finish(start("tinysql.cli", *args, "--num-proc", "1", cwd=tmp_path / "one"), 60)[0] == 0
    started = time.monotonic()
    status, err = finish(start("tinysql.cli", *args, "--num-proc", "1000", cwd=tmp_path / "many"), 60)
    assert status == 0, err
    assert time.monotonic() - started < 30
    assert files_of(tmp_path / "one" / "o") == files_of(tmp_path / "many" / "o")
    assert "CPU" in command_parser(TINYSQL).format_help()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupt_stops_the_workers_and_cleans_up(tmp_path, signum):
    process = start("tinysql.cli", "--level", "4", "-n", "1000000", "--num-proc", "8", "--out", tmp_path / "big")
    deadline = time.monotonic() + 60
    while not children(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = children(process.pid)
    assert workers, "the run should have started its workers"
    process.send_signal(signum)
    status, err = finish(process, 30)  # a bound, not a speed goal: a loaded machine is slow to reap 8 workers
    assert status == 130 and err.strip().splitlines()[-1] == "tinysql-gen: interrupted" and "Traceback" not in err
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "workers left behind (or unreaped)"
    assert os.listdir(tmp_path) == []


def test_an_interrupt_another_thread_receives_waits_for_the_end_of_the_block():
    """The kernel hands a process-wide signal to any thread that does not mask it (tqdm's monitor), and Python
    runs the handler in the main thread: masking the main thread alone let it land inside the block that
    forks the pool, before the pool was assigned, and orphaned a replacement worker."""
    ready, sent, finished = threading.Event(), threading.Event(), []

    def send():  # started before the block, so SIGINT is not masked in this thread
        ready.wait(5)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # this thread takes it, as the kernel may choose
        sent.set()

    thread = threading.Thread(target=send)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a run in the background inherits SIG_IGN
    try:
        thread.start()
        with pytest.raises(KeyboardInterrupt):
            with signals_blocked():
                ready.set()
                assert sent.wait(5)
                sum(range(100_000))  # bytecode, at which Python runs pending handlers
                finished.append(True)
    finally:
        thread.join()
        signal.signal(signal.SIGINT, previous)
    assert finished == [True]


# 4. impossible sizes are refused before any work


@pytest.mark.parametrize("name, args", [
    ("tinysql", ["-n", 10**12]), ("mcq", ["-n", 10**12]), ("tinysql", ["--num-train", 10**8]),
    ("multmath", ["--level", "20", "-n", 10**12]),
])
def test_impossible_sizes_are_refused_up_front(tmp_path, name, args):
    status, err = finish(start(f"{name}.cli", *args, "--out", tmp_path / "out"), 60)
    assert "at most 10,000,000" in one_line_error(status, err)
    assert os.listdir(tmp_path) == []


# 5. unwritable targets and empty values: one line, exit 2, nothing written


@pytest.mark.parametrize("name", GENERATORS)
def test_an_output_folder_that_cannot_be_made_is_one_line(cli, name):
    status, _, err = cli(GENERATORS[name], *SMALL[name], "--out", "/proc/x")
    assert "cannot create /proc/x" in one_line_error(status, err)


@pytest.mark.parametrize("name, args", [
    ("tinysql", ["--out", ""]), ("tinysql", ["--level", ""]), ("mcq", ["--level", ""]), ("mcq", ["--tokenizer", ""]),
    ("multmath", ["--digits", ""]), ("multmath", ["--level", ""]), ("multmath", ["--out", ""]),
])
def test_empty_values_are_refused(cli, tmp_path, monkeypatch, name, args):
    monkeypatch.chdir(tmp_path)
    status, _, err = cli(GENERATORS[name], *SMALL[name], *args)
    assert f"{args[0]}: " in one_line_error(status, err) and "empty" in err
    assert os.listdir(tmp_path) == []


# 6. -n says what it counts, and every generator takes exact per-split counts


def test_help_says_what_n_counts():
    helps = {name: " ".join(command_parser(__import__(f"{name}.generator").generator.GENERATOR).format_help().split())
             for name in GENERATORS}
    for name in ("tinysql", "mcq"):
        assert "-n N, --num-examples N examples per level in all" in helps[name], helps[name]
    assert "-n N, --num-train N train examples per configuration" in helps["multmath"]
    for text in helps.values():
        assert all(flag in text for flag in ("--num-train", "--num-valid", "--num-test"))


def test_per_split_counts_override_the_split_of_n(cli, tmp_path):
    assert cli(tinysql_gen, "-n", "40", "--num-test", "3", "--out", tmp_path / "sql")[0] == 0
    assert split_rows(tmp_path / "sql", "level1") == {"train": 32, "validation": 4, "test": 3}
    assert cli(mcq_gen, "--num-train", "6", "--num-valid", "2", "--num-test", "0", "--out", tmp_path / "mcq")[0] == 0
    assert split_rows(tmp_path / "mcq", "level1") == {"train": 6, "validation": 2}
