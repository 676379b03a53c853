"""`mcq-gen` end to end: Hub-ready output, verified records, balance, leakage, determinism, the card, errors,
and the same corpus from Python (`cards.generator.generate`)."""

from __future__ import annotations

import collections
import functools
import string

import datasets
import pytest
from conftest import one_line_error, script
from huggingface_hub import DatasetCard

from cards.card import read_corpus_metadata
from cards.errors import UsageError
from cards.generator import generate
from mcq.cli import main
from mcq.generate import check_record

run = functools.partial(script, "mcq.cli")  # run(*args, cwd=None): the console script in a subprocess


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "l1-4"
    result = run("--level", "1-4", "-n", "200", "--seed", "3", "--out", out, "--counterfactual", "swap")
    assert result.returncode == 0, result.stderr
    return out


def test_folder_loads_and_every_record_verifies(corpus):
    assert datasets.get_dataset_config_names(str(corpus)) == ["level1", "level2", "level3", "level4"]
    for config in ("level1", "level2", "level3", "level4"):
        ds = datasets.load_dataset(str(corpus), config)
        assert {s: len(ds[s]) for s in ds} == {"train": 160, "validation": 20, "test": 20}
        for split in ds:
            for record in ds[split]:
                assert check_record(record) is None, record
                assert isinstance(record["answer"], int) and record["level"] == int(config[-1])


def test_gold_positions_balanced_and_reported(corpus):
    ds = datasets.load_dataset(str(corpus), "level2")
    for split, each in (("train", 40), ("validation", 5), ("test", 5)):  # balanced within every split
        assert collections.Counter(r["answer"] for r in ds[split]) == {0: each, 1: each, 2: each, 3: each}
    card = (corpus / "README.md").read_text()
    assert "## Gold positions" in card and "| level2 | test | 4 | 20 | 5 | 5 | 5 | 5 |" in card
    assert "| level3 | train | all | 160 | " in card  # 2-10 options: a total row
    assert "## Level ladder" in card and "near-miss" in card and "Seed 3." in card
    assert "same length in characters" in card and "- `sql`: " in card


def test_card_metadata(corpus):
    data = DatasetCard.load(corpus / "README.md").data
    assert [c["config_name"] for c in data.configs] == ["level1", "level2", "level3", "level4"]
    assert data.task_categories == ["multiple-choice", "question-answering"]
    meta = read_corpus_metadata(corpus)
    assert (meta.generator, meta.seed) == ("mcq", 3) and "--counterfactual swap" in meta.command
    assert meta.options["counterfactual"] == "swap" and meta.options["schemes"] is None


def test_no_leakage_between_splits(corpus):
    for config in ("level3", "level4"):
        ds = datasets.load_dataset(str(corpus), config)
        groups, prompts = {}, set()
        for split in ds:
            for record in ds[split]:
                assert groups.setdefault((record["source"], record["facts"]), split) == split
                assert record["prompt"] not in prompts
                prompts.add(record["prompt"])


def files_of(folder, suffix=""):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob(f"*{suffix}")) if p.is_file()}


def test_same_bytes_for_any_num_proc(tmp_path):
    args = ["--level", "4", "-n", "60", "--labels", "random,numbers", "--out", tmp_path / "a"]
    assert run(*args, "--num-proc", "1").returncode == 0
    first = files_of(tmp_path / "a")
    assert run(*args, "--num-proc", "2", "--overwrite").returncode == 0
    assert files_of(tmp_path / "a") == first


def test_defaults_and_overrides(tmp_path):
    assert run("--level", "2", "-n", "40", cwd=tmp_path).returncode == 0
    assert (tmp_path / "mcq-level2" / "README.md").exists()
    out = tmp_path / "custom"
    result = run("--level", "1", "-n", "40", "--labels", "lower", "--style", "paren", "--options", "3",
                 "--sources", "order,arithmetic", "--distractors", "near", "--out", out)
    assert result.returncode == 0, result.stderr
    for record in datasets.load_dataset(str(out), split="train"):
        assert record["labels"] == ["a", "b", "c"] and record["prompt"].splitlines()[1].startswith("(a) ")
        assert record["source"] in ("order", "arithmetic")


def test_tokenizer_rejections_are_counted(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, **{c: i + 1 for i, c in enumerate(string.printable.strip())}}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    out = tmp_path / "out"
    result = run("--level", "3", "-n", "30", "--labels", "numbers", "--options", "9-10", "--tokenizer",
                 tmp_path / "tok", "--counterfactual", "labels", "--out", out)
    assert result.returncode == 0, result.stderr
    assert {len(r["labels"]) for r in datasets.load_dataset(str(out), split="train")} == {9}
    assert "rejected: label not a single token" in (out / "README.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--level", "9"], "level 9 does not exist"),
    (["--options", "11"], "--options"),
    (["--options", "1"], "--options"),
    (["--labels", "greek"], "unknown label scheme 'greek'"),
    (["--style", "bold"], "unknown label style 'bold'"),
    (["--sources", "trivia"], "unknown source 'trivia'"),
    (["-n", "-1"], "-n/--num-examples"),
    (["--num-proc", "0"], "--num-proc"),
    (["--counterfactual", "both"], "--counterfactual"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, cli, args, message):
    status, _, err = cli(main, *args, "--out", tmp_path / "out", *(["-n", "10"] if "-n" not in args else []))
    assert one_line_error(status, err).startswith("mcq-gen: error:") and message in err
    assert list(tmp_path.iterdir()) == [], "no output folder left behind"


def test_unloadable_tokenizer_is_one_line_and_exit_2(tmp_path, cli):
    """In-process (transformers takes seconds to import): same `run` wrapper as the console script."""
    (tmp_path / "empty").mkdir()
    status, _, err = cli(main, "--tokenizer", tmp_path / "empty", "--out", tmp_path / "out", "-n", "10")
    assert one_line_error(status, err).startswith("mcq-gen: error: --tokenizer: cannot load")
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]
    with pytest.raises(UsageError, match="--tokenizer: cannot load"):  # from Python too, before any work
        generate("mcq", tmp_path / "py", num_examples=10, tokenizer=str(tmp_path / "empty"))
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


def test_python_generate_writes_the_same_bytes_as_the_command(tmp_path, cli):
    args = ["--level", "3,4", "-n", "50", "--seed", "7", "--counterfactual", "labels", "--labels", "numbers,random",
            "--sources", "context,order", "--distractors", "near"]
    status, _, err = cli(main, *args, "--out", tmp_path / "cli")
    assert status == 0, err
    generate("mcq", tmp_path / "py", levels=[3, 4], num_examples=50, seed=7, counterfactual="labels",
             schemes=["numbers", "random"], sources=("context", "order"), near=True)
    parquet = files_of(tmp_path / "cli", ".parquet")
    assert len(parquet) == 6 and parquet == files_of(tmp_path / "py", ".parquet")
    assert read_corpus_metadata(tmp_path / "py").options == read_corpus_metadata(tmp_path / "cli").options
    with pytest.raises(UsageError, match="unknown label scheme 'greek'"):
        generate("mcq", tmp_path / "bad", num_examples=10, schemes=["greek"])
    assert not (tmp_path / "bad").exists()


def test_existing_output_needs_overwrite(tmp_path, cli):
    (tmp_path / "out").mkdir()
    status, _, err = cli(main, "--out", tmp_path / "out", "-n", "10")
    assert "already exists" in one_line_error(status, err)
    assert list((tmp_path / "out").iterdir()) == []


def test_help():
    result = run("--help")
    assert result.returncode == 0 and "levels:" in result.stdout and "--counterfactual" in result.stdout
