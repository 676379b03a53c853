"""Evaluation that never loses a run (issue 12): records longer than the model's context are skipped and
counted, a failed evaluation leaves the run's folder complete but for its metrics, the final evaluation
can be bounded or skipped and runs in few batches, data preparation is fast and shows progress, chat
corpora train through a chat template, and the small ones: quiet --no-progress, no tied-weights
warning at checkpoints, unwritable --out refused up front."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import datasets
import pytest
from huggingface_hub import ModelCard
from transformers import AutoModelForCausalLM, AutoTokenizer

from cards.errors import UsageError
from cards.zoo import entry_from_folder, read_registry
from conftest import one_line_error
from train import RunConfig, data, evaluate, loop, presets
from train.cli import eval_main, train_main
from train.manifest import CHECKPOINTS, RunManifest
from train.tokenizer import CHAT_TEMPLATE, render_chat, token_ids, train_tokenizer

QUIET = ["--no-progress", "--log-every", "1"]


def corpus_folder(root: Path, splits: dict[str, list[tuple[str, str]]]) -> Path:
    """A prompt/completion corpus without a card."""
    (root / "data").mkdir(parents=True)
    for split, pairs in splits.items():
        datasets.Dataset.from_dict({"id": [f"{split}-{i}" for i in range(len(pairs))],
                                    "prompt": [p for p, _ in pairs], "completion": [c for _, c in pairs]}).to_parquet(
            str(root / "data" / f"{split}.parquet"))
    return root


@pytest.fixture(scope="module")
def long_prompts(tmp_path_factory) -> Path:
    """Sums whose test split has 3 prompts far longer than the tiny preset's 512 positions."""
    pairs = [(f"{a}+{b}=", f" {a + b}") for a in range(12) for b in range(12)]
    test = pairs[128:] + [("+".join(["1"] * 400) + "=", " 400")] * 3
    return corpus_folder(tmp_path_factory.mktemp("long") / "sums", {"train": pairs[:128], "test": test})


# 1. records longer than the context


def test_over_long_test_prompts_are_skipped_and_counted(long_prompts, tmp_path, cli):
    out = tmp_path / "run"
    status, stdout, err = cli(train_main, "--data", long_prompts, "--preset", "tiny", "--max-steps", "3",
                              "--batch-size", "16", "--out", out, *QUIET)
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n"], metrics["skipped_too_long"]) == (16, 3)
    assert "3 records longer than the model's context were skipped" in (out / "README.md").read_text()
    status, stdout, err = cli(eval_main, "--model", out, "--data", long_prompts, "--no-progress",
                              "--predictions", tmp_path / "p.jsonl")
    assert status == 0 and json.loads(stdout)["skipped_too_long"] == 3
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and not {r["id"] for r in rows} & {"test-16", "test-17", "test-18"}


def test_label_scores_skip_records_that_do_not_fit_either():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<eos>", "Q", "Answer:", "A", "B", "C"])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>", pad_token="<eos>")

    class Choices(data.TrainingView):
        def choices(self, record):
            return [" A", " B", " C"], 2

    shape = dataclasses.replace(presets.PRESETS["tiny"], context=16)
    model = presets.build(presets.config(shape, "gpt2", len(tok), 0, 0, 0), seed=0)
    # prompts of 2 to 21 tokens; the gold " C" and every choice are one token: the 14 prompts of at most 15
    # tokens fit in 16 positions
    records = [{"prompt": "Q " * k + "Answer:", "completion": " C"} for k in range(1, 21)]
    outputs: list = []
    metrics = evaluate.evaluate(model, tok, records, Choices(), batch_size=4, progress=False, outputs=outputs)
    assert (metrics["n"], metrics["skipped_too_long"]) == (14, 6)
    assert {"label_accuracy", "gold_probability"} <= set(metrics)
    assert [o is None for o in outputs] == [False] * 14 + [True] * 6


# 2. a failed evaluation keeps the run


