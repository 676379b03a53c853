"""`multmath-gen --exclude FILE...`: every problem an ICoT-format file lists, and its swap b×a, is kept out
of the corpus; the card counts what was dropped; bad files are one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import one_line_error

from cards.card import read_corpus_metadata
from multmath import problem
from multmath.cli import main
from multmath.exclude import parse_line
from multmath.generate import make_item
from multmath.generator import Options


def records(folder: Path, config: str) -> list[dict]:
    return [row for f in sorted((folder / "data" / config).glob("*.parquet")) for row in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def listed(tmp_path_factory) -> Path:
    """A 2x2 corpus whose text files are the lists to exclude."""
    out = tmp_path_factory.mktemp("ex") / "listed"
    assert main(["--digits", "2x2", "-n", "300", "--num-valid", "40", "--num-test", "40", "--seed", "5",
                 "--out", str(out)]) == 0
    return out


def pairs_in(*files: Path) -> set[tuple[int, int]]:
    found = set()
    for file in files:
        for line in file.read_text().splitlines():
            left = line.split("||")[0].split(" * ")
            found.add(tuple(int(side.replace(" ", "")[::-1]) for side in left))
    return found


def test_listed_problems_and_their_swaps_are_absent(listed, tmp_path, cli):
    files = [listed / "icot/2_by_2_mult/test_bigbench.txt", listed / "icot/2_by_2_mult/train.txt"]
    listed_pairs = pairs_in(*files)
    assert len(listed_pairs) == 340 and any((b, a) not in listed_pairs for a, b in listed_pairs)
    out = tmp_path / "kept"
    status, _, err = cli(main, "--digits", "2x2", "-n", "2000", "--num-valid", "100", "--num-test", "100",
                         "--seed", "6", "--exclude", files[0], "--exclude", files[1], "--out", out)
    assert status == 0, err
    made = {(int(r["a"]), int(r["b"])) for r in records(out, "2x2")}
    assert len(made) == 2200
    assert not made & listed_pairs and not made & {(b, a) for a, b in listed_pairs}
    # the same seed without --exclude does draw listed problems: the exclusion is what kept them out
    plain = Options(seed=6)
    first = [make_item(plain, (2, 2), i).record for i in range(3000)]
    hits = [i for i, r in enumerate(first) if (int(r["a"]), int(r["b"])) in listed_pairs | {(b, a) for a, b in
                                                                                              listed_pairs}]
    assert hits
    # the card: the files, their problem counts, and the dropped candidates, which are exactly the listed problems
    # among the candidates drawn (checked + dropped)
    card = (out / "README.md").read_text()
    assert "## Excluded problems" in card and "| `test_bigbench.txt` |" in card and "| 300 |" in card
    dropped = int(re.search(r"or their swap\): `2x2` ([\d,]+)\.", card)[1].replace(",", ""))
    checked = int(re.search(r"- `2x2`: ([\d,]+) candidates checked", card)[1].replace(",", ""))
    assert dropped == sum(1 for i in hits if i < checked + dropped) > 0
    assert read_corpus_metadata(out).options["exclude"] == [str(f) for f in files]


def test_every_line_of_a_multmath_file_parses_back():
    line = problem(3719, 3349).icot_line()
    assert parse_line(line) == (3719, 3349)
    assert parse_line(problem(12, 345).icot_line(cot=False)) == (12, 345)
    assert parse_line(line.replace("#### 1", "#### 2")) is None  # the answer is not a × b
    assert parse_line(line.replace("||", " || ")) is None


@pytest.mark.parametrize("content, says", [
    (None, "no such file"),
    ("", "lists no problem"),
    ("3719 * 3349 = 12454931\n", "line 1 is not an ICoT multiplication line"),
    (problem(12, 34).icot_line() + "\n\n" + problem(12, 34).icot_line().replace("#### 8", "#### 9") + "\n",
     "line 3 is not an ICoT"),
    (b"\xff\xfe\x00", "cannot read it"),
])
def test_bad_exclude_files_are_one_line_errors(tmp_path, cli, content, says):
    file = tmp_path / "list.txt"
    if isinstance(content, bytes):
        file.write_bytes(content)
    elif content is not None:
        file.write_text(content)
    status, _, err = cli(main, "--digits", "2x2", "-n", "10", "--exclude", file, "--out", tmp_path / "out")
    assert says in one_line_error(status, err) and str(file) in err
    assert not (tmp_path / "out").exists()


def test_a_folder_is_refused(tmp_path, cli):
    status, _, err = cli(main, "--digits", "2x2", "-n", "10", "--exclude", tmp_path, "--out", tmp_path / "out")
    assert "cannot read it" in one_line_error(status, err)
