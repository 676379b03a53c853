"""The model card: the README.md of every checkpoint folder written by `zoo-train`.

Rendered like the dataset cards (`cards.card`): `ModelCard.from_template` over
`cards/templates/model_card.md`, filled from the structured facts the trainer hands over
(`ModelDescription`): the parameter counts from the model, the results from its evaluation, the
task from the corpus's generator, the objective's description from the objective, the training
table from the run's settings, the commands, hardware and wall time from the run. The YAML holds
the model-index results and, under `interp_zoo`, the facts a program may want back (generator,
objective, commands, parameter counts, training settings).

The card shows the prompt format when the trainer hands over a worked example (`worked_example`:
one test prompt exactly as the model reads it, and the completion it was trained to write) and a
quickstart that loads the model, prompts it and decodes greedily. Like a dataset card, it names
its own repository `"path/to/this/folder"` until `zoo publish` writes the repository id there;
`for_repo` also names the corpus by its Hub id when one is given (`zoo publish --dataset-repo-id`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from cards.card import HERE, METADATA_KEY, package_template, versions
from cards.card import for_repo as _named_for_repo

METRIC_NAMES = {  # how the card names a metric (any other is named by its key)
    "exact_match": "exact match",
    "normalized_match": "normalized SQL match (TinySQL scorer)",
    "execution_match": "execution match (TinySQL scorer)",
    "digit_accuracy": "per-digit accuracy",
    "label_accuracy": "label accuracy (argmax of the label log-likelihoods)",
    "gold_probability": "mean probability of the gold label",
}
OWN_SCORES = ("digit_accuracy", "label_accuracy", "normalized_match")  # a task's score beside exact match
PACKAGES = ["interp-zoo", "torch", "transformers", "accelerate", "tokenizers"]


@dataclass
class ModelDescription:
    """What a model card states, as data."""

    name: str
    dataset: str  # the corpus as named on the Hub or by its folder's name
    dataset_config: str | None
    task: str  # the corpus's task in words
    split: str
    objective: str  # the objective's name
    objective_text: str  # what it does, in words
    metrics: dict
    parameters: dict[str, int]
    architecture: str
    command: str
    hardware: str
    seconds: float
    steps: int
    generator: str | None = None  # None: generic prompt/completion text
    base_model: str | None = None
    preset: str | None = None
    levels: list = field(default_factory=list)
    training: dict = field(default_factory=dict)
    corpus_command: str | None = None  # the generator command that makes the corpus, if it is known
    example: dict | None = None  # {"prompt", "completion"}: one test prompt and its trained completion
    evaluation_note: str | None = None  # replaces the results: a run not evaluated, or whose evaluation failed
    curve: list[dict] = field(default_factory=list)  # the validation evaluations during training (curve.json)


def worked_example(view, record: dict, keeps_cot: bool = True) -> dict:
    """The card's prompt format, from one record through the corpus's training view
    (`cards.generator.TrainingView`): the prompt exactly as the model reads it, and what it should
    complete (the chain of thought only if the model was trained to write it)."""
    prompt, cot, answer = view.pieces(record)
    return {"prompt": prompt, "completion": (cot if keeps_cot else "") + answer}


def model_card(d: ModelDescription) -> str:
    """The full README.md text: YAML header with the model-index results, then the card body."""
    scores = {k: v for k, v in d.metrics.items() if isinstance(v, float)}
    data = ModelCardData(
        model_name=d.name,
        base_model=d.base_model,
        datasets=[d.dataset],
        library_name="transformers",
        pipeline_tag="text-generation",
        license="apache-2.0",
        tags=["interpretability", "synthetic", d.generator or "text", d.objective],
        eval_results=[
            EvalResult(task_type="text-generation", task_name=d.task, dataset_type=d.dataset,
                       dataset_name=d.dataset, dataset_config=d.dataset_config, dataset_split=d.split,
                       metric_type=key, metric_name=METRIC_NAMES.get(key, key), metric_value=round(value, 4))
            for key, value in scores.items()
        ] or None,
        **{METADATA_KEY: {"generator": d.generator, "objective": d.objective, "preset": d.preset,
                          "command": d.command, "corpus_command": d.corpus_command, "parameters": d.parameters,
                          "steps": d.steps, "seconds": round(d.seconds, 1), "hardware": d.hardware,
                          "levels": d.levels, "training": d.training}},
    )
    card = ModelCard.from_template(
        data, template_str=package_template("cards", "templates/model_card.md"), facts=d,
        scores=[(METRIC_NAMES.get(k, k), v) for k, v in scores.items()],
        by_position=d.metrics.get("digit_accuracy_by_position") or [], duration=duration(d.seconds),
        versions=", ".join(versions(PACKAGES)), here=HERE,
        prompt_literal=repr(d.example["prompt"]) if d.example else None, curve=curve_rows(d.curve))
    return card.content.rstrip("\n") + "\n"


def curve_rows(curve: list[dict]) -> list[dict]:
    """The card's learning-curve table: per evaluation, the step, exact match, the task's own score (digit
    accuracy, label accuracy or normalized match) and the accuracy of each answer digit, formatted."""
    rows = []
    for e in curve:
        other = next((k for k in OWN_SCORES if isinstance(e.get(k), float)), None)
        rows.append({"step": f"{e['step']:,}", "n": e.get("n"), "exact": f"{e['exact_match']:.3f}",
                     "other": f"{METRIC_NAMES[other]} {e[other]:.3f}" if other else "",
                     "digits": " ".join(f"{x:.2f}" for x in e.get("digit_accuracy_by_position") or [])})
    return rows


def for_repo(text: str, repo_id: str, dataset_repo_id: str | None = None) -> str:
    """A model card as published at `repo_id`: its quickstart names the repository, and the corpus
    (YAML `datasets`, the results' dataset, the first paragraph) is `dataset_repo_id` when given."""
    text = _named_for_repo(text, repo_id)
    if not dataset_repo_id:
        return text
    published = ModelCard(text)
    old = (published.data.datasets or [None])[0]
    published.data.datasets = [dataset_repo_id]
    for result in published.data.eval_results or []:
        result.dataset_type = result.dataset_name = dataset_repo_id
    if old:
        published.text = published.text.replace(f"corpus `{old}`", f"corpus `{dataset_repo_id}`", 1)
    return published.content


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"
