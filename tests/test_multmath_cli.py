"""`multmath-gen` end to end: Hub-ready folder, ICoT text files, determinism, leakage, the card, errors,
and the same corpus from Python (`cards.generator.generate`)."""

from __future__ import annotations

import functools
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from conftest import one_line_error, script
from huggingface_hub import DatasetCard

from cards.card import read_corpus_metadata
from cards.errors import UsageError
from cards.generator import generate
from multmath import problem
from multmath.check import check_record
from multmath.cli import main

run = functools.partial(script, "multmath.cli")  # run(*args, cwd=None): the console script in a subprocess


def files_of(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def texts(folder: Path, config: str, split: str) -> list[str]:
    files = sorted((folder / "data" / config).glob(f"{split}-*.parquet"))
    return [line for f in files for line in pq.read_table(f, columns=["text"]).column(0).to_pylist()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "m"
    result = run("--digits", "4x4,3x7", "-n", "400", "--num-valid", "50", "--num-test", "30", "--seed", "3",
                 "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_folder_loads_with_configs_and_splits(corpus):
    assert datasets.get_dataset_config_names(str(corpus)) == ["4x4", "3x7"]
    ds = datasets.load_dataset(str(corpus), "3x7")
    assert {s: len(ds[s]) for s in ds} == {"train": 400, "validation": 50, "test": 30}
    row = ds["test"][0]
    assert len(row["a"]) == 3 and len(row["b"]) == 7 and row["config"] == "3x7"
    assert row["text"] == problem(int(row["a"]), int(row["b"])).icot_line()
    assert row["text"] == f"{row['prompt']}||{row['cot']} #### {row['answer']}"
    assert row["answer_digits"] == list(problem(int(row["a"]), int(row["b"])).answer_digits)
    assert check_record(row, "icot", "explicit", 3, 7) is None


def test_icot_text_files_hold_the_splits_in_order(corpus):
    for config, folder in (("4x4", "4_by_4_mult"), ("3x7", "3_by_7_mult")):
        for split, name in (("train", "train.txt"), ("validation", "valid.txt"), ("test", "test_bigbench.txt")):
            raw = (corpus / "icot" / folder / name).read_bytes()
            assert raw.endswith(b"\n") and b"\r" not in raw
            assert raw.decode().splitlines() == texts(corpus, config, split)


def test_card_reports_sizes_levels_checks_and_command(corpus):
    data = DatasetCard.load(corpus / "README.md").data
    assert [c["config_name"] for c in data.configs] == ["4x4", "3x7"] and data.configs[0]["default"]
    meta = read_corpus_metadata(corpus)
    assert (meta.generator, meta.seed, meta.configs) == ("multmath", 3, ["4x4", "3x7"])
    assert meta.command.startswith("multmath-gen --digits 4x4,3x7 -n 400 --num-valid 50 --num-test 30 --seed 3")
    assert meta.options == {"seed": 3, "format": "icot", "cot": "explicit", "commutative": True, "validate": True,
                            "exclude": []}
    card = (corpus / "README.md").read_text()
    assert "| 4x4 |" in card and "| 400 | 50 | 30 |" in card and "Seed 3." in card
    assert "icot/3_by_7_mult/" in card and "test_bigbench.txt" in card
    assert "--level L" in card and "independent" in card and "| 4x4 | 480 | 480 |" in card
    assert "- `3x7`: 480 candidates checked, 480 kept, 0 rejected by the check" in card
    assert problem(3719, 3349).icot_line() in card


def test_no_leakage_and_pairs_share_a_split(tmp_path):
    """2x2 has 4,095 unordered problems: ask for 4,000 so that a×b and b×a meet often."""
    out = tmp_path / "m22"
    result = run("--digits", "2x2", "-n", "3000", "--num-valid", "500", "--num-test", "500", "--out", out,
                 "--num-proc", "2")
    assert result.returncode == 0, result.stderr
    where, both = {}, 0
    for split in ("train", "validation", "test"):
        for line in texts(out, "2x2", split):
            a, b = (int(x.replace(" ", "")[::-1]) for x in line.split("||")[0].split(" * "))
            pair = (min(a, b), max(a, b))
            both += pair in where
            assert where.setdefault(pair, split) == split
    assert len(where) + both == 4000 and both > 500


def test_every_ordered_problem_without_commutative_leakage(tmp_path):
    out = tmp_path / "all"
    result = run("--digits", "1x2", "-n", "800", "--num-valid", "5", "--num-test", "5", "--out", out,
                 "--no-commutative-leakage", "--format", "plain", "--cot", "none")
    assert result.returncode == 0, result.stderr
    lines = [line for s in ("train", "validation", "test") for line in texts(out, "1x2", s)]
    assert sorted(lines) == sorted(f"{a} * {b} = {a * b}" for a in range(1, 10) for b in range(10, 100))
    assert not (out / "icot").exists()
    assert run("--digits", "1x2", "-n", "811", "--num-valid", "0", "--num-test", "0", "--out", tmp_path / "x",
               "--no-commutative-leakage").returncode == 2


def test_same_bytes_whatever_num_proc(tmp_path):
    outputs = []
    for procs in (1, 2):
        (tmp_path / f"p{procs}").mkdir()
        out = tmp_path / f"p{procs}" / "m"  # the same --out (relative), so the cards can be equal too
        args = ["--level", "5", "-n", "3000", "--num-valid", "100", "--num-test", "100", "--cot", "none"]
        result = run(*args, "--out", "m", "--num-proc", procs, cwd=out.parent)
        assert result.returncode == 0, result.stderr
        outputs.append(files_of(out))
    assert outputs[0] == outputs[1]
    assert Path("icot/5_by_5_mult/train.txt") in outputs[0]
    first = outputs[0][Path("icot/5_by_5_mult/train.txt")].decode().splitlines()[0]
    assert "||#### " in first and " + " not in first


def test_default_out_and_help(tmp_path):
    result = run("--digits", "2x3", "-n", "20", "--num-valid", "2", "--num-test", "2", "--format", "plain",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "multmath-2x3-plain" / "README.md").exists()
    help_text = run("--help").stdout
    for option in ("--digits", "--level", "--format", "--cot", "--num-train", "--num-valid", "--num-test", "--seed",
                   "--out", "--num-proc", "--overwrite", "--no-commutative-leakage", "2x2 .. 20x20"):
        assert option in help_text


@pytest.mark.parametrize("args, message", [
    (["--digits", "0x4"], "1 to 40 digits"),
    (["--digits", "4x"], "expected sizes like 4x4"),
    (["--digits", "axb"], "expected sizes like 4x4"),
    (["--digits", "41x2"], "1 to 40 digits"),
    (["--level", "1"], "does not exist"),
    (["--level", "21"], "does not exist"),
    (["--level", "four"], "--level"),
    (["--level", "4", "--digits", "4x4"], "not allowed with"),
    (["-n", "-5"], "-n/--num-train"),
    (["--num-test", "-1"], "--num-test"),
    (["--num-proc", "0"], "--num-proc"),
    (["--format", "json"], "invalid choice"),
    (["--digits", "2x2"], "only 4,095 distinct problems exist"),
    (["--digits", "2x2", "-n", "8000", "--no-commutative-leakage"], "only 8,100 distinct problems exist"),
    (["-n", "0", "--num-valid", "0", "--num-test", "0"], "nothing to generate"),
])
def test_errors_are_one_line_exit_2_and_write_nothing(tmp_path, cli, args, message):
    status, _, err = cli(main, *args, "--out", tmp_path / "out")
    assert one_line_error(status, err).startswith("multmath-gen: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_no_validate_card_lists_no_checks(tmp_path, cli):
    status, _, err = cli(main, "--digits", "2x3", "-n", "20", "--num-valid", "2", "--num-test", "2", "--no-validate",
                         "--out", tmp_path / "raw")
    assert status == 0, err
    card = (tmp_path / "raw" / "README.md").read_text()
    assert "No record was checked" in card and "Check outcome" not in card and "checked by an independent" not in card
    assert read_corpus_metadata(tmp_path / "raw").options["validate"] is False


def test_python_generate_writes_the_same_bytes_as_the_command(tmp_path, cli):
    args = ["--digits", "3x3,2x4", "-n", "300", "--num-valid", "20", "--num-test", "20", "--seed", "4",
            "--format", "plain", "--no-commutative-leakage"]
    assert cli(main, *args, "--out", tmp_path / "cli")[0] == 0
    generate("multmath", tmp_path / "py", levels=[(3, 3), (2, 4)], sizes={"train": 300, "validation": 20, "test": 20},
             seed=4, format="plain", commutative=False)
    from_cli, from_python = files_of(tmp_path / "cli"), files_of(tmp_path / "py")
    assert from_cli.keys() == from_python.keys()
    assert {k: v for k, v in from_cli.items() if k.suffix == ".parquet"} == \
        {k: v for k, v in from_python.items() if k.suffix == ".parquet"}
    assert read_corpus_metadata(tmp_path / "py").options == read_corpus_metadata(tmp_path / "cli").options
    generate("multmath", tmp_path / "icot", levels=[3], num_examples=100)  # a level L is the L×L size
    assert (tmp_path / "icot" / "icot" / "3_by_3_mult" / "valid.txt").read_text().count("\n") == 10
    with pytest.raises(UsageError, match="format: 'nope'"):
        generate("multmath", tmp_path / "bad", levels=[(2, 2)], num_examples=10, format="nope")
    assert not (tmp_path / "bad").exists()




def test_existing_out_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run("--digits", "2x2", "-n", "10", "--num-valid", "1", "--num-test", "1", "--out", out)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--overwrite" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "keep.txt").read_text() == "mine"
    small = ("--digits", "2x2", "-n", "10", "--num-valid", "1", "--num-test", "1", "--out", out)
    result = run(*small, "--overwrite")  # not a folder this project wrote: refused, nothing deleted
    assert result.returncode == 2 and "keep.txt" in result.stderr and (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()  # an empty folder may be replaced
    assert run(*small, "--overwrite").returncode == 0
    result = run(*small, "--overwrite")  # and so may a corpus folder it wrote
    assert result.returncode == 0, result.stderr
    assert (out / "icot" / "2_by_2_mult" / "train.txt").exists()
