"""train/ pieces without a training run: the run settings, presets, tokenizers, corpora and their
views, records to tokens, batching, the objectives (ICoT schedule, aux heads) and the metrics."""

from __future__ import annotations

import math

import datasets
import pytest
import torch
from transformers import AutoTokenizer

from cards.errors import UsageError
from cards.generator import TrainingView, get
from train import RunConfig, aux, data, icot, presets
from train.aux import AuxHeads
from train.cli import config_from, train_parser
from train.evaluate import choice_scores, score
from train.loop import Trainable
from train.objectives import OBJECTIVES, Aux, Icot
from train.tokenizer import ensure_pad, train_tokenizer


@pytest.fixture(scope="module")
def opened(corpora):
    return {name: data.open_corpus(str(corpora / name)) for name in ("sql", "mm", "mcq")}


@pytest.fixture(scope="module")
def mm(opened):
    return opened["mm"]


@pytest.fixture(scope="module")
def digit_tokenizer(mm):
    return train_tokenizer(("".join(mm.view.pieces(r)) for r in mm.splits["train"]), digits=True, vocab_size=0)


# the run settings


def test_run_config_defaults_come_from_the_preset_or_the_base():
    tiny = RunConfig(data="d", out="o", preset="tiny")
    assert tiny.lr is None and tiny.resolved(100).lr == presets.PRESETS["tiny"].lr == 1e-3
    assert RunConfig(data="d", out="o", preset="0.5b").resolved(100).lr == 3e-4
    assert RunConfig(data="d", out="o", base="org/m").resolved(100).lr == presets.BASE_LR == 2e-5
    assert RunConfig(data="d", out="o", preset="tiny", lr=0.1).resolved(100).lr == 0.1
    # warm-up: min(50, a tenth of the steps); 100 examples of batch 32 are 4 steps per epoch
    assert RunConfig(data="d", out="o", preset="tiny", epochs=30).resolved(100).warmup_steps == 12
    assert RunConfig(data="d", out="o", preset="tiny", max_steps=5000).resolved(100).warmup_steps == 50
    with pytest.raises(UsageError, match="smaller than one optimizer step"):
        RunConfig(data="d", out="o", preset="tiny", batch_size=64, grad_accum=4).resolved(100)


@pytest.mark.parametrize("bad, message", [
    ({"batch_size": 0}, "--batch-size: expected a positive number"),
    ({"lr": math.inf}, "--lr: expected a positive finite number"),
    ({"preset": "huge"}, "--preset: 'huge' is not one of"),
    ({"objective": "dpo"}, "--objective: 'dpo' is not one of"),
    ({"seed": "1"}, "--seed: expected int"),
    ({"base": "org/m"}, "exactly one of --preset"),
    ({"layers": 3, "preset": None, "base": "org/m"}, "only apply to --preset"),
    ({"epochs": 2, "max_steps": 9}, "exclude each other"),
])
def test_run_config_refuses_bad_settings_from_python_as_the_command_line_would(bad, message):
    with pytest.raises(UsageError, match=message):
        RunConfig(**{"data": "d", "out": "o", "preset": "tiny", **bad})
    with pytest.raises(UsageError, match="--aux-heads: expected distinct heads"):
        Aux(aux_heads=(1, 1))


def test_settings_round_trip_through_the_command_and_the_dict():
    config = RunConfig(data="m4", out="run", preset="nano", objective=Icot(icot_per_epoch=40, icot_lambda=math.inf),
                       max_steps=30, lr=5e-4, eval_every=10, tensorboard=True, progress=False)
    command = config.command()
    assert command.startswith("zoo-train --data m4 --out run --preset nano --objective icot --icot-per-epoch 40 "
                              "--icot-lambda inf --max-steps 30")
    assert "--no-progress" not in command  # a setting that is not part of the run
    again = config_from(train_parser().parse_args(command.split()[1:]))
    assert again == RunConfig(**{**vars(config), "progress": True})
    assert RunConfig.from_dict(config.to_dict()) == config
    aux_config = RunConfig(data="m4", out="run", preset="tiny", objective="aux")
    assert config_from(train_parser().parse_args(["--data", "m4", "--out", "run", "--preset", "tiny", "--objective",
                                                  "aux", "--aux-heads", "2,3"])).objective == Aux(aux_heads=(2, 3))
    assert aux_config.to_dict()["aux_heads"] == [0, 1] and RunConfig.from_dict(aux_config.to_dict()) == aux_config


