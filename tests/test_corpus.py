"""The corpus core: hashed randomness, worker-count independence, splits without leakage, atomic folders,
and a toy generator written on `cards.generator` (its card and recorded metadata)."""

from __future__ import annotations

import functools
import os
import random
import time
from dataclasses import dataclass

import datasets
import pyarrow as pa
import pytest

from cards.card import CorpusMetadata, dataset_card, read_corpus_metadata
from cards.cli import UsageError, parse_levels
from cards.corpus import Candidate, Config, _KeyIndex, build, item_rng, split_sizes
from cards.generator import CardFacts, Generator, generate

SCHEMA = pa.schema([("id", pa.string()), ("a", pa.int64()), ("b", pa.int64())])


def toy_item(limit: int, index: int) -> Candidate:
    rng = item_rng(0, "toy", "sums", index)
    a, b = rng.randint(0, limit), rng.randint(0, limit)
    if a == 3:
        return Candidate(None, "a is three")
    return Candidate({"id": f"toy-{index}", "a": a, "b": b}, prompt_key=f"{a}+{b}", group_key=str(a + b))


@dataclass(frozen=True)
class ToyOptions:
    seed: int = 0
    limit: int = 60
    checked: bool = True


class Toy(Generator):
    """Sums a + b of numbers up to `limit`, one config `sums`; a candidate with a = 3 is rejected."""

    name = "toy"
    task = "sums"
    description = "Toy sums."
    levels = {1: "a + b"}
    Options = ToyOptions
    chunk = 32

    def make_item(self, options, level, index):
        return toy_item(options.limit, index)

    def schema(self, options):
        return SCHEMA

    def config_name(self, level):
        return "sums"

    def card(self, options, levels, reports, folder):
        return CardFacts("Toy", ["sum recomputed"] if options.checked else [], {"sums": "a + b"}, {"a": "left"},
                         template="Sums up to {{ limit }}.\n", context={"limit": options.limit})


def toy_build(out, num_proc=1, total=600, limit=60, overwrite=False, checked=True):
    return generate(Toy(), out, num_examples=total, num_proc=num_proc, overwrite=overwrite, command="toy --seed 0",
                    limit=limit, checked=checked)


def test_item_rng_is_hashed_not_offset():
    first = [item_rng(42, "g", "c", i).random() for i in range(5)]
    assert first == [item_rng(42, "g", "c", i).random() for i in range(5)]
    shifted = [item_rng(43, "g", "c", i).random() for i in range(5)]
    assert not set(first[1:]) & set(shifted), "seed+index seeding would make these overlap"
    assert item_rng(42, "g", "c", 0).random() != item_rng(42, "h", "c", 0).random()


def test_key_index_answers_like_a_dict_across_merges():
    """The compact index of prompt and group hashes: 60,000 keys (several merges into its arrays), full
    64-bit values included, each found with its value in later chunks and never a key it was not given."""
    rng = random.Random(7)
    given = {}
    index = _KeyIndex()
    for _ in range(500):
        chunk = [rng.getrandbits(64) for _ in range(100)] + rng.sample(sorted(given), min(20, len(given)))
        index.look_up(chunk)
        for key in chunk:
            assert (key in index) == (key in given) and index.get(key) == given.get(key)
            if key not in given:
                given[key] = index[key] = rng.randrange(3)
    assert len(index.keys) > 40_000 and list(index.keys) == sorted(index.keys)  # most keys merged, in order
    index.look_up([(1 << 64) - 1, 0, 12345])
    assert not any(k in index for k in ((1 << 64) - 1, 0, 12345))


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
    assert "Sums up to 60." in card and "- sum recomputed" in card


def test_card_records_the_generator_and_what_was_checked(tmp_path):
    toy_build(tmp_path / "out", total=100, limit=50, checked=False)
    meta = read_corpus_metadata(tmp_path / "out")
    assert (meta.generator, meta.version, meta.seed, meta.command) == ("toy", "1", 0, "toy --seed 0")
    assert meta.options == {"seed": 0, "limit": 50, "checked": False} and meta.configs == ["sums"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "No record was checked" in card and "- sum recomputed" not in card


def test_too_many_asked_fails_cleanly(tmp_path):
    with pytest.raises(UsageError, match="distinct"):
        toy_build(tmp_path / "out", total=500, limit=5)
    assert os.listdir(tmp_path) == []


def test_existing_folder_needs_overwrite_and_must_be_a_corpus(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(UsageError, match="exists"):
        toy_build(tmp_path / "out")
    with pytest.raises(UsageError, match="keep.txt"):  # --overwrite replaces only what this project wrote
        toy_build(tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "keep.txt").read_text() == "x"
    (tmp_path / "out" / "keep.txt").unlink()
    toy_build(tmp_path / "out", overwrite=True)  # an empty folder
    toy_build(tmp_path / "out", total=300, overwrite=True)  # a corpus folder
    assert read_corpus_metadata(tmp_path / "out").configs == ["sums"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_failure_midway_leaves_nothing(tmp_path):
    def broken(index):
        if index == 200:
            raise RuntimeError("boom")
        return toy_item(60, index)

    configs = [Config("sums", broken, {"train": 500}, chunk=32)]
    with pytest.raises(RuntimeError):
        build(tmp_path / "out", configs, SCHEMA, lambda folder, reports: "card")
    assert os.listdir(tmp_path) == []


def test_parse_levels():
    assert parse_levels("3", 1, 8) == [3]
    assert parse_levels("1-3,5", 1, 8) == [1, 2, 3, 5]
    for bad in ("0", "9", "x", "3-1", "1-9"):
        with pytest.raises(UsageError):
            parse_levels(bad, 1, 8)


def test_empty_splits_are_left_out(tmp_path):
    configs = [Config("sums", functools.partial(toy_item, 60), {"train": 30, "validation": 0, "test": 10}, chunk=32)]
    metadata = CorpusMetadata("toy", "1", 0, "toy")
    build(tmp_path / "out", configs, SCHEMA,
          lambda folder, reports: dataset_card(CardFacts("Toy", [], {}, {}), reports, metadata))
    ds = datasets.load_dataset(str(tmp_path / "out"))
    assert {s: len(ds[s]) for s in ds} == {"train": 30, "test": 10}
    with pytest.raises(UsageError, match="nothing to generate"):
        build(tmp_path / "none", [Config("sums", functools.partial(toy_item, 60), {"train": 0})], SCHEMA,
              lambda folder, reports: "")
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


def _slow_item(done_dir: str, chunk: int, index: int) -> Candidate:
    """An item that takes 10 ms; the last item of each chunk leaves a file behind once it is made."""
    time.sleep(0.01)
    if index % chunk == chunk - 1:
        open(os.path.join(done_dir, str(index // chunk)), "w").close()
    return Candidate({"text": str(index) * 2000}, prompt_key=str(index), group_key=str(index))


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a pool needs two CPUs")
def test_closing_a_parallel_build_early_lets_every_handed_out_chunk_arrive(tmp_path):
    # Pool.terminate hangs if a worker is still writing a chunk when the pool stops reading results;
    # so the builder lets every chunk it handed out (3 per worker) arrive before it ends the pool
    from cards.corpus import _chunks

    chunk = 8
    config = Config("c", functools.partial(_slow_item, str(tmp_path), chunk), {"train": 10_000}, chunk=chunk)
    chunks = _chunks(config, pa.schema([("text", pa.string())]), 2, lambda: 10_000)
    first = next(chunks)
    chunks.close()
    assert len(first.reasons) == chunk
    assert sorted(int(name) for name in os.listdir(tmp_path)) == list(range(6))
