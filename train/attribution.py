"""Attribution methods scored against ground-truth spans: `zoo-eval --attribution METHOD[,METHOD...]`.

A corpus's `attribution` column (`cards.attribution`) names, for each target of a record, the span of
the answer it explains and the prompt spans that determine it. Each target becomes a teacher-forced
`Case`: the model input is the prompt, the chain of thought when the model was trained with it
(`cot_removed`: what the run's manifest says its objective kept at the end of training), and the
answer up to the target's first answer token, whose log-probability the methods explain. Pieces are
tokenised as `train.data` tokenises them for training (the prompt with the tokenizer's special tokens,
the answer prefix apart from the answer proper), each with the tokenizer's offset mapping, so position
i of a relevance vector is position i of the model input; a prompt token is a source token when its
characters overlap a source span.

Methods (`METHODS`) return one relevance value per input position:
- `grad-input`: gradient x input on the input embeddings, summed over the hidden dimension;
- `gradient`: the L2 norm of that gradient (saliency);
- `rollout`: attention rollout (Abnar & Zuidema 2020): per layer the head-averaged attention plus the
  identity, rows renormalised, multiplied from the first layer up; the row of the last position
  (needs eager attention, `prepare`);
- `random`: uniform noise, seeded per (record, target): the baseline.
ALTI and LRP are not here: no maintained library for them is installed with the project.

Only prompt positions are candidates. Per target, with r = |relevance| on the prompt: `source_mass`
is r's share on source tokens, `top_k_precision` the share of source tokens among the k prompt tokens
of largest r (k = the number of source tokens); `chance` (source tokens / prompt tokens) is what a
method that knows nothing scores on both, in expectation. `score` averages them over the targets;
`report` is the whole evaluation (`zoo-eval --attribution`), `table` its markdown.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from cards import attribution
from cards.errors import IntegrityError, UsageError
from train.data import ChatView, OriginalLayout, answer_ids
from train.tokenizer import token_ids

FIELD = "attribution"
SEED = 0  # of the random baseline
METRICS = ("source_mass", "top_k_precision")


@dataclass
class Case:
    """One target, teacher-forced: `ids` (the model input) predict `target`; `sources` marks the source tokens
    among the first `prompt_len` positions."""

    ids: list[int]
    prompt_len: int
    sources: list[bool]
    target: int
    label: str
    key: str  # names the case (record and target) for the random baseline's seed


# ---------------------------------------------------------------- spans to token positions

def with_offsets(tokenizer, text: str, special: bool) -> tuple[list[int], list[tuple[int, int]]]:
    """(ids, character offsets) of `text`; IntegrityError if the ids differ from the trainer's
    (`train.tokenizer.token_ids`)."""
    enc = tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    if ids != token_ids(tokenizer)([text], special)[0]:
        raise IntegrityError(f"attribution: the tokenizer's offsets do not follow its training ids for {text!r}")
    return ids, offsets


def answer_offsets(tokenizer, view, answer: str) -> tuple[list[int], list[tuple[int, int]]]:
    """(ids, offsets) of an answer tokenised as `train.data.answer_ids` does (without its EOS): the view's
    `answer_prefix`, the answer proper and the whitespace after it, each apart."""
    if view.answer_prefix and not answer.startswith(view.answer_prefix):
        raise IntegrityError(f"attribution: the answer {answer!r} does not start with {view.answer_prefix!r}")
    if view.answer_prefix:
        start, proper = len(view.answer_prefix), answer[len(view.answer_prefix):].rstrip()
        parts = [(0, view.answer_prefix), (start, proper), (start + len(proper), answer[start + len(proper):])]
    else:
        parts = [(0, answer)]
    ids, offsets = [], []
    for at, text in parts:
        if text:
            more, spans = with_offsets(tokenizer, text, False)
            ids += more
            offsets += [(s + at, e + at) for s, e in spans]
    expected = answer_ids(token_ids(tokenizer), view, [answer], tokenizer.eos_token_id)[0][0][:-1]
    if ids != expected:
        raise IntegrityError(f"attribution: answer pieces tokenise unlike training for {answer!r}")
    return ids, offsets


def overlapping(offsets: list[tuple[int, int]], spans: list[dict]) -> list[int]:
    """Positions whose characters overlap any of `spans` ({start, end}); special tokens (empty) never do."""
    return sorted({i for span in spans for i in attribution.covering(offsets, span)})


# ---------------------------------------------------------------- cases

def cot_removed(model_folder: str) -> int | None:
    """CoT tokens the model was trained without at the end of its run: None = all of them (nocot, aux,
    remove-norm), 0 = none (sft, or a model without a manifest), icot's schedule at its last step."""
    from train import icot
    from train.objectives import OBJECTIVES

    file = Path(model_folder) / "training_args.json"
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
        objective = manifest["config"]["objective"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    if objective == "icot":
        return icot.scheduled(max(manifest["steps"] - 1, 0), manifest["steps_per_epoch"],
                              manifest["config"].get("icot_per_epoch", 8))
    known = OBJECTIVES.get(objective)
    return 0 if known is None or known.keeps_cot else None


def record_cases(record: dict, number: int, view, tokenizer, removed: int | None,
                 context: int | None) -> tuple[list[Case], int]:
    """The cases of a record's targets and how many targets were skipped (a span that covers no token, an
    input that does not fit the model's `context`)."""
    prompt, cot, answer = view.pieces(record)
    p_ids, p_offsets = with_offsets(tokenizer, prompt, view.prompt_special_tokens)
    c_ids = [] if removed is None or not cot else token_ids(tokenizer)([cot])[0][removed:]
    a_ids, a_offsets = answer_offsets(tokenizer, view, answer)
    cases, skipped = [], 0
    for n, t in enumerate(record[FIELD]):
        sources, at = set(overlapping(p_offsets, t["sources"])), overlapping(a_offsets, [t["answer"]])
        ids = p_ids + c_ids + a_ids[:at[0]] if at else []
        if not sources or not at or (context is not None and len(ids) >= context):
            skipped += 1
            continue
        cases.append(Case(ids, len(p_ids), [i in sources for i in range(len(p_ids))], a_ids[at[0]], t["label"],
                          f"{record.get('id', number)}/{n}"))
    return cases, skipped


# ---------------------------------------------------------------- methods

def _embedding_gradient(model, case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """(input embeddings, d log p(target) / d embeddings), each [positions, hidden]."""
    device = next(model.parameters()).device
    ids = torch.tensor([case.ids], device=device)
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds).logits[0, -1].float()
    logits.log_softmax(-1)[case.target].backward()
    return embeds[0].detach(), embeds.grad[0]


def grad_input(model, case: Case) -> torch.Tensor:
    embeds, grad = _embedding_gradient(model, case)
    return (embeds * grad).sum(-1).float().cpu()


def gradient(model, case: Case) -> torch.Tensor:
    return _embedding_gradient(model, case)[1].float().norm(dim=-1).cpu()


@torch.no_grad()
def rollout(model, case: Case) -> torch.Tensor:
    device = next(model.parameters()).device
    attentions = model(torch.tensor([case.ids], device=device), output_attentions=True).attentions
    if not attentions or attentions[0] is None:
        raise IntegrityError("attribution: the model returned no attention weights (rollout needs eager attention)")
    flow = None
    for layer in attentions:
        mixed = 0.5 * layer[0].float().mean(0) + 0.5 * torch.eye(len(case.ids), device=device)
        mixed = mixed / mixed.sum(-1, keepdim=True)
        flow = mixed if flow is None else mixed @ flow
    return flow[-1].cpu()


def random_relevance(model, case: Case) -> torch.Tensor:
    rng = random.Random(f"{SEED}/{case.key}")  # a str seed hashes the same in every process
    return torch.tensor([rng.random() for _ in case.ids])


METHODS = {"grad-input": grad_input, "gradient": gradient, "rollout": rollout, "random": random_relevance}


def methods(text: str) -> list[str]:
    """The methods of a comma-separated list; UsageError naming the known ones for any other."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise UsageError(f"--attribution {text}: unknown method {', '.join(unknown) or '(none)'}; "
                         f"known: {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def prepare(model, chosen: list[str]):
    """The model in eval mode without parameter gradients, with eager attention when rollout needs the
    attention weights."""
    if "rollout" in chosen and getattr(model.config, "_attn_implementation", "eager") != "eager":
        model.set_attn_implementation("eager")
    model.requires_grad_(False)
    return model.eval()


# ---------------------------------------------------------------- scores

def case_scores(relevance: torch.Tensor, case: Case) -> dict:
    """Source mass and top-k precision of one case's relevance (only its prompt positions count)."""
    r = relevance[:case.prompt_len].abs().double()
    sources = torch.tensor(case.sources)
    k = int(sources.sum())
    total = float(r.sum())
    mass = float(r[sources].sum()) / total if total > 0 else k / len(r)
    top = torch.argsort(-r, stable=True)[:k]
    return {"source_mass": mass, "top_k_precision": float(sources[top].double().mean())}


def chance(case: Case) -> float:
    return sum(case.sources) / case.prompt_len


def score(model, cases: list[Case], chosen: list[str]) -> dict:
    """Per method, each metric averaged over the cases; `chance` averaged the same way."""
    out = {}
    for name in chosen:
        rows = [case_scores(METHODS[name](model, case), case) for case in cases]
        out[name] = {m: _mean(row[m] for row in rows) for m in METRICS}
    out["chance"] = {m: _mean(chance(c) for c in cases) for m in METRICS}
    return out


@torch.no_grad()
def target_accuracy(model, cases: list[Case]) -> float:
    """Share of cases whose target is the model's most likely next token (what the methods explain)."""
    device = next(model.parameters()).device
    hits = [int(model(torch.tensor([c.ids], device=device)).logits[0, -1].argmax()) == c.target for c in cases]
    return _mean(hits)


def check_corpus(split, view) -> None:
    """UsageError unless the split has ground-truth spans that index the pieces `view` writes (the generator's
    own view: a chat template or ICoT's original layout writes other text)."""
    if FIELD not in split.column_names:
        raise UsageError("--attribution: the corpus has no attribution column (ground-truth spans); regenerate "
                         "it with a generator version that writes them")
    if isinstance(view, (ChatView, OriginalLayout)):
        raise UsageError("--attribution: the spans index the generator's own layout; this corpus is read as "
                         f"{'chats' if isinstance(view, ChatView) else 'the original ICoT layout'}")


def report(model, tokenizer, records: list[dict], view, chosen: list[str], model_folder: str) -> dict:
    """The attribution report of `model` on `records`: counts, target accuracy and per-method scores."""
    from train.evaluate import context_length

    removed = cot_removed(model_folder)
    cases, skipped = [], 0
    for n, record in enumerate(records):
        more, missed = record_cases(record, n, view, tokenizer, removed, context_length(model))
        cases += more
        skipped += missed
    if not cases:
        raise UsageError(f"--attribution: none of the {skipped} targets of {len(records)} records could be scored")
    model = prepare(model, chosen)
    return {"records": len(records), "targets": len(cases), "skipped_targets": skipped,
            "chain_of_thought": _cot_words(view, removed),
            "target_accuracy": target_accuracy(model, cases), "methods": score(model, cases, chosen)}


def _cot_words(view, removed: int | None) -> str:
    if not view.chain_of_thought:
        return "none in the corpus"
    if removed is None:
        return "left out (the model trained without it)"
    return "kept" if removed == 0 else f"kept without its first {removed} tokens (icot)"


def table(result: dict, title: str) -> str:
    """A markdown table of a `report`, method x metric, under a title line naming the task and model."""
    lines = [title, "", "| method | source mass | top-k precision |", "|---|---|---|"]
    for name, values in result["methods"].items():
        lines.append(f"| {name} | {values['source_mass']:.3f} | {values['top_k_precision']:.3f} |")
    return "\n".join(lines)


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else 0.0