def test_only_settings_that_can_change_the_weights_are_fingerprinted():
    config = RunConfig(data="m4", out="run", preset="tiny", objective="icot")
    moved = RunConfig(data="m4", out="elsewhere", preset="tiny", objective="icot", eval_every=5, log_every=1,
                      save_every=3, resume=True, progress=False, keep_checkpoints=True, tensorboard=True)
    assert config.fingerprint() == moved.fingerprint()
    assert config.fingerprint()["icot_per_epoch"] == 8 and "out" not in config.fingerprint()
    assert config.fingerprint() != RunConfig(data="m4", out="run", preset="tiny", objective="icot", seed=1).fingerprint()
    table = RunConfig(data="m4", out="run", preset="tiny", max_steps=9).resolved(100).card_table()
    assert table["objective"] == "sft" and table["lr"] == 1e-3 and "epochs" not in table and "data" not in table


# presets


def test_tiny_is_well_under_a_million_parameters_in_every_family():
    for arch in presets.ARCHS:
        assert presets.meta_counts("tiny", arch)["total"] < 600_000


def test_large_presets_mirror_the_published_shapes():
    # with the original vocabularies the counts are those of the published models
    assert presets.meta_counts("0.5b", vocab_size=151_936)["total"] == 494_032_768  # Qwen2.5-0.5B
    assert presets.meta_counts("1b", vocab_size=128_256)["total"] == 1_235_814_400  # Llama-3.2-1B
    tiny_stories = presets.meta_counts("33m", vocab_size=50_257)  # TinyStories-33M: 28.3M non-embedding
    assert round(tiny_stories["non_embedding"] / 1e6, 1) == 28.3
    config = presets.config(presets.PRESETS["33m"], "gpt-neo", 100, 0, 0, 1)
    assert config.attention_layers == ["global", "local", "global", "local"] and config.window_size == 256


def test_shape_overrides_and_bad_overrides():
    s = presets.shape("tiny", layers=3, hidden=96, heads=6)
    assert (s.layers, s.hidden, s.heads, s.mlp) == (3, 96, 6, 384)
    with pytest.raises(ValueError):
        presets.shape("tiny", heads=5)


# tokenizers


def test_digit_tokenizer_has_one_token_per_digit_and_reloads(digit_tokenizer, tmp_path):
    ids = digit_tokenizer("1 2 3 * 4 5 6 ||", add_special_tokens=False)["input_ids"]
    assert len(ids) == 8
    assert len(digit_tokenizer("123", add_special_tokens=False)["input_ids"]) == 3
    digit_tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again("7 8 #### 9")["input_ids"] == digit_tokenizer("7 8 #### 9")["input_ids"]
    assert again.pad_token == "<|pad|>" and again.eos_token == "<|endoftext|>" and again.pad_token_id != again.eos_token_id


def test_bpe_tokenizer_round_trips_sql_text(opened):
    records = opened["sql"].splits["train"]
    tok = train_tokenizer((r["prompt"] + r["completion"] for r in records), digits=False, vocab_size=1000)
    text = records[0]["prompt"] + records[0]["completion"]
    assert tok.decode(tok(text)["input_ids"]) == text
    assert len(tok) <= 1000


def test_saved_tokenizers_reload_identically_next_to_every_family(opened, digit_tokenizer, tmp_path):
    sql = opened["sql"].splits["train"]
    text, digits = sql[0]["prompt"] + sql[0]["completion"], "1 2 * 3 4 || 5 6 + 7 #### 8 9"
    for arch in presets.ARCHS:
        bpe = train_tokenizer((r["prompt"] + r["completion"] for r in sql), False, 800, qwen2=arch == "qwen2")
        for tok, sample in ((bpe, text), (digit_tokenizer, digits)):
            if arch == "qwen2" and tok is digit_tokenizer:
                continue  # transformers forces Qwen2Tokenizer on qwen2 folders: zoo-train refuses this pair
            folder = tmp_path / f"{arch}-{tok is bpe}"
            model = presets.build(presets.config(presets.PRESETS["tiny"], arch, len(tok), 0, 0, 1), seed=0)
            model.save_pretrained(folder)
            tok.save_pretrained(folder)
            again = AutoTokenizer.from_pretrained(folder)
            assert again(sample)["input_ids"] == tok(sample)["input_ids"], arch
            assert again.pad_token_id == tok.pad_token_id == 1