def test_a_failing_final_evaluation_keeps_the_run_folder(corpora, tmp_path, cli, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(evaluate, "evaluate", boom)
    out = tmp_path / "run"
    status, stdout, err = cli(train_main, "--data", corpora / "sql", "--preset", "tiny", "--max-steps", "4",
                              "--batch-size", "16", "--eval-every", "2", "--save-every", "2", "--out", out, *QUIET)
    assert "Traceback" not in err
    message = one_line_error(status, err.splitlines()[-1] + "\n")
    assert "the final evaluation failed (RuntimeError: boom)" in message and "zoo-eval --model" in message
    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "training_args.json", "log.jsonl", "curve.png",
            "README.md"} <= files
    assert "metrics.json" not in files and CHECKPOINTS not in files
    AutoModelForCausalLM.from_pretrained(out)
    assert RunManifest.from_folder(out).steps == 4
    card = (out / "README.md").read_text()
    assert "The final evaluation failed (RuntimeError: boom). Evaluate the model with `zoo-eval --model run" in card
    assert str(tmp_path) not in card
    # the evaluations on the way failed too, and training went on
    assert [e["eval"] for e in loop.read_log(out) if "eval" in e] == [{"error": "RuntimeError: boom"}] * 2
    with pytest.raises(UsageError, match="no metrics.json"):  # the zoo says what to do, not a traceback
        entry_from_folder(out, "run", "org/run")


# 3. a bounded, batched final evaluation


def test_eval_limit_and_no_eval(corpora, tmp_path, cli, monkeypatch):
    status, stdout, err = cli(train_main, "--data", corpora / "sql", "--preset", "tiny", "--max-steps", "2",
                              "--batch-size", "16", "--eval-limit", "5", "--out", tmp_path / "five", *QUIET)
    assert status == 0 and json.loads((tmp_path / "five" / "metrics.json").read_text())["n"] == 5
    manifest = RunManifest.from_folder(tmp_path / "five")
    assert "--eval-limit 5" in manifest.command and "eval_limit" not in manifest.config.fingerprint()

    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: pytest.fail("evaluated"))
    for name, switch in (("none", ["--no-eval"]), ("zero", ["--eval-limit", "0"])):
        status, stdout, err = cli(train_main, "--data", corpora / "sql", "--preset", "tiny", "--max-steps", "2",
                                  "--batch-size", "16", *switch, "--out", tmp_path / name, *QUIET)
        assert status == 0, err
        assert json.loads((tmp_path / name / "metrics.json").read_text())["split"] is None
        assert "Not evaluated (the run was made with --no-eval" in (tmp_path / name / "README.md").read_text()
        assert ModelCard.load(tmp_path / name / "README.md").data.eval_results is None
    assert "--eval-limit" in one_line_error(*cli(train_main, "--data", corpora / "sql", "--preset", "tiny",
                                                 "--no-eval", "--eval-limit", "3", "--out", tmp_path / "x")[::2])
    with pytest.raises(UsageError, match="--no-eval and --eval-limit exclude each other"):
        RunConfig(data="d", out="o", preset="tiny", eval=False, eval_limit=3)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_generation_batches_prompts_of_different_lengths_with_the_same_results(corpora, arch):
    opened = data.open_corpus(str(corpora / "sql"))
    records = opened.splits["test"].select(range(12)).to_list()
    tok = train_tokenizer((r["prompt"] + r["completion"] for r in opened.splits["train"]), False, 600)
    model = presets.build(presets.config(presets.PRESETS["tiny"], arch, len(tok), 0, 0, 1), seed=0)
    lengths = {len(ids) for ids in tok([r["prompt"] for r in records])["input_ids"]}
    calls = []
    real = model.generate
    model.generate = lambda **kw: calls.append(kw["input_ids"].shape[0]) or real(**kw)
    batched = evaluate.generate(model, tok, records, opened.view, batch_size=8, progress=False)
    assert len(lengths) > 2 and calls == [8, 4]  # two batches, where batches of one length took len(lengths)
    assert batched == evaluate.generate(model, tok, records, opened.view, batch_size=1, progress=False)


# 4. data preparation


