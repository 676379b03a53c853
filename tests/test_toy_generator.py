"""The generator interface end to end: a toy generator declared in this file alone generates, loads
with `load_dataset`, trains with `zoo-train` and evaluates with `zoo-eval`, through its own view."""

from __future__ import annotations

import json
from dataclasses import dataclass

import datasets
import pyarrow as pa
import pytest

from cards.card import read_corpus_metadata
from cards.corpus import Candidate, item_rng
from cards.errors import UsageError
from cards.generator import CardFacts, Generator, TrainingView, generate, get, register
from train.cli import eval_main, train_main


@dataclass(frozen=True)
class SumOptions:
    seed: int = 0
    spaced: bool = False

    def __post_init__(self):
        if not isinstance(self.spaced, bool):
            raise UsageError("spaced: expected true or false")


class SumView(TrainingView):
    """Exact match, plus: is the last digit right?"""

    def metrics(self, records, outputs):
        right = [self.answer(o)[-1:] == self.gold(r)[-1:] for r, o in zip(records, outputs)]
        return {"last_digit_match": sum(right) / len(right)}


class Sums(Generator):
    name = "toy-sums"
    task = "addition"
    description = "a + b, checked by recomputing the sum"
    levels = {1: "one-digit operands", 2: "two-digit operands", 3: "three-digit operands"}
    Options = SumOptions
    view = SumView()

    def make_item(self, options, level, index):
        rng = item_rng(options.seed, self.name, f"level{level}", index)
        a, b = rng.randrange(10 ** level), rng.randrange(10 ** level)
        prompt = f"{a} + {b} =" if options.spaced else f"{a}+{b}="
        record = {"id": f"sums-{level}-{index}", "level": level, "prompt": prompt, "completion": f" {a + b}"}
        if int(record["completion"]) != a + b:  # the independent check
            return Candidate(None, "wrong sum")
        return Candidate(record, prompt_key=prompt, group_key=str(sorted((a, b))))

    def schema(self, options):
        return pa.schema([("id", pa.string()), ("level", pa.int32()), ("prompt", pa.string()),
                          ("completion", pa.string())])

    def card(self, options, levels, reports, folder):
        return CardFacts(pretty_name="Toy sums", checks=["the sum was recomputed"],
                         config_notes={f"level{lv}": self.levels[lv] for lv in levels},
                         fields={"prompt": "a+b=", "completion": "the sum"}, leakage_group="{a, b}")


register(Sums())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "sums"
    reports = generate("toy-sums", out, levels=[2, 3], num_examples=400, seed=3)
    assert [r.kept for r in reports] == [400, 400]
    return out


def test_registered_generator_is_found_by_name():
    assert isinstance(get("toy-sums"), Sums)
    with pytest.raises(UsageError, match="unknown generator"):
        get("no-such-generator")
    with pytest.raises(UsageError, match="spaced"):
        generate("toy-sums", "unused", spaced="yes")


def test_generates_a_folder_that_loads_and_records_its_generator(corpus):
    ds = datasets.load_dataset(str(corpus), "level2")
    assert {split: len(ds[split]) for split in ds} == {"train": 320, "validation": 40, "test": 40}
    for record in ds["train"]:
        a, b = map(int, record["prompt"].rstrip("=").split("+"))
        assert int(record["completion"]) == a + b
    meta = read_corpus_metadata(corpus)
    assert (meta.generator, meta.seed, meta.configs) == ("toy-sums", 3, ["level2", "level3"])


def test_trains_and_evaluates_through_its_own_view(corpus, tmp_path, cli):
    out = tmp_path / "run"
    status, stdout, err = cli(train_main, "--data", corpus, "--config", "level2", "--preset", "tiny",
                              "--max-steps", "20", "--no-progress", "--out", out)
    assert status == 0, err
    metrics = json.loads(stdout.strip().splitlines()[-1])
    assert metrics["n"] == 40 and 0 <= metrics["last_digit_match"] <= 1 and "exact_match" in metrics
    status, stdout, err = cli(eval_main, "--model", out, "--data", corpus, "--config", "level2",
                              "--split", "validation", "--no-progress")
    assert status == 0, err
    evaluated = json.loads(stdout)
    assert evaluated["split"] == "validation" and evaluated["n"] == 40 and "last_digit_match" in evaluated