def test_ensure_pad_adds_a_token_and_grows_the_embeddings():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"a": 0, "b": 1, "<eos>": 2}, unk_token="a"))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>")
    model = presets.build(presets.config(presets.PRESETS["tiny"], "llama", 3, 2, 2, None), seed=0)
    assert ensure_pad(tok, model) is True
    assert tok.pad_token_id == 3 and model.get_input_embeddings().weight.shape[0] == 4
    assert model.config.pad_token_id == 3


# corpora and their views


def test_each_corpus_trains_through_the_view_its_card_records(opened):
    for name, generator in (("sql", "tinysql"), ("mm", "multmath"), ("mcq", "mcq")):
        assert opened[name].generator == generator and opened[name].view is get(generator).view
        assert opened[name].command.endswith(f"--out {name}") and opened[name].config
    assert opened["mm"].task == get("multmath").task


def test_a_folder_without_metadata_trains_as_text_or_is_refused(tmp_path):
    text = tmp_path / "text"
    (text / "data").mkdir(parents=True)
    datasets.Dataset.from_dict({"prompt": ["1+1="], "completion": [" 2"], "level": [1]}).to_parquet(
        str(text / "data" / "train.parquet"))
    corpus = data.open_corpus(str(text))
    assert corpus.generator is None and type(corpus.view) is TrainingView and corpus.command is None
    assert corpus.kind == "prompt/completion text" and corpus.task == "prompt completion"
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    datasets.Dataset.from_dict({"question": ["q"], "text": ["t"]}).to_parquet(str(other / "data" / "train.parquet"))
    with pytest.raises(UsageError, match="records no generator .* lacks prompt, completion .it has: question, text"):
        data.open_corpus(str(other))


def test_objectives_state_what_they_need_from_the_view(opened):
    for name in ("icot", "nocot"):
        with pytest.raises(UsageError, match=f"--objective {name} needs a corpus with a chain of thought "
                                             r"\(multmath\); this one is tinysql"):
            OBJECTIVES[name].check(opened["sql"].view, "tinysql")
    with pytest.raises(UsageError, match=r"--objective aux needs a corpus with running sums \(multmath\)"):
        OBJECTIVES["aux"].check(opened["mcq"].view, "mcq")
    for objective in OBJECTIVES.values():
        objective.check(opened["mm"].view, "multmath")
    OBJECTIVES["sft"].check(TrainingView(), "prompt/completion text")


# records to tokens


def test_labels_mask_the_prompt_and_cover_the_completion_and_eos(mm, digit_tokenizer):
    records = mm.splits["train"].select(range(4))
    enc, dropped = data.encode(records, mm.view, digit_tokenizer)
    batch = data.collate(enc, [0, 1], digit_tokenizer.pad_token_id)
    prompt_len = len(enc.prompt[0])
    labels = batch["labels"][0]
    assert (labels[:prompt_len] == -100).all() and (labels[prompt_len:] != -100).all()
    completion = digit_tokenizer.decode(labels[prompt_len:]).split()
    assert completion == f"{records[0]['cot']} #### {records[0]['answer']} <|endoftext|>".split()
    nocot, _ = data.encode(records, mm.view, digit_tokenizer, keep_cot=OBJECTIVES["nocot"].keeps_cot)
    assert nocot.cot[0] == [] and nocot.digits_at[0] == 1
    assert digit_tokenizer.decode(nocot.answer[0]).split() == f"#### {records[0]['answer']} <|endoftext|>".split()