def test_digit_ids_equal_the_tokenizer_and_fall_back_where_they_cannot(corpora):
    mm = data.open_corpus(str(corpora / "mm"))
    tok = train_tokenizer(("".join(mm.view.pieces(r)) for r in mm.splits["train"]), digits=True, vocab_size=0)
    texts = ["".join(mm.view.pieces(r)) for r in mm.splits["train"]]
    texts += ["12 * 34||5", " 7\t8\x0b9\x1c1 ", "x y 9z", "", "٣ 4", "1 <|endoftext|> 2", "####12"]
    ids = token_ids(tok)
    for special in (False, True):
        assert ids(texts, special) == tok(texts, add_special_tokens=special)["input_ids"]
        for text in texts[-8:]:
            assert ids([text], special) == tok([text], add_special_tokens=special)["input_ids"], repr(text)


def test_encoding_shows_progress_and_reads_a_split_like_its_rows(corpora, capsys):
    mm = data.open_corpus(str(corpora / "mm"))
    records = mm.splits["train"]
    assert [r for chunk in data.records_in_chunks(records, 300) for r in chunk] == list(records)
    tok = train_tokenizer(("".join(mm.view.pieces(r)) for r in records), digits=True, vocab_size=0)
    capsys.readouterr()
    fast, _ = data.encode(records, mm.view, tok, progress=True)
    assert "prepare data" in capsys.readouterr().err
    slow, _ = data.encode(list(records), mm.view, tok)
    assert fast == slow


# 5. chat corpora


@pytest.fixture(scope="module")
def chat_corpus(tmp_path_factory) -> Path:
    from tinysql.cli import main as tinysql_gen

    out = tmp_path_factory.mktemp("chat") / "chat"
    assert tinysql_gen(["--level", "1", "-n", "160", "--format", "chat", "--out", str(out)]) == 0
    return out


def test_a_chat_corpus_trains_and_evaluates_through_the_chat_template(chat_corpus, tmp_path, cli):
    opened = data.open_corpus(str(chat_corpus))
    assert isinstance(opened.view, data.ChatView) and opened.generator == "tinysql"
    out = tmp_path / "run"
    status, stdout, err = cli(train_main, "--data", chat_corpus, "--preset", "tiny", "--max-steps", "4",
                              "--batch-size", "16", "--out", out, *QUIET)
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"exact_match", "normalized_match", "execution_match"} <= set(metrics) and metrics["n"] > 0
    tok = AutoTokenizer.from_pretrained(out)
    record = opened.splits["test"][0]
    prompt = tok.apply_chat_template(record["messages"][:-1], tokenize=False, add_generation_prompt=True)
    assert prompt == render_chat(record["messages"][:-1]) == f"<|user|>\n{record['messages'][0]['content']}\n" \
                                                              "<|assistant|>\n"
    assert tok.chat_template == CHAT_TEMPLATE
    status, stdout, err = cli(eval_main, "--model", out, "--data", chat_corpus, "--samples", "4", "--no-progress")
    assert status == 0 and json.loads(stdout)["n"] == 4


def test_a_folder_of_chats_without_a_card_opens_as_chat(tmp_path):
    folder = tmp_path / "chats"
    (folder / "data").mkdir(parents=True)
    messages = [[{"role": "user", "content": "2+2"}, {"role": "assistant", "content": "4"}]]
    datasets.Dataset.from_dict({"messages": messages}).to_parquet(str(folder / "data" / "train.parquet"))
    corpus = data.open_corpus(str(folder))
    assert isinstance(corpus.view, data.ChatView) and corpus.generator is None
    assert corpus.view.pieces(corpus.splits["train"][0]) == ("<|user|>\n2+2\n<|assistant|>\n", "", "4")
    assert corpus.view.gold(corpus.splits["train"][0]) == "4"


# 6. small ones


def test_no_progress_silences_the_bars_of_transformers(corpora, tmp_path, cli):
    status, stdout, err = cli(train_main, "--data", corpora / "mm", "--preset", "tiny", "--max-steps", "2",
                              "--out", tmp_path / "run", *QUIET)
    assert status == 0 and "%|" not in err and "Loading weights" not in err and "Writing model" not in err, err


