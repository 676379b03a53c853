"""`tinysql-gen` end to end: Hub-ready output, determinism across --num-proc, leakage, the card and
`--help` (one level table behind both), errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import datasets
import pytest
import sqlglot

from cards.generator import command_parser
from conftest import one_line_error, script
from tinysql import levels
from tinysql.cli import main
from tinysql.generator import GENERATOR
from tinysql.score import score_one


def run(*args, cwd=None):
    return script("tinysql.cli", *args, cwd=cwd)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "l2-4"
    result = run("--level", "2-4", "-n", "300", "--seed", "1", "--out", out, "--format", "both")
    assert result.returncode == 0, result.stderr
    return out


def test_folder_loads_with_configs_and_splits(corpus):
    ds = datasets.load_dataset(str(corpus))
    assert {s: len(ds[s]) for s in ds} == {"train": 240, "validation": 30, "test": 30}
    assert set(ds["train"][0]["clauses"] and json.loads(ds["train"][0]["clauses"])) >= {"select", "order_by", "where"}
    level4 = datasets.load_dataset(str(corpus), "level4")
    assert set(level4["test"]["level"]) == {4}
    assert datasets.get_dataset_config_names(str(corpus)) == ["level2", "level3", "level4"]


def test_card_reports_counts_seed_command_and_checks(corpus):
    card = (corpus / "README.md").read_text()
    assert card.startswith("---\n") and "config_name: level3" in card
    assert "| level4 |" in card and "| 240 | 30 | 30 |" in card
    assert "--seed 1" in card and "Seed 1." in card
    assert "executes in SQLite" in card and "rejected: " in card


def test_no_leakage_between_splits(corpus):
    for config in ("level2", "level3", "level4"):
        ds = datasets.load_dataset(str(corpus), config)
        seen_prompts, seen_labels = {}, {}
        for split in ds:
            for record in ds[split]:
                prompt = record["english_prompt"] + record["create_statement"]
                label = record["create_statement"] + sqlglot.transpile(record["sql_statement"], read="sqlite")[0]
                assert seen_prompts.setdefault(prompt, split) == split
                assert seen_labels.setdefault(label, split) == split
                seen_prompts[prompt] = split


def test_every_label_executes_and_matches_itself(corpus):
    ds = datasets.load_dataset(str(corpus), "level4", split="test")
    for record in ds:
        result = score_one(record["sql_statement"], record["sql_statement"], record["create_statement"])
        assert result["execution"] and result["normalized"], (record["sql_statement"], result)


def files_of(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_bytes_for_any_num_proc_and_run(tmp_path):
    args = ["--level", "5", "-n", "200", "--out", tmp_path / "a"]
    assert run(*args, "--num-proc", "1").returncode == 0
    first = files_of(tmp_path / "a")
    assert len(first) == 4
    assert run(*args, "--num-proc", "1", "--overwrite").returncode == 0
    assert files_of(tmp_path / "a") == first, "same command, same bytes (card included)"
    assert run(*args, "--num-proc", "2", "--overwrite").returncode == 0
    again = files_of(tmp_path / "a")
    for name in first:
        if name.endswith(".parquet"):
            assert again[name] == first[name], name
    assert run("--level", "5", "-n", "200", "--out", tmp_path / "c", "--seed", "2").returncode == 0
    other = files_of(tmp_path / "c")
    assert not {n for n in other if n.endswith(".parquet")} & set(first), "another seed, other bytes and names"
    test_file = lambda files: next(files[n] for n in files if n.startswith("data/level5/test-"))  # noqa: E731
    assert test_file(other) != test_file(first)


def test_default_output_folder_named_after_level(tmp_path):
    result = run("--level", "3", "-n", "20", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tinysql-level3" / "data" / "level3").is_dir()


def test_help_and_card_show_the_same_level_table(cli, tmp_path):
    help_text = command_parser(GENERATOR).format_help()
    assert cli(main, "--level", "1-8", "-n", "10", "--out", tmp_path / "all")[0] == 0
    card = (tmp_path / "all" / "README.md").read_text()
    assert levels.table() in card
    for number, note in levels.NOTES.items():
        assert f"  {number}  {note.replace('`', '')}\n" in help_text
        assert f"| {number} | {note} |" in card


@pytest.mark.parametrize("args", [
    ["--level", "0"], ["--level", "9"], ["--level", "x"], ["-n", "-5"], ["-n", "0"], ["--num-proc", "0"],
    ["--format", "xml"], ["--dialect", "nosuch"], ["--bogus"],
])
def test_bad_arguments_give_one_line_and_exit_2(cli, tmp_path, args):
    status, _, err = cli(main, *args, "--out", tmp_path / "out")
    assert one_line_error(status, err).startswith("tinysql-gen: error: ")
    assert os.listdir(tmp_path) == []


def test_existing_output_needs_overwrite(cli, tmp_path):
    (tmp_path / "out").mkdir()
    status, _, err = cli(main, "--level", "1", "-n", "10", "--out", tmp_path / "out")
    assert "--overwrite" in one_line_error(status, err)
    assert cli(main, "--level", "1", "-n", "10", "--out", tmp_path / "out", "--overwrite")[0] == 0
    assert (tmp_path / "out" / "README.md").exists()


def test_interrupted_run_leaves_nothing(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "tinysql.cli", "--level", "4", "-n", "1000000", "--out", str(tmp_path / "big")],
                               stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "Traceback" not in stderr
    assert os.listdir(tmp_path) == []
