"""Multiplication in ICoT's original sequence layout (` A * B <eos> COT <eos> #### C <eos>`, `--layout original`)
beside ours, with a GPT-2-style byte-level BPE built here (the Hub is out of reach): the tokens and the label
mask of a hand-worked example, ICoT removal, generation that ends at the second EOS, the aux heads' two read
positions, tiny training runs in each layout whose layout zoo-eval finds by itself, and the aux heads' file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from conftest import one_line_error
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from cards.errors import UsageError
from multmath import problem
from multmath.cli import main as multmath_gen
from multmath.generator import GENERATOR
from train import aux, data, evaluate
from train.cli import eval_main, train_main
from train.config import RunConfig
from train.manifest import CHECKPOINTS, RESUME, RunManifest
from train.objectives import Icot
from train.tokenizer import train_tokenizer
from train.trainer import check_out, given_tokenizer

EOS = "<|endoftext|>"
P = problem(12, 34)  # a = 12, b = 34: CoT 48 + 360, answer 0408; digits least-significant first
PROMPT, COT, ANSWER = P.parts()
RECORD = {"prompt": PROMPT, "cot": COT, "answer": ANSWER, "answer_digits": list(P.answer_digits),
          "running_sums": list(P.running_sums)}
# ` 2 1 * 4 3 <eos> 8 4 0 + 0 6 3 0 <eos> #### 8 0 4 0 <eos>`: a space before every EOS is a token of its own
EXPECTED = ["Ġ2", "Ġ1", "Ġ*", "Ġ4", "Ġ3", "Ġ", EOS,
            "Ġ8", "Ġ4", "Ġ0", "Ġ+", "Ġ0", "Ġ6", "Ġ3", "Ġ0", "Ġ",
            EOS, "Ġ#", "###", "Ġ8", "Ġ0", "Ġ4", "Ġ0", "Ġ", EOS]
QUIET = ["--no-progress", "--log-every", "1"]


def test_the_hand_worked_problem():
    assert (PROMPT, COT, ANSWER) == ("2 1 * 4 3", "8 4 0 + 0 6 3 0", "8 0 4 0")
    assert RECORD["running_sums"] == [8, 10, 4, 0]  # ĉ_1 = 1·4 + 2·3 = 10, ĉ_2 = 1·3 + ⌊10/10⌋ = 4


@pytest.fixture(scope="module")
def bpe(tmp_path_factory) -> Path:
    """A byte-level BPE with GPT-2's pre-tokenization: every byte, and ' 0'..' 9', ' *', ' +', ' (', ' )', ' #' and
    '###' (GPT-2 writes ' ####' as ' #' '###' too) as single tokens; EOS `<|endoftext|>`, no pad token."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    merges = [("Ġ", c) for c in "0123456789*+()#"] + [("#", "#"), ("##", "#")]
    vocab = {c: i for i, c in enumerate(alphabet)}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    backend = Tokenizer(models.BPE(vocab, merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([EOS])
    folder = tmp_path_factory.mktemp("tok") / "bpe"
    PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS, bos_token=EOS).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tok(bpe):
    return given_tokenizer(str(bpe))  # as zoo-train --tokenizer loads it: a pad token added


def original(tokenizer) -> data.OriginalLayout:
    view = data.OriginalLayout(GENERATOR.view)
    view.use(tokenizer)
    return view


def test_original_layout_tokens_and_label_mask(tok):
    enc, _ = data.encode([RECORD], original(tok), tok)
    batch = data.collate(enc, [0], tok.pad_token_id)
    ids = batch["input_ids"][0].tolist()
    assert tok.convert_ids_to_tokens(ids) == EXPECTED
    assert batch["labels"][0].tolist() == [-100] * 7 + ids[7:]  # everything up to the first EOS is masked
    # the ids of the whole line as the ICoT loader writes it, through the tokenizer at once
    assert ids == tok(f" 2 1 * 4 3 {EOS} 8 4 0 + 0 6 3 0 {EOS} #### 8 0 4 0 {EOS}")["input_ids"]
    assert (enc.digits_at[0], enc.digits_end[0]) == (3, 7)  # in the answer `<eos> #### 8 0 4 0 ␣ <eos>`
    assert tok.decode(ids[7:], skip_special_tokens=True) == " 8 4 0 + 0 6 3 0  #### 8 0 4 0 "


def test_icot_removes_cot_tokens_from_the_start_of_the_cot(tok):
    enc, _ = data.encode([RECORD], original(tok), tok)
    icot = Icot(icot_per_epoch=3, icot_lambda=float("inf"))
    ids = icot.micro_batch(enc, [0], tok.pad_token_id, step=1, per_epoch=1, seed=0, stream=0)["input_ids"][0]
    assert tok.convert_ids_to_tokens(ids.tolist()) == EXPECTED[:7] + EXPECTED[10:]
    # all of it: ` A * B <eos><eos> #### C <eos>`, which is also how nocot and aux see every record
    gone = data.collate(enc, [0], tok.pad_token_id, [enc.max_cot])["input_ids"][0].tolist()
    assert tok.convert_ids_to_tokens(gone) == EXPECTED[:7] + EXPECTED[16:] and enc.max_cot == 9
    nocot, _ = data.encode([RECORD], original(tok), tok, keep_cot=False)
    assert data.collate(nocot, [0], tok.pad_token_id)["input_ids"][0].tolist() == gone


def test_aux_read_positions_differ_by_exactly_one(tok):
    # original layout, no CoT: 2 1 * 4 3 ␣ <eos> <eos> ␣# ### [8] 0 4 0 ␣ <eos>: c_0 is token 10
    enc, _ = data.encode([RECORD], original(tok), tok, keep_cot=False)
    aux.check_digit_tokens(enc)
    ids = data.collate(enc, [0], tok.pad_token_id)["input_ids"][0]
    previous, answer = (aux.targets(enc, [0], where) for where in ("previous", "answer"))
    assert previous["aux_positions"][0].tolist() == [9, 10, 11, 12]
    assert answer["aux_positions"][0].tolist() == [10, 11, 12, 13]
    assert tok.convert_ids_to_tokens(ids[answer["aux_positions"][0]].tolist()) == ["Ġ8", "Ġ0", "Ġ4", "Ġ0"]
    assert previous["aux_targets"][0].tolist() == answer["aux_targets"][0].tolist() == [8, 10, 4, 0]
    # ours, one token per digit: 2 1 * 4 3 || #### [8] 0 4 0 <eos>: c_0 is token 7
    digits = train_tokenizer(["".join(GENERATOR.view.pieces(RECORD))], digits=True, vocab_size=0)
    ours, _ = data.encode([RECORD], GENERATOR.view, digits, keep_cot=False)
    assert aux.targets(ours, [0], "previous")["aux_positions"][0].tolist() == [6, 7, 8, 9]
    assert aux.targets(ours, [0], "answer")["aux_positions"][0].tolist() == [7, 8, 9, 10]


def bigram_model(tokenizer, chain: list[str]) -> LlamaForCausalLM:
    """A model whose greedy next token depends on the current token alone: each token of `chain` is followed by
    the next one (the last by the first)."""
    size = len(tokenizer)
    width = 2 * (size // 2 + 1)  # even (rotary), and room for one dimension per token
    config = LlamaConfig(vocab_size=size, hidden_size=width, intermediate_size=4, num_hidden_layers=1,
                         num_attention_heads=1, num_key_value_heads=1, max_position_embeddings=64,
                         tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.model.layers[0].self_attn.o_proj.weight.zero_()  # the blocks add nothing to the residual stream
        model.model.layers[0].mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(size, width))
        model.lm_head.weight.zero_()
        ids = tokenizer.convert_tokens_to_ids(chain)
        for now, after in zip(ids, ids[1:] + ids[:1]):
            model.lm_head.weight[after, now] = 1.0
    return model


def test_generation_ends_at_the_second_eos_in_the_original_layout(tok):
    chain = [EOS, "Ġ#", "###", "Ġ8", "Ġ0", "Ġ4", "Ġ1", "Ġ"]  # after each EOS: ` #### 8 0 4 1 <eos>`, again
    model = bigram_model(tok, chain)
    outputs = []
    metrics = evaluate.evaluate(model, tok, [RECORD], original(tok), progress=False, outputs=outputs)
    assert outputs == [" #### 8 0 4 1  #### 8 0 4 1 "]  # the first EOS is where an ICoT CoT ends; the second ends it
    assert metrics["exact_match"] == 0 and metrics["digit_accuracy_by_position"] == [1, 1, 1, 0]
    assert evaluate.until_eos([5, 1, 5, 1, 5], 5, 2) == [5, 1, 5] and evaluate.until_eos([1, 5], 5, 2) == [1, 5]


@pytest.fixture(scope="module")
def mm(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mm") / "mm"
    assert multmath_gen(["--digits", "2x2", "-n", "64", "--num-valid", "8", "--num-test", "8", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("layout, objective, extra", [
    ("ours", "icot", ["--icot-per-epoch", "8"]),
    ("original", "icot", ["--icot-per-epoch", "8"]),
    ("original", "aux", ["--aux-position", "answer"]),
])
def test_tiny_runs_train_and_evaluate_in_each_layout(mm, bpe, tmp_path, cli, monkeypatch, layout, objective, extra):
    out = tmp_path / "run"
    given = ["--layout", "original", "--tokenizer", bpe] if layout == "original" else []
    status, _, err = cli(train_main, "--data", mm, "--preset", "tiny", "--objective", objective, *extra, *given,
                         "--max-steps", "3", "--batch-size", "16", "--out", out, *QUIET)
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 8 and len(metrics["digit_accuracy_by_position"]) == 4
    manifest = RunManifest.from_folder(out)
    assert manifest.config.layout == layout and data.recorded_layout(str(out)) == layout
    assert (f"--layout {layout}" in manifest.command) == (layout == "original")
    if layout == "original":
        assert manifest.vocab_size == len(given_tokenizer(str(bpe)))  # the given tokenizer, not one trained here
    if objective == "aux":
        saved = aux.load(out)
        assert saved.position == "answer" and manifest.config.objective.aux_position == "answer"
        assert saved.weight.shape == (2, 16) and saved.heads == [0, 1] and saved.layer == 1
    # zoo-eval reads the layout from the run without being told, and measures what the run measured
    used = []
    laid_out = data.in_layout
    monkeypatch.setattr(data, "in_layout", lambda corpus, name: used.append(name) or laid_out(corpus, name))
    status, stdout, err = cli(eval_main, "--model", out, "--data", mm, "--no-progress")
    assert status == 0, err
    assert used == [layout]
    result = json.loads(stdout)
    assert {k: result[k] for k in metrics if k in result} == {k: v for k, v in metrics.items() if k in result}


def test_aux_heads_without_a_position_read_at_the_previous_position(tmp_path):
    shipped = Path(__file__).resolve().parents[1] / "zoo" / "multmath-3x3-aux-nano"
    saved = aux.load(shipped)  # a float16 release: no metadata in the file, the manifest says which heads
    assert (saved.layer, saved.heads, saved.position) == (1, [0, 1], "previous") and saved.weight.shape == (2, 64)
    from safetensors.torch import save_file

    save_file({"weight": torch.ones(1, 4), "scale": torch.tensor(2.0)}, str(tmp_path / aux.FILE),
              metadata={"layer": "0", "heads": "[3]", "weight": "1.0", "scale": "2.0"})  # as written before
    assert aux.load(tmp_path).position == "previous" and aux.load(tmp_path).heads == [3]
    with pytest.raises(Exception, match="no aux_heads"):
        aux.load(tmp_path / "nowhere")


def test_layout_and_tokenizer_errors(mm, tmp_path, cli):
    corpus = data.open_corpus(str(mm))
    plain = dataclasses.replace(corpus, generator=None, view=data.TrainingView())
    with pytest.raises(UsageError, match="only multiplication corpora"):
        data.in_layout(plain, "original")
    assert data.in_layout(plain, "ours") is plain
    status, _, err = cli(train_main, "--data", mm, "--preset", "tiny", "--tokenizer", tmp_path / "none",
                         "--out", tmp_path / "r", *QUIET)
    assert "--tokenizer" in one_line_error(status, err) and not (tmp_path / "r").exists()
    with pytest.raises(UsageError, match="--tokenizer only applies to --preset"):
        RunConfig(data=str(mm), out=str(tmp_path / "r"), base="gpt2", tokenizer="gpt2")


def test_a_run_recorded_before_layouts_existed_resumes(mm, tmp_path):
    out = tmp_path / "run"
    config = RunConfig(data=str(mm), out=str(out), preset="tiny", objective="aux", resume=True)
    old = {k: v for k, v in config.fingerprint().items() if k not in ("layout", "tokenizer", "aux_position")}
    (out / CHECKPOINTS).mkdir(parents=True)
    (out / CHECKPOINTS / RESUME).write_text(json.dumps(old))
    assert check_out(out, config) == (None, True)  # the settings it lacks had their defaults
    with pytest.raises(UsageError, match="--layout was 'ours', now 'original'"):
        check_out(out, dataclasses.replace(config, layout="original"))
