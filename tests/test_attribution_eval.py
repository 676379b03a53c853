"""`zoo-eval --attribution` (train/attribution.py): character spans map to the model-input positions of
their tokens (hand-worked, with and without a BOS, word-level and BPE), every method gives one value per
input position, each method finds the truth where it is known by construction (a model whose output
reads one position; attention whose flow is known), the random baseline scores chance, and the CLI
prints a table or a one-line error."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer, processors
from transformers import PreTrainedTokenizerFast

from cards.attribution import find
from cards.errors import IntegrityError, UsageError
from cards.generator import TrainingView, get
from train import attribution as attr
from train.cli import eval_main
from train.tokenizer import EOS, PAD, UNK, train_tokenizer

from conftest import TINY_TEXTS, one_line_error, saved_tiny_model

MM = get("multmath").view  # prompt "A * B ||", CoT " COT", answer " #### C" (the prefix tokenised apart)
SHAPE = dict(hidden=32, heads=2, mlp=64)


def target(label, answer, *sources):
    return {"label": label, "answer": {"start": answer[0], "end": answer[1]},
            "sources": [{"start": s, "end": e} for s, e in sources]}


def mm_record(**extra):
    # prompt "1 2 * 3 4 ||": 1 (0,1) 2 (2,3) * (4,5) 3 (6,7) 4 (8,9) || (10,12); answer " #### 7 8": #### (1,5) 7 (6,7)
    return {"id": "r0", "prompt": "1 2 * 3 4", "cot": "5 6", "answer": "7 8", "running_sums": None,
            "attribution": [target("c_0", (6, 7), (2, 3), (8, 9)), target("c_1", (8, 9), (0, 1))], **extra}


@pytest.fixture(scope="module")
def digits():
    return train_tokenizer(TINY_TEXTS, digits=True, vocab_size=300)


@pytest.fixture(scope="module")
def bpe():
    return train_tokenizer(TINY_TEXTS, digits=False, vocab_size=300)


def test_spans_map_to_the_positions_of_the_model_input(digits):
    ids = lambda text: digits(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    cases, skipped = attr.record_cases(mm_record(), 0, MM, digits, removed=0, context=None)
    assert skipped == 0 and [c.label for c in cases] == ["c_0", "c_1"]
    c0, c1 = cases
    assert c0.prompt_len == 6 and c0.sources == [False, True, False, False, True, False]
    assert c1.sources == [True] + [False] * 5
    assert c0.ids == ids("1 2 * 3 4 || 5 6 ####") and c0.target == ids("7")[0]
    assert c1.ids == ids("1 2 * 3 4 || 5 6 #### 7") and c1.target == ids("8")[0]
    no_cot, _ = attr.record_cases(mm_record(), 0, MM, digits, removed=None, context=None)
    assert no_cot[0].ids == ids("1 2 * 3 4 || ####")
    partly, _ = attr.record_cases(mm_record(), 0, MM, digits, removed=1, context=None)
    assert partly[0].ids == ids("1 2 * 3 4 || 6 ####")
    fits, skipped = attr.record_cases(mm_record(), 0, MM, digits, removed=0, context=10)
    assert [c.label for c in fits] == ["c_0"] and skipped == 1  # c_1's input is 10 tokens: no room to predict


def test_a_bos_shifts_every_source_by_one(digits):
    backend = Tokenizer.from_str(digits.backend_tokenizer.to_str())
    backend.post_processor = processors.TemplateProcessing(single=f"{EOS} $A", special_tokens=[(EOS, 0)])
    with_bos = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=EOS, eos_token=EOS, pad_token=PAD,
                                       unk_token=UNK)
    (c0, _), _ = attr.record_cases(mm_record(), 0, MM, with_bos, removed=0, context=None)
    assert c0.ids[0] == with_bos.bos_token_id and c0.prompt_len == 7
    assert c0.sources == [False, False, True, False, False, True, False]


def test_bpe_sources_are_exactly_the_tokens_of_the_named_word(bpe):
    prompt = "SELECT name FROM users WHERE id ="
    record = {"prompt": prompt, "completion": " 3", "attribution": [target("t", (1, 2), find(prompt, "users"))]}
    (case,), _ = attr.record_cases(record, 0, TrainingView(), bpe, removed=0, context=None)
    picked = [bpe.decode([t]) for t, s in zip(case.ids, case.sources) if s]
    assert "".join(picked).strip() == "users" and case.ids == bpe(prompt)["input_ids"]
    with pytest.raises(IntegrityError, match='does not start with'):
        attr.answer_offsets(bpe, MM, "no prefix here")


def test_a_span_that_covers_no_token_skips_its_target(digits):
    record = mm_record(attribution=[target("c_0", (6, 7), (9, 10))])  # the space between 4 and ||
    assert attr.record_cases(record, 0, MM, digits, removed=0, context=None) == ([], 1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(gpt2 model, llama model, tokenizer) from config, untrained."""
    root = tmp_path_factory.mktemp("attr-models")
    gpt2, tokenizer = saved_tiny_model(root / "gpt2", "gpt2", SHAPE, seed=0, noise=0.1)
    llama, _ = saved_tiny_model(root / "llama", "llama", SHAPE, seed=0, noise=0.1)
    return {"gpt2": gpt2, "llama": llama, "folder": root / "gpt2"}, tokenizer


