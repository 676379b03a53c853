"""The corpus core: hashed randomness, worker-count independence, splits without leakage, atomic folders."""

from __future__ import annotations

import functools
import os

import datasets
import pyarrow as pa
import pytest

from cards.card import DatasetDescription, dataset_card
from cards.cli import UsageError, parse_levels
from cards.corpus import Candidate, Config, build, item_rng, split_sizes

SCHEMA = pa.schema([("id", pa.string()), ("a", pa.int64()), ("b", pa.int64())])


def toy_item(limit: int, index: int) -> Candidate:
    rng = item_rng(0, "toy", "sums", index)
    a, b = rng.randint(0, limit), rng.randint(0, limit)
    if a == 3:
        return Candidate(None, "a is three")
    return Candidate({"id": f"toy-{index}", "a": a, "b": b}, prompt_key=f"{a}+{b}", group_key=str(a + b))


def toy_build(out, num_proc=1, total=600, limit=60, overwrite=False):
    configs = [Config("sums", functools.partial(toy_item, limit), split_sizes(total, {"train": .8, "validation": .1,
                                                                                      "test": .1}), chunk=32)]
    description = DatasetDescription("Toy", "Toy sums.", {"sums": "a + b"}, {"a": "left"}, ["sum recomputed"], 0)
    return build(out, configs, SCHEMA, lambda reports: dataset_card(description, reports, "toy --seed 0"),
                 num_proc=num_proc, overwrite=overwrite)


def test_item_rng_is_hashed_not_offset():
    first = [item_rng(42, "g", "c", i).random() for i in range(5)]
    assert first == [item_rng(42, "g", "c", i).random() for i in range(5)]
    shifted = [item_rng(43, "g", "c", i).random() for i in range(5)]
    assert not set(first[1:]) & set(shifted), "seed+index seeding would make these overlap"
    assert item_rng(42, "g", "c", 0).random() != item_rng(42, "h", "c", 0).random()


def test_split_sizes_are_exact():
    assert split_sizes(10, {"train": .8, "validation": .1, "test": .1}) == {"train": 8, "validation": 1, "test": 1}
    sizes = split_sizes(20001, {"train": .8, "validation": .1, "test": .1})
    assert sum(sizes.values()) == 20001


def test_output_identical_for_any_worker_count(tmp_path):
    toy_build(tmp_path / "one", num_proc=1)
    toy_build(tmp_path / "two", num_proc=2)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert files
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_splits_have_no_leakage_and_exact_sizes(tmp_path):
    reports = toy_build(tmp_path / "out")
    ds = datasets.load_dataset(str(tmp_path / "out"))
    assert {s: len(ds[s]) for s in ds} == {"train": 480, "validation": 60, "test": 60}
    groups = {s: {r["a"] + r["b"] for r in ds[s]} for s in ds}
    prompts = [(r["a"], r["b"]) for s in ds for r in ds[s]]
    assert len(prompts) == len(set(prompts))
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["validation"]
    assert not groups["validation"] & groups["test"]
    assert reports[0].rejected["a is three"] > 0 and reports[0].duplicates > 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert "a is three" in card and "| sums | a + b | 480 | 60 | 60 |" in card and "toy --seed 0" in card


def test_too_many_asked_fails_cleanly(tmp_path):
    with pytest.raises(UsageError, match="distinct"):
        toy_build(tmp_path / "out", total=500, limit=5)
    assert os.listdir(tmp_path) == []


def test_existing_folder_needs_overwrite(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(UsageError, match="exists"):
        toy_build(tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").exists()
    toy_build(tmp_path / "out", overwrite=True)
    assert not (tmp_path / "out" / "keep.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_failure_midway_leaves_nothing(tmp_path):
    def broken(index):
        if index == 200:
            raise RuntimeError("boom")
        return toy_item(60, index)

    configs = [Config("sums", broken, {"train": 500}, chunk=32)]
    with pytest.raises(RuntimeError):
        build(tmp_path / "out", configs, SCHEMA, lambda r: "card")
    assert os.listdir(tmp_path) == []


def test_parse_levels():
    assert parse_levels("3", 1, 8) == [3]
    assert parse_levels("1-3,5", 1, 8) == [1, 2, 3, 5]
    for bad in ("0", "9", "x", "3-1", "1-9"):
        with pytest.raises(UsageError):
            parse_levels(bad, 1, 8)


def test_empty_splits_are_left_out(tmp_path):
    configs = [Config("sums", functools.partial(toy_item, 60), {"train": 30, "validation": 0, "test": 10}, chunk=32)]
    build(tmp_path / "out", configs, SCHEMA, lambda reports: dataset_card(
        DatasetDescription("Toy", "Toy.", {}, {}, [], 0), reports, "toy"))
    ds = datasets.load_dataset(str(tmp_path / "out"))
    assert {s: len(ds[s]) for s in ds} == {"train": 30, "test": 10}
    with pytest.raises(UsageError, match="nothing to generate"):
        build(tmp_path / "none", [Config("sums", functools.partial(toy_item, 60), {"train": 0})], SCHEMA, str)
    assert not (tmp_path / "none").exists()


def test_a_corpus_regenerated_in_place_is_not_read_from_a_stale_cache(tmp_path):
    cache = str(tmp_path / "cache")  # one datasets cache shared by both loads, as for a user
    toy_build(tmp_path / "out", total=100)
    first = datasets.load_dataset(str(tmp_path / "out"), cache_dir=cache)["train"]["id"]
    toy_build(tmp_path / "out", total=200, overwrite=True)
    second = datasets.load_dataset(str(tmp_path / "out"), cache_dir=cache)["train"]
    assert len(first) == 80 and len(second) == 160 and second["id"] != first
    names = sorted(p.name for p in (tmp_path / "out" / "data" / "sums").iterdir())
    fingerprint = names[0].split("-")[1]
    assert names == [f"{s}-{fingerprint}-00000-of-00001.parquet" for s in ("test", "train", "validation")]