def test_checkpoints_do_not_warn_about_tied_weights(corpora, tmp_path, cli, caplog):
    caplog.set_level(logging.WARNING)
    status, stdout, err = cli(train_main, "--data", corpora / "mm", "--preset", "tiny", "--max-steps", "4",
                              "--save-every", "2", "--keep-checkpoints", "--out", tmp_path / "run", *QUIET)
    assert status == 0 and (tmp_path / "run" / CHECKPOINTS / "step-00000002").exists()
    assert "Removed shared tensor" not in caplog.text + err
    # any other shared tensor is still reported
    kept = logging.LogRecord("accelerate.utils.other", logging.WARNING, "", 0,
                             "[RANK 0] Removed shared tensor {'model.extra.weight'} while saving.", None, None)
    assert loop.TiedWeights().filter(kept)


def test_zoo_train_refuses_an_unwritable_out_before_any_work(corpora, tmp_path, cli, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(data, "open_corpus", lambda *a: pytest.fail("read the corpus"))
    for out in ("/proc/x", blocker / "x"):
        message = one_line_error(*cli(train_main, "--data", corpora / "sql", "--preset", "tiny", "--out", out)[::2])
        assert f"--out {out}:" in message


def test_zoo_eval_refuses_unwritable_outputs_before_evaluating(corpora, tmp_path, cli, monkeypatch, sql_model):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(data, "open_corpus", lambda *a: pytest.fail("read the corpus"))
    assert f"--out {blocker / 'm.json'}: {blocker} is not a folder" in one_line_error(
        *cli(eval_main, "--model", sql_model, "--data", corpora / "sql", "--out", blocker / "m.json")[::2])
    assert "--predictions" in one_line_error(*cli(eval_main, "--model", sql_model, "--data", corpora / "sql",
                                                  "--predictions", tmp_path / "no" / "p.jsonl")[::2])


@pytest.fixture(scope="module")
def sql_model(corpora, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "sql"
    assert train_main(["--data", str(corpora / "sql"), "--preset", "tiny", "--max-steps", "2", "--out", str(out),
                       "--no-progress"]) == 0
    return out


def test_a_model_name_that_is_no_folder_is_answered_without_the_hub(corpora, tmp_path, cli, monkeypatch):
    """An unpublished zoo checkpoint, or a near miss of a local folder, is refused at once: no Hub retries."""
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("the Hub was asked")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    entry = {**read_registry()[0], "published": False, "shipped": False}  # registered, but nowhere to get it
    (tmp_path / "zoo.json").write_text(json.dumps({"checkpoints": [entry]}))
    monkeypatch.setenv("ZOO_REGISTRY", str(tmp_path / "zoo.json"))
    status, _, err = cli(eval_main, "--model", entry["name"], "--data", corpora / "sql", "--no-progress")
    assert "not published" in one_line_error(status, err)
    (tmp_path / "run-nano").mkdir()
    monkeypatch.chdir(tmp_path)
    status, _, err = cli(eval_main, "--model", "run-nan", "--data", corpora / "sql", "--no-progress")
    assert "did you mean run-nano" in one_line_error(status, err)


def test_the_model_card_shows_the_prompt_format_of_its_corpus(corpora, sql_model):
    first = datasets.load_dataset(str(corpora / "sql"), split="test")[0]
    card = ModelCard.load(sql_model / "README.md").text
    assert "## Prompt format" in card and first["prompt"].strip() in card and first["completion"] in card


def test_overwrite_replaces_only_a_run_folder(corpora, sql_model, tmp_path, cli, monkeypatch):
    """zoo-train --overwrite, like the generators', never deletes a folder it did not write."""
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.txt").write_text("x")
    common = ("--data", corpora / "sql", "--preset", "tiny", "--max-steps", "2", "--no-progress", "--overwrite")
    status, _, err = cli(train_main, *common, "--out", mine)
    assert "holds no zoo-train run" in one_line_error(status, err) and (mine / "thesis.txt").read_text() == "x"
    monkeypatch.chdir(mine)
    for protected in (".", ".."):
        status, _, err = cli(train_main, *common, "--out", protected)
        assert "refusing to write a run" in one_line_error(status, err)
    assert (mine / "thesis.txt").read_text() == "x"
    status, _, err = cli(train_main, *common, "--out", sql_model)  # a run folder may be replaced
    assert status == 0, err