def case_of(tokenizer, prompt, sources):
    ids = tokenizer(prompt)["input_ids"]
    return attr.Case(ids, len(ids), [i in sources for i in range(len(ids))], ids[0], "t", "k")


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_every_method_gives_one_value_per_input_position(tiny, arch):
    models, tokenizer = tiny
    model = attr.prepare(models[arch], list(attr.METHODS))
    case = case_of(tokenizer, "SELECT name FROM users", {1})
    case.ids = case.ids + tokenizer(" WHERE")["input_ids"]  # answer tokens after the prompt are input too
    for name, method in attr.METHODS.items():
        relevance = method(model, case)
        assert relevance.shape == (len(case.ids),) and torch.isfinite(relevance).all(), name
        scores = attr.case_scores(relevance, case)
        assert 0 <= scores["source_mass"] <= 1 and scores["top_k_precision"] in (0.0, 1.0), name


def zero_attention_output(model):
    """The model with every attention layer's output projection zeroed: position i reads only itself."""
    for name, p in model.named_parameters():
        if name.endswith(("attn.c_proj.weight", "attn.c_proj.bias", "self_attn.o_proj.weight")):
            p.data.zero_()
    return model


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_gradients_find_the_only_position_the_output_reads(tiny, arch, tmp_path):
    _, tokenizer = tiny
    model, _ = saved_tiny_model(tmp_path, arch, SHAPE, seed=1, noise=0.1)
    prompt = "SELECT name FROM users WHERE id ="
    last = len(tokenizer(prompt)["input_ids"]) - 1
    case = case_of(tokenizer, prompt, {last})
    model = attr.prepare(model, ["grad-input"])
    before = attr.case_scores(attr.grad_input(model, case), case)["source_mass"]
    assert before < 0.99  # with attention, the other positions count
    model = zero_attention_output(model)
    for method in (attr.grad_input, attr.gradient):
        relevance = method(model, case)
        assert relevance[:last].abs().max() == 0 and relevance[last] != 0
        assert attr.case_scores(relevance, case) == {"source_mass": 1.0, "top_k_precision": 1.0}


def test_rollout_of_uniform_attention_is_the_hand_worked_flow(tmp_path):
    model, _ = saved_tiny_model(tmp_path, "gpt2", {**SHAPE, "layers": 1}, seed=1, noise=0.1)
    hidden = model.config.n_embd
    with torch.no_grad():  # queries and keys zero: every score equal, attention uniform over the causal past
        model.transformer.h[0].attn.c_attn.weight[:, :2 * hidden] = 0
        model.transformer.h[0].attn.c_attn.bias[:2 * hidden] = 0
    model = attr.prepare(model, ["rollout"])
    case = attr.Case([5, 6, 7, 8, 9], 5, [True] + [False] * 4, 5, "t", "k")
    # 0.5 * uniform(1/5) + 0.5 * identity, on the last row
    assert torch.allclose(attr.rollout(model, case), torch.tensor([0.1, 0.1, 0.1, 0.1, 0.6]), atol=1e-5)


class FixedAttention(torch.nn.Module):
    """A stand-in model whose every layer's every position attends to position `to` (those before it, to
    themselves)."""

    def __init__(self, n: int, to: int, layers: int = 2):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        a = torch.eye(n)
        a[to:] = 0
        a[to:, to] = 1
        self.attentions = tuple(a.expand(1, 3, n, n) for _ in range(layers))

    def forward(self, ids, output_attentions=True):
        return type("Out", (), {"attentions": self.attentions})


