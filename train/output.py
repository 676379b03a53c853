"""The Hub-ready folder a run ends with: weights, config, generation config, tokenizer,
`metrics.json`, `training_args.json`, `curve.png` and the `README.md` model card.

Weights go through `save_pretrained` (safetensors, sharded above 2 GB), so
`AutoModelForCausalLM.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)` load
them. The aux regression heads, when there are any, are saved beside them as
`aux_heads.safetensors` (not part of the model).
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import GenerationConfig

from cards.model_card import ModelDescription, model_card

SHARD = "2GB"


def save_model(out: Path, model, tokenizer, lm_state: dict, aux_state: dict, aux_meta: dict | None = None,
               max_new_tokens: int | None = None) -> None:
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, do_sample=False, max_new_tokens=max_new_tokens)
    model.save_pretrained(out, state_dict=lm_state, max_shard_size=SHARD)
    tokenizer.save_pretrained(out)
    if aux_state:
        from safetensors.torch import save_file

        tensors = {k: v.detach().float().cpu().contiguous() for k, v in aux_state.items()}
        save_file(tensors, str(out / "aux_heads.safetensors"),
                  metadata={k: json.dumps(v) for k, v in (aux_meta or {}).items()})


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def plot(out: Path, log: list[dict]) -> None:
    """curve.png: training loss per step and, if the run evaluated on the way, exact match per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [e for e in log if "loss" in e]
    evals = [e for e in log if "eval" in e and "exact_match" in e["eval"]]
    fig, axes = plt.subplots(1, 2 if evals else 1, figsize=(10 if evals else 5, 3.5), squeeze=False)
    axes[0][0].plot([e["step"] for e in train], [e["loss"] for e in train])
    axes[0][0].set(xlabel="optimizer step", ylabel="training loss", yscale="log", title="loss")
    if evals:
        axes[0][1].plot([e["step"] for e in evals], [e["eval"]["exact_match"] for e in evals], marker="o")
        axes[0][1].set(xlabel="optimizer step", ylabel="exact match (validation)", ylim=(0, 1), title="accuracy")
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=100)
    plt.close(fig)


def write_card(out: Path, description: ModelDescription) -> None:
    (out / "README.md").write_text(model_card(description), encoding="utf-8")
