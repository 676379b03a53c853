"""The model card: the README.md of every checkpoint folder written by `zoo-train`.

Built with huggingface_hub's card classes, like the dataset cards (`cards.card`), and filled from
the run itself: the parameter counts from the model, the results from `metrics.json`, the command,
hardware and wall time from the trainer. The YAML holds the model-index results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from cards.card import _table, _versions

METRIC_NAMES = {
    "exact_match": "exact match",
    "normalized_match": "normalized SQL match (TinySQL scorer)",
    "execution_match": "execution match (TinySQL scorer)",
    "digit_accuracy": "per-digit accuracy",
    "label_accuracy": "label accuracy (argmax of the label log-likelihoods)",
    "gold_probability": "mean probability of the gold label",
}
TASKS = {"tinysql": "text-to-SQL", "multmath": "multi-digit multiplication", "mcq": "multiple-choice question answering",
         "text": "prompt completion"}
OBJECTIVES = {
    "sft": "supervised fine-tuning, loss on the completion only (prompt tokens masked)",
    "icot": "stepwise internalization of the chain of thought (implicit CoT): CoT tokens removed from the "
            "start of the CoT as training goes on, with removal smoothing and an optimizer reset at each removal",
    "nocot": "answer-only training (no chain of thought), the standard fine-tuning baseline",
    "aux": "answer-only training plus the running-sum auxiliary loss (linear regression heads on attention-head "
           "outputs predicting the running sums)",
}


@dataclass
class ModelDescription:
    """What the trainer knows about a checkpoint."""

    name: str
    dataset: str
    dataset_config: str | None
    kind: str
    split: str
    objective: str
    metrics: dict
    parameters: dict[str, int]
    architecture: str
    command: str
    hardware: str
    seconds: float
    steps: int
    base_model: str | None = None
    preset: str | None = None
    levels: list = field(default_factory=list)
    training: dict = field(default_factory=dict)
    corpus_command: str | None = None  # the generator command that makes the corpus, if it is known


def model_card(d: ModelDescription) -> str:
    """The full README.md text: YAML header with the model-index results, then the card body."""
    data = ModelCardData(
        model_name=d.name,
        base_model=d.base_model,
        datasets=[d.dataset],
        library_name="transformers",
        pipeline_tag="text-generation",
        license="apache-2.0",
        tags=["interpretability", "synthetic", d.kind, d.objective],
        eval_results=[
            EvalResult(task_type="text-generation", task_name=TASKS[d.kind], dataset_type=d.dataset,
                       dataset_name=d.dataset, dataset_config=d.dataset_config, dataset_split=d.split,
                       metric_type=key, metric_name=METRIC_NAMES.get(key, key), metric_value=round(value, 4))
            for key, value in d.metrics.items() if isinstance(value, float)
        ] or None,
    )
    body = "\n".join([
        f"# {d.name}",
        "",
        f"A {d.architecture} causal language model "
        + (f"fine-tuned from `{d.base_model}`" if d.base_model else f"trained from scratch (preset `{d.preset}`)")
        + f" on the {TASKS[d.kind]} corpus `{d.dataset}`"
        + (f" (config `{d.dataset_config}`)" if d.dataset_config else "")
        + (f", level {', '.join(map(str, d.levels))}" if d.levels else "")
        + f". Objective: {OBJECTIVES[d.objective]}.",
        "",
        "## Intended use",
        "",
        "A small, fully reproducible model for mechanistic-interpretability research on a synthetic task whose "
        "labels are verified. It has only seen this corpus: it is not a general assistant, and its outputs "
        "outside the corpus's format mean nothing.",
        "",
        "## Quickstart",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
        "```",
        "",
        "## Parameters",
        "",
        _table(["total", "embedding", "non-embedding"],
               [[f"{d.parameters['total']:,}", f"{d.parameters['embedding']:,}",
                 f"{d.parameters['non_embedding']:,}"]]),
        "",
        "## Evaluation",
        "",
        f"Greedy decoding on the `{d.split}` split ({d.metrics.get('n', 0):,} examples):",
        "",
        _table(["metric", "value"], [[METRIC_NAMES.get(k, k), f"{v:.4f}"] for k, v in d.metrics.items()
                                     if isinstance(v, float)]),
        "",
        *(_by_position(d.metrics)),
        "## Training",
        "",
        _table(["setting", "value"], [[k, v] for k, v in d.training.items()]),
        "",
        f"{d.steps:,} optimizer steps in {_duration(d.seconds)} on {d.hardware}.",
        "",
        "## Reproduce",
        "",
        "```bash",
        *([d.corpus_command] if d.corpus_command else []),
        d.command,
        "```",
        "",
        "Versions: " + ", ".join(_versions(["interp-zoo", "torch", "transformers", "accelerate", "tokenizers"])) + ".",
        "",
    ])
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}").content


def _by_position(metrics: dict) -> list[str]:
    values = metrics.get("digit_accuracy_by_position")
    if not values:
        return []
    return ["Accuracy per answer digit (c_0 is the least significant):", "",
            _table([f"c_{k}" for k in range(len(values))], [[f"{v:.3f}" for v in values]]), ""]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"