def test_the_lm_objective_labels_every_token_but_the_padding(mm, digit_tokenizer):
    records = mm.splits["train"].select(range(4))
    enc, _ = data.encode(records, mm.view, digit_tokenizer)
    pad = digit_tokenizer.pad_token_id
    masked = data.collate(enc, [0, 1], pad)
    batch = OBJECTIVES["lm"].micro_batch(enc, [0, 1], pad, step=0, per_epoch=1, seed=0, stream=0)
    assert torch.equal(batch["input_ids"], masked["input_ids"])
    length = batch["attention_mask"].sum(dim=1)
    for j in range(2):
        labels = batch["labels"][j]
        assert torch.equal(labels[:length[j]], batch["input_ids"][j, :length[j]])
        assert (labels[length[j]:] == -100).all()
    prompt_len = len(enc.prompt[0])  # the completion is labelled as sft labels it
    assert torch.equal(batch["labels"][0, prompt_len:], masked["labels"][0, prompt_len:])


def test_mcq_completion_is_the_gold_label(opened):
    mcq = opened["mcq"]
    records = mcq.splits["train"].select(range(3))
    tok = train_tokenizer((r["prompt"] + " " + r["answer_label"] for r in mcq.splits["train"]), False, 600)
    enc, _ = data.encode(records, mcq.view, tok)
    assert tok.decode(enc.answer[2]) == " " + records[2]["answer_label"] + "<|endoftext|>"
    assert enc.running_sums is None


def test_too_long_records_are_dropped(mm, digit_tokenizer):
    records = mm.splits["train"].select(range(5))
    enc, dropped = data.encode(records, mm.view, digit_tokenizer, max_length=10)
    assert (len(enc), dropped) == (0, 5)


def test_batches_are_deterministic_cover_every_record_and_waste_little(opened):
    sql = opened["sql"]
    records = sql.splits["train"]
    tok = train_tokenizer((r["prompt"] + r["completion"] for r in records), False, 2000)
    enc, _ = data.encode(records, sql.view, tok)
    lengths = [enc.length(i) for i in range(len(enc))]
    plan = data.batches(lengths, 8, seed=1, epoch=0)
    assert plan == data.batches(lengths, 8, seed=1, epoch=0) != data.batches(lengths, 8, seed=1, epoch=1)
    assert sorted(i for b in plan for i in b) == list(range(len(enc)))
    assert data.real_fraction(lengths, plan) >= 0.9
    assert data.real_fraction(lengths, [list(range(len(enc)))]) < data.real_fraction(lengths, plan)


# the ICoT schedule


def test_icot_schedule_removes_per_epoch_tokens_spread_over_the_epoch():
    # 8 tokens per epoch of 16 steps: one more token every 2 steps
    assert [icot.scheduled(s, 16, 8) for s in range(0, 20, 2)] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert icot.scheduled(16, 16, 8) == 8 and icot.scheduled(32, 16, 8) == 16
    assert [icot.resets_at(s, 16, 8, longest=3) for s in range(8)] == [False, False, True, False, True, False, True,
                                                                     False]


def test_smoothing_distribution_and_its_draws():
    p = icot.smoothing(4.0, 5)
    assert math.isclose(float(p.sum()), 1.0) and math.isclose(float(p[1] / p[0]), math.exp(-4), rel_tol=1e-9)
    assert icot.smoothing(math.inf, 5).tolist() == [1.0]
    draws = icot.removals(10, 16, 8, 4.0, longest=40, count=2000, seed=0)
    assert draws == icot.removals(10, 16, 8, 4.0, longest=40, count=2000, seed=0)  # seeded by (seed, step)
    assert min(draws) == 5 and 0.95 < draws.count(5) / 2000 < 0.995  # P(k=0) = 1 - e^-4 ≈ 0.982
    assert icot.removals(10, 16, 8, math.inf, 40, 3, 0) == [5, 5, 5]
    assert icot.removals(200, 16, 8, 4.0, 40, 3, 0) == [40, 40, 40]  # capped: the CoT is gone


