"""Dataset and model cards as a Hub user reads them: the title, a worked example from the corpus (the
first test record, and how to score it), the model's prompt format and quickstart, and the cards as
`zoo publish` rewrites them for their repositories. Facts are checked on the parsed card
(`DatasetCard` / `ModelCard`); the session's small corpora are read, never written."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard, ModelCard

from cards import generator
from cards.card import HERE, example_record, for_repo, levels_name
from cards.model_card import ModelDescription, for_repo as model_for_repo, model_card, worked_example


def first_test_record(folder, config: str) -> dict:
    """Read apart from `cards.card.example_record`: row 0 of the first test file."""
    first = sorted((folder / "data" / config).glob("test-*.parquet"))[0]
    return pq.read_table(first).slice(0, 1).to_pylist()[0]


def test_titles_say_level_for_one_level(corpora):
    assert DatasetCard.load(corpora / "sql" / "README.md").data.pretty_name == "TinySQL level 1"
    assert DatasetCard.load(corpora / "mcq" / "README.md").data.pretty_name == "Multiple-choice label binding, level 1"
    assert levels_name([3]) == "level 3" and levels_name([1, 2, 4]) == "levels 1, 2, 4"


@pytest.mark.parametrize("name, config, prompt, gold", [
    ("sql", "level1", "prompt", "sql_statement"),
    ("mcq", "level1", "prompt", "answer_label"),
    ("mm", "2x2", "text", "answer"),
])
def test_dataset_cards_show_the_first_test_record_and_how_to_score_it(corpora, name, config, prompt, gold):
    folder = corpora / name
    card, record = DatasetCard.load(folder / "README.md"), first_test_record(folder, config)
    example = card.text.split("## Example", 1)[1].split("\n## ", 1)[0]
    assert f"The first `test` record of `{config}`" in example
    assert f"```text\n{record[prompt]}\n```" in example and record[gold] in example
    assert f'load_dataset("{HERE}", "{config}", split="test")[0]' in example
    assert {"sql": "score_one(", "mcq": 'record["answer_label"]', "mm": 'record["answer"]'}[name] in example
    assert example_record(folder, [type("R", (), {"name": config})()]) == {"config": config, "split": "test",
                                                                          "record": record}


def test_a_published_dataset_card_loads_from_its_repository(corpora):
    text = for_repo((corpora / "sql" / "README.md").read_text(), "lab/tinysql-l1")
    card = DatasetCard(text)
    assert 'load_dataset("lab/tinysql-l1", "level1")' in card.text and HERE not in card.text
    assert 'load_dataset("lab/tinysql-l1", "level1", split="test")[0]' in card.text
    assert card.data.to_dict() == DatasetCard.load(corpora / "sql" / "README.md").data.to_dict()


def description(**changes) -> ModelDescription:
    facts = dict(name="mm-tiny", dataset="mm", dataset_config="2x2", task="multi-digit multiplication", split="test",
                 objective="sft", objective_text="supervised fine-tuning", metrics={"n": 40, "exact_match": 0.5},
                 parameters={"total": 10, "embedding": 4, "non_embedding": 6}, architecture="gpt2",
                 command="zoo-train --data mm --out mm-tiny", hardware="CPU", seconds=3.0, steps=3,
                 generator="multmath", preset="tiny")
    return ModelDescription(**{**facts, **changes})


def test_the_model_card_shows_the_prompt_format_and_a_greedy_quickstart(corpora):
    record = first_test_record(corpora / "mm", "2x2")
    example = worked_example(generator.get("multmath").view, record)
    assert example == {"prompt": f"{record['prompt']} ||", "completion": f" {record['cot']} #### {record['answer']}"}
    assert worked_example(generator.get("multmath").view, record, keeps_cot=False)["completion"] == \
        f" #### {record['answer']}"
    card = ModelCard(model_card(description(example=example)))
    fmt = card.text.split("## Prompt format", 1)[1].split("\n## ", 1)[0]
    assert f"```text\n{example['prompt']}\n```" in fmt and f"```text\n{example['completion']}\n```" in fmt
    quickstart = card.text.split("## Quickstart", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert f'from_pretrained("{HERE}")' in quickstart and f"prompt = {example['prompt']!r}\n" in quickstart
    assert "model.generate(**inputs, do_sample=False)" in quickstart and "tokenizer.decode(" in quickstart
    compile(quickstart, "quickstart", "exec")
    assert card.data.datasets == ["mm"]


def test_a_published_model_card_names_its_repository_and_its_corpus():
    text = model_card(description(example={"prompt": "1 2 * 3 4 ||", "completion": " 3 6 #### 3 6 0 0"}))
    card = ModelCard(model_for_repo(text, "lab/mm-tiny", "lab/mm"))
    assert card.data.datasets == ["lab/mm"] and card.data.interp_zoo == ModelCard(text).data.interp_zoo
    assert [(r.dataset_type, r.dataset_name, r.dataset_config) for r in card.data.eval_results] == \
        [("lab/mm", "lab/mm", "2x2")]
    assert "corpus `lab/mm` (config `2x2`)" in card.text and 'from_pretrained("lab/mm-tiny")' in card.text
    assert HERE not in card.text
    unnamed = ModelCard(model_for_repo(text, "lab/mm-tiny"))
    assert unnamed.data.datasets == ["mm"] and 'from_pretrained("lab/mm-tiny")' in unnamed.text
