"""The Hub-ready folder a run ends with: weights, config, generation config, tokenizer,
`metrics.json`, `curve.png`, `curve.json` and the `README.md` model card (the manifest,
`training_args.json`, is `train.manifest`'s).

Weights go through `save_pretrained` (safetensors, sharded above 2 GB), so
`AutoModelForCausalLM.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)` load
them, under transformers 4.x as well as 5 (the rotary settings are repeated under 4.x's keys, and
the tokenizer class is written as one both know: `train.tokenizer.save_tokenizer`). An objective's
own files (the aux regression heads) are the objective's to save (`train.objectives`). `curve.json`
keeps the run's periodic validation evaluations (the log is not released, the curve is), and the
model card is filled from the manifest and that curve (`write_card`); a run that was not evaluated,
or whose evaluation failed, has its card's evaluation section replaced by a sentence saying so. `quiet()` silences the
progress bars of transformers and datasets (`--no-progress`).
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import GenerationConfig

from cards.model_card import ModelDescription, model_card
from train.manifest import RunManifest
from train.tokenizer import save_tokenizer

SHARD = "2GB"


def save_model(out: Path, model, tokenizer, lm_state: dict, max_new_tokens: int | None = None) -> None:
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, do_sample=False, max_new_tokens=max_new_tokens)
    model.save_pretrained(out, state_dict=lm_state, max_shard_size=SHARD)
    add_transformers4_rope(out / "config.json")
    save_tokenizer(tokenizer, out)


def add_transformers4_rope(file: Path) -> None:
    """Repeat a config.json's rotary settings under the keys transformers 4.x reads (`rope_theta`, and
    `rope_scaling` unless default): transformers 5 writes only `rope_parameters`, which 4.x ignores, running
    the model with its default base and no scaling (not the 0.5b and 1b presets')."""
    config = json.loads(file.read_text(encoding="utf-8"))
    rope = dict(config.get("rope_parameters") or {})
    if "rope_theta" not in rope or "rope_theta" in config:  # no rotary, one per layer type, or already there
        return
    config["rope_theta"] = rope.pop("rope_theta")
    if rope.get("rope_type", "default") != "default":
        config["rope_scaling"] = rope
    file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


CURVE = "curve.json"  # the validation evaluations made during training, one object per evaluation


def validation_curve(log: list[dict]) -> list[dict]:
    """The periodic validation evaluations of a run's log (step and metrics), failed ones left out."""
    return [{"step": e["step"], **e["eval"]} for e in log if "eval" in e and "exact_match" in e["eval"]]


def write_curve(out: Path, log: list[dict]) -> None:
    """curve.json (`validation_curve`) and curve.png (training loss per step and, if the run evaluated on
    the way, exact match per step)."""
    evals = validation_curve(log)
    write_json(out / CURVE, evals)
    plot(out / "curve.png", [e for e in log if "loss" in e], evals)


def read_curve(folder: Path) -> list[dict]:
    """The validation evaluations a run folder or release keeps in curve.json ([] if it has none)."""
    file = folder / CURVE
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else []


def plot(file: Path, train: list[dict], evals: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if evals else 1, figsize=(10 if evals else 5, 3.5), squeeze=False)
    axes[0][0].plot([e["step"] for e in train], [e["loss"] for e in train])
    axes[0][0].set(xlabel="optimizer step", ylabel="training loss", yscale="log", title="loss")
    if evals:
        axes[0][1].plot([e["step"] for e in evals], [e["exact_match"] for e in evals], marker="o")
        axes[0][1].set(xlabel="optimizer step", ylabel="exact match (validation)", ylim=(0, 1), title="accuracy")
    fig.tight_layout()
    fig.savefig(file, dpi=100)
    plt.close(fig)


def quiet() -> None:
    """No progress bars from transformers (loading and writing weights) or datasets."""
    import datasets
    from transformers.utils import logging

    logging.disable_progress_bar()
    datasets.disable_progress_bars()


def write_card(out: Path, m: RunManifest, metrics: dict, task: str, levels: list, note: str | None = None,
               example: dict | None = None) -> None:
    """README.md: the model card of the run described by `m`, with its final `metrics`; `note` stands in
    for the results (a run not evaluated, or whose evaluation failed); `example` is the prompt format."""
    name, c = out.resolve().name, m.config
    (out / "README.md").write_text(model_card(ModelDescription(
        name=name, dataset=m.corpus, dataset_config=m.corpus_config, task=task, split=m.eval_split or "none",
        objective=c.objective.name, objective_text=c.objective.text, metrics=metrics, parameters=m.parameters,
        architecture=m.architecture, command=m.command, hardware=m.hardware,
        seconds=m.seconds, steps=m.steps, generator=m.generator, base_model=c.base, preset=c.preset, levels=levels,
        training=c.card_table(), corpus_command=m.corpus_command, example=example, curve=read_curve(out),
        evaluation_note=note.strip() if note else None)), encoding="utf-8")