def test_which_cot_tokens_are_present_at_which_step(mm, digit_tokenizer):
    record = mm.splits["train"][0]
    enc, _ = data.encode([record], mm.view, digit_tokenizer)
    cot = record["cot"].split()
    steps_per_epoch, longest, objective = 10, len(cot), Icot(icot_lambda=math.inf)
    for step in (0, 3, 10, 25, 1000):
        ids = objective.micro_batch(enc, [0], digit_tokenizer.pad_token_id, step, steps_per_epoch, 0, 0)["input_ids"]
        text = digit_tokenizer.decode(ids[0].tolist()).split()
        expect_cot = cot[min(8 * step // steps_per_epoch, longest):]
        assert text == record["prompt"].split() + ["||"] + expect_cot + ["####"] + record["answer"].split() + \
            ["<|endoftext|>"]
        assert objective.log(step, steps_per_epoch, enc) == {"cot_removed": len(cot) - len(expect_cot)}


# the aux heads


def test_aux_targets_line_up_with_the_answer_digits(mm, digit_tokenizer):
    records = mm.splits["train"].select(range(3))
    enc, _ = data.encode(records, mm.view, digit_tokenizer, keep_cot=False)
    aux.check_digit_tokens(enc)
    batch = OBJECTIVES["aux"].micro_batch(enc, [0, 1, 2], digit_tokenizer.pad_token_id, 0, 10, 0, 0)
    for row, record in enumerate(records):
        positions = batch["aux_positions"][row]
        # the token after each read position is answer digit c_k, and the target is ĉ_k
        digits = [digit_tokenizer.decode([t]) for t in batch["input_ids"][row, positions + 1].tolist()]
        assert "".join(digits) == record["answer"].replace(" ", "")
        assert batch["aux_targets"][row].tolist() == record["running_sums"]
        assert [int(d) for d in digits] == [s % 10 for s in record["running_sums"]]
        assert digit_tokenizer.decode([batch["input_ids"][row, positions[0]]]) == "####"


def test_aux_heads_get_gradients_and_train_the_model_through_the_chosen_heads(mm, digit_tokenizer):
    records = mm.splits["train"].select(range(8))
    enc, _ = data.encode(records, mm.view, digit_tokenizer, keep_cot=False)
    tok = digit_tokenizer
    for arch in ("gpt2", "llama"):
        model = presets.build(presets.config(presets.PRESETS["tiny"], arch, len(tok), 0, 0, 1), seed=0)
        heads = AuxHeads(model, layer=1, heads=[0, 2])
        trainable = Trainable(model, heads, weight=1.0, name="aux")
        batch = {**data.collate(enc, list(range(8)), tok.pad_token_id), **aux.targets(enc, list(range(8)))}
        loss, parts = trainable(**batch)  # the hook captured the concatenated head outputs of layer 1
        assert heads.captured.shape[-1] == model.config.hidden_size and parts["aux_loss"] > 0
        heads.loss(batch["aux_positions"], batch["aux_targets"], batch["aux_mask"]).backward()  # the aux term alone
        assert heads.weight.grad is not None and heads.weight.grad.abs().sum() > 0
        first_layer = next(p for n, p in model.named_parameters() if ".0." in n and p.dim() == 2)
        assert first_layer.grad is not None and first_layer.grad.abs().sum() > 0
        assert torch.isclose(loss, parts["lm_loss"] + parts["aux_loss"] * 1.0)


def test_aux_settings_that_do_not_fit_the_model_are_refused(mm, digit_tokenizer):
    enc, _ = data.encode(mm.splits["train"].select(range(4)), mm.view, digit_tokenizer, keep_cot=False)
    model = presets.build(presets.config(presets.PRESETS["tiny"], "gpt2", len(digit_tokenizer), 0, 0, 1), seed=0)
    with pytest.raises(UsageError, match="--aux-layer 2: the model has 2 layers"):
        Aux(aux_layer=2).trainable(model, enc, 0)
    with pytest.raises(UsageError, match="--aux-heads 0,9: expected distinct heads from 0 to 3"):
        Aux(aux_heads=(0, 9)).trainable(model, enc, 0)
    assert Aux(aux_layer=-2).trainable(model, enc, 0).extra.layer == 0


def test_aux_reads_only_the_chosen_heads(digit_tokenizer):
    model = presets.build(presets.config(presets.PRESETS["tiny"], "gpt2", len(digit_tokenizer), 0, 0, 1), seed=0)
    heads = AuxHeads(model, layer=-1, heads=[3])
    heads.captured = torch.zeros(1, 5, 64, requires_grad=True)
    pred = heads.predict(torch.tensor([[2, 4]]))
    pred.sum().backward()
    grad = heads.captured.grad.view(1, 5, 4, 16)
    assert grad[0, [2, 4], 3].abs().sum() > 0
    assert grad[0, :, :3].abs().sum() == 0 and grad[0, [0, 1, 3]].abs().sum() == 0


# metrics


def test_multmath_scoring_reads_the_answer_after_the_last_marker():
    view = get("multmath").view
    assert view.answer("1 2 + 3 #### 4 5 6") == "456" and view.answer("4 5 6") == ""
    records = [{"answer": "1 2 3 4", "answer_digits": [1, 2, 3, 4]}, {"answer": "5 6 7 8", "answer_digits": [5, 6, 7, 8]}]
    m = score(records, ["9 9 #### 1 2 3 4", "#### 5 0 7"], view)
    assert m["exact_match"] == 0.5 and m["digit_accuracy"] == 6 / 8
    assert m["digit_accuracy_by_position"] == [1.0, 0.5, 1.0, 0.5]


def test_tinysql_scoring_uses_the_scorer(opened):
    record, view = opened["sql"].splits["test"][0], opened["sql"].view
    lower = record["sql_statement"].replace("SELECT", "select").replace(" FROM ", " from ")
    m = score([record, record], [record["sql_statement"], "SELECT nothing FROM nowhere"], view)
    assert m == {"exact_match": 0.5, "normalized_match": 0.5, "execution_match": 0.5}
    assert score([record], [lower], view) == {"exact_match": 0.0, "normalized_match": 1.0, "execution_match": 1.0}


def test_choice_scores_come_from_the_continuations_log_likelihoods():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<eos>", "Q", "Answer:", "A", "B", "C"])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>", pad_token="<eos>")

    class Fixed(torch.nn.Module):
        """Always predicts the next token with log-probabilities favouring C, then B, then A."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask=None):
            logits = torch.tensor([0.0, 0.0, 0.0, 1.0, 2.0, 3.0]).expand(*input_ids.shape, 6)
            return type("Out", (), {"logits": logits})

    class Choices(TrainingView):
        def choices(self, record):
            return [" " + label for label in record["labels"]], record["answer"]

    records = [{"prompt": "Q Answer:", "completion": " C", "labels": ["A", "B", "C"], "answer": 2},
               {"prompt": "Q Q Answer:", "completion": " A", "labels": ["A", "B"], "answer": 0}]
    m = choice_scores(Fixed(), tok, records, Choices(), batch_size=4, progress=False)
    p_c = math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3))
    p_a = math.exp(1) / (math.exp(1) + math.exp(2))
    assert m["label_accuracy"] == 0.5
    assert math.isclose(m["gold_probability"], (p_c + p_a) / 2, rel_tol=1e-5)


def test_the_trainer_computes_exactly_what_a_bare_loop_computes(mm, digit_tokenizer, tmp_path):
    from transformers import get_scheduler

    from train import loop

    enc, _ = data.encode(mm.splits["train"], mm.view, digit_tokenizer)
    s = RunConfig(data="mm", out=str(tmp_path), preset="tiny", batch_size=16, grad_accum=2, max_steps=6,
                  warmup_steps=2, progress=False).resolved(len(enc))
    config = presets.config(presets.PRESETS["tiny"], "gpt2", len(digit_tokenizer), 0, 0, 1)
    bare, trained = presets.build(config, seed=0), presets.build(config, seed=0)
    optimizer = torch.optim.AdamW(loop.param_groups(bare, s.weight_decay), lr=s.lr)
    scheduler = get_scheduler(s.schedule, optimizer, num_warmup_steps=2, num_training_steps=6)
    per_epoch, plans = s.steps_per_epoch(len(enc)), {}
    for step in range(6):
        for batch in loop.micro_batches(enc, s, step, per_epoch, 1, 0, digit_tokenizer.pad_token_id, plans):
            (bare(**batch).loss / 2).backward()
        torch.nn.utils.clip_grad_norm_(bare.parameters(), s.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    loop.train(Trainable(trained), enc, s, tmp_path, digit_tokenizer.pad_token_id, {})
    assert all(torch.equal(a, b) for a, b in zip(bare.parameters(), trained.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(bare.parameters(), presets.build(config, 0).parameters()))