def test_rollout_follows_attention_to_its_source():
    case = attr.Case([1] * 6, 4, [False, True, False, False], 1, "t", "k")
    relevance = attr.rollout(FixedAttention(6, to=1), case)
    # two layers: 0.75 on position 1, 0.25 left on the last position (outside the prompt)
    assert torch.allclose(relevance, torch.tensor([0, 0.75, 0, 0, 0, 0.25]))
    assert attr.case_scores(relevance, case) == {"source_mass": 1.0, "top_k_precision": 1.0}


def test_random_baseline_scores_chance_and_repeats_itself():
    cases = [attr.Case([0] * n, n, [i < s for i in range(n)], 0, "t", f"r{n}-{s}-{j}")
             for n in (4, 9, 20) for s in (1, 2, 3) for j in range(60)]
    scores = attr.score(None, cases, ["random"])
    assert abs(scores["random"]["source_mass"] - scores["chance"]["source_mass"]) < 0.02
    assert abs(scores["random"]["top_k_precision"] - scores["chance"]["top_k_precision"]) < 0.04
    assert torch.equal(attr.random_relevance(None, cases[0]), attr.random_relevance(None, cases[0]))
    assert not torch.equal(attr.random_relevance(None, cases[0]), attr.random_relevance(None, cases[1]))


def test_cot_follows_what_the_run_trained_on(tmp_path):
    def manifest(objective, **more):
        folder = tmp_path / objective
        folder.mkdir()
        (folder / "training_args.json").write_text(json.dumps({"config": {"objective": objective, **more},
                                                               "steps": 12512, "steps_per_epoch": 782}))
        return str(folder)

    assert attr.cot_removed(str(tmp_path)) == 0  # no manifest: a model trained elsewhere, as sft
    assert attr.cot_removed(manifest("sft")) == 0
    assert attr.cot_removed(manifest("nocot")) is None and attr.cot_removed(manifest("remove-norm")) is None
    assert attr.cot_removed(manifest("icot", icot_per_epoch=8)) == 8 * 12511 // 782


def test_methods_list_is_checked():
    assert attr.methods("rollout, grad-input,rollout") == ["rollout", "grad-input"]
    with pytest.raises(UsageError, match="known: grad-input, gradient, rollout, random"):
        attr.methods("grad-input,lrp")


# ---------------------------------------------------------------- the command line

PROMPTS = ["SELECT name FROM users WHERE id =", "CREATE TABLE t (a INTEGER", "SELECT id FROM users WHERE name ="]


def write_corpus(folder, spans: bool):
    folder.mkdir()
    rows = []
    for n, prompt in enumerate(PROMPTS * 4):
        row = {"id": f"x{n}", "prompt": prompt, "completion": " 3"}
        if spans:
            row["attribution"] = [target("t", (1, 2), find(prompt, prompt.split()[1]))]
        rows.append(json.dumps(row))
    for split in ("train", "test"):
        (folder / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    return folder


def test_cli_prints_the_table_and_writes_json(tiny, tmp_path, cli):
    models, _ = tiny
    data, out = write_corpus(tmp_path / "spans", True), tmp_path / "a.json"
    status, stdout, err = cli(eval_main, "--model", models["folder"], "--data", data, "--attribution",
                              "grad-input,rollout,random", "--attribution-samples", 5, "--out", out, "--no-progress")
    assert status == 0, err
    assert "model " + str(models["folder"]) in stdout and "| method | source mass | top-k precision |" in stdout
    for row in ("| grad-input |", "| rollout |", "| random |", "| chance |"):
        assert row in stdout
    result = json.loads(out.read_text())
    assert (result["records"], result["targets"], result["split"]) == (5, 5, "test")
    assert result["chain_of_thought"] == "none in the corpus" and 0 <= result["target_accuracy"] <= 1
    assert set(result["methods"]) == {"grad-input", "rollout", "random", "chance"}


def test_cli_errors_are_one_line(tiny, tmp_path, cli):
    models, _ = tiny
    plain, spans = write_corpus(tmp_path / "plain", False), write_corpus(tmp_path / "spans", True)
    err = one_line_error(*cli(eval_main, "--model", models["folder"], "--data", plain, "--attribution", "random")[::2])
    assert "no attribution column" in err
    err = one_line_error(*cli(eval_main, "--model", models["folder"], "--data", spans, "--attribution", "lrp")[::2])
    assert "known: grad-input, gradient, rollout, random" in err
    err = one_line_error(*cli(eval_main, "--model", models["folder"], "--data", spans, "--attribution", "random",
                              "--predictions", tmp_path / "p.jsonl")[::2])
    assert "--predictions" in err
