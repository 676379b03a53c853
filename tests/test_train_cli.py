"""`zoo-train` and `zoo-eval` end to end with the tiny preset: every objective and corpus kind, the
Hub-ready folder, resume equivalence, fine-tuning a local base, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
from huggingface_hub import ModelCard
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from mcq.cli import main as mcq_gen
from multmath.cli import main as multmath_gen
from tinysql.cli import main as tinysql_gen
from train import loop
from train.cli import eval_main, train_main
from train.data import load_corpus

QUIET = ["--no-progress", "--log-every", "1"]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    assert tinysql_gen(["--level", "1", "-n", "160", "--out", str(root / "sql")]) == 0
    assert multmath_gen(["--digits", "2x2", "-n", "800", "--num-valid", "40", "--num-test", "40",
                         "--out", str(root / "mm")]) == 0
    assert mcq_gen(["--level", "1", "-n", "160", "--out", str(root / "mcq")]) == 0
    return root


def train(tmp_path, name, *args):
    out = tmp_path / name
    code = train_main([*map(str, args), "--out", str(out), *QUIET])
    return code, out


def losses(out: Path) -> list[float]:
    return [e["loss"] for e in loop.read_log(out) if "loss" in e]


def falls(values: list[float]) -> bool:
    k = max(len(values) // 4, 1)
    return sum(values[-k:]) / k < 0.9 * sum(values[:k]) / k


@pytest.fixture(scope="module")
def sql_run(corpora, tmp_path_factory):
    code, out = train(tmp_path_factory.mktemp("runs"), "sql", "--data", corpora / "sql", "--preset", "tiny",
                      "--max-steps", "30", "--batch-size", "16", "--eval-every", "15", "--eval-samples", "8",
                      "--tensorboard")
    assert code == 0
    return out


def test_tinysql_run_writes_a_loadable_hub_ready_folder(corpora, sql_run):
    files = {p.name for p in sql_run.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "metrics.json", "training_args.json", "log.jsonl", "curve.png", "README.md", "runs"} <= files
    assert "checkpoints" not in files
    model = AutoModelForCausalLM.from_pretrained(sql_run)
    tokenizer = AutoTokenizer.from_pretrained(sql_run)
    assert model.config.model_type == "gpt2" and model.config.vocab_size == len(tokenizer)
    assert tokenizer.pad_token_id is not None and model.generation_config.eos_token_id == tokenizer.eos_token_id
    metrics = json.loads((sql_run / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["n"] == len(load_corpus(str(corpora / "sql"))["test"])
    assert {"exact_match", "normalized_match", "execution_match"} <= set(metrics)
    assert falls(losses(sql_run))
    evals = [e for e in loop.read_log(sql_run) if "eval" in e]
    assert [e["step"] for e in evals] == [15, 30] and evals[0]["eval"]["n"] == 8


def test_model_card_states_results_size_command_and_hardware(sql_run):
    card = (sql_run / "README.md").read_text()
    args = json.loads((sql_run / "training_args.json").read_text())
    metrics = json.loads((sql_run / "metrics.json").read_text())
    assert card.startswith("---\n") and "model-index:" in card and "type: exact_match" in card
    assert f"value: {round(metrics['exact_match'], 4)}" in card
    assert f"{args['parameters']['total']:,}" in card and "level 1" in card
    assert "zoo-train --data sql " in card and "--max-steps 30" in card and "CPU (" in card
    # the corpus is named by its folder name and its generator command, never by a path of this machine
    assert "tinysql-gen --level 1 -n 160 --out sql" in card and str(sql_run.parent) not in card
    assert ModelCard.load(sql_run / "README.md").data.to_dict()["datasets"] == ["sql"]
    assert "## Intended use" in card
    assert args["parameters"]["total"] == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(sql_run)
                                              .parameters())


@pytest.mark.parametrize("objective", ["sft", "icot", "nocot", "aux"])
def test_every_multmath_objective_trains(corpora, tmp_path, objective):
    extra = ["--icot-per-epoch", "40"] if objective == "icot" else []
    code, out = train(tmp_path, objective, "--data", corpora / "mm", "--preset", "tiny", "--objective", objective,
                      "--max-steps", "25", "--batch-size", "32", *extra)
    assert code == 0
    log = [e for e in loop.read_log(out) if "loss" in e]
    assert falls([e["lm_loss"] for e in log])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 40 and len(metrics["digit_accuracy_by_position"]) == 4
    if objective == "icot":  # 40 tokens per epoch of 25 steps: the 8-token CoT is gone from step 5 on
        assert [e["cot_removed"] for e in log[:7]] == [0, 1, 3, 4, 6, 8, 8] and log[-1]["cot_removed"] == 8
    if objective == "aux":
        assert falls([e["aux_loss"] for e in log])
        heads = load_file(out / "aux_heads.safetensors")
        assert heads["weight"].shape == (2, 16)
        assert not any("aux" in k for k in load_file(out / "model.safetensors"))


def test_mcq_run_and_zoo_eval_on_all_three_kinds(corpora, tmp_path, sql_run, capsys):
    code, out = train(tmp_path, "mcq", "--data", corpora / "mcq", "--preset", "tiny", "--arch", "llama",
                      "--max-steps", "20", "--batch-size", "16")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"exact_match", "label_accuracy", "gold_probability"} <= set(metrics)
    sizes = {k: len(v) for k, v in load_corpus(str(corpora / "mcq")).items()}
    assert metrics["n"] == sizes["test"]
    capsys.readouterr()
    assert eval_main(["--model", str(out), "--data", str(corpora / "mcq"), "--split", "validation",
                      "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "validation" and result["n"] == sizes["validation"] and 0 <= result["gold_probability"] <= 1
    assert eval_main(["--model", str(sql_run), "--data", str(corpora / "sql"), "--samples", "5", "--no-progress",
                      "--out", str(tmp_path / "m.json"), "--predictions", str(tmp_path / "p.jsonl")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    test = load_corpus(str(corpora / "sql"))["test"]
    assert metrics["n"] == 5 and [r["id"] for r in rows] == test["id"][:5]
    assert [r["gold"] for r in rows] == [c.strip() for c in test["completion"][:5]]
    assert sum(r["correct"] for r in rows) / 5 == metrics["exact_match"]
    assert all(r["correct"] == (r["prediction"] == r["gold"]) for r in rows)
    capsys.readouterr()
    # a multmath model evaluated by zoo-eval agrees with the trainer's own final evaluation
    code, mm = train(tmp_path, "mm", "--data", corpora / "mm", "--preset", "tiny", "--objective", "nocot",
                     "--max-steps", "10")
    capsys.readouterr()
    assert eval_main(["--model", str(mm), "--data", str(corpora / "mm"), "--no-progress"]) == 0
    again = json.loads(capsys.readouterr().out)
    again.pop("split")
    trained = json.loads((mm / "metrics.json").read_text())
    assert again == {k: v for k, v in trained.items() if k not in ("split", "corpus", "config")}


def test_killed_and_resumed_run_ends_with_the_same_weights(corpora, tmp_path, monkeypatch):
    args = ["--data", corpora / "mm", "--preset", "tiny", "--objective", "icot", "--icot-per-epoch", "30",
            "--max-steps", "8", "--batch-size", "16", "--grad-accum", "2", "--save-every", "3", "--seed", "5"]
    code, straight = train(tmp_path, "straight", *args)
    assert code == 0

    real_save, saves = loop.save_checkpoint, []

    def save_then_die(*a, **k):  # the process is killed right after its second checkpoint (step 6)
        folder = real_save(*a, **k)
        saves.append(folder.name)
        if len(saves) == 2:
            raise KeyboardInterrupt
        return folder

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    code, killed = train(tmp_path, "killed", *args)
    assert code == 130 and saves == ["step-00000003", "step-00000006"]
    assert not (killed / "model.safetensors").exists()
    assert [p.name for p in (killed / "checkpoints").glob("step-*")] == ["step-00000006"]
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    code, resumed = train(tmp_path, "killed", *args, "--resume")
    assert code == 0
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [e["step"] for e in loop.read_log(resumed) if "loss" in e] == list(range(1, 9))
    assert losses(resumed) == losses(straight)


def test_fine_tuning_a_local_base_without_pad_token(corpora, tmp_path):
    # a tiny "base" whose tokenizer has only an EOS token, saved as a Hub folder would be
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from train import presets

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer, raw.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    records = load_corpus(str(corpora / "sql"))["train"]
    raw.train_from_iterator((r["prompt"] + r["completion"] for r in records),
                            trainers.BpeTrainer(vocab_size=500, special_tokens=["<eos>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>")
    model = presets.build(presets.config(presets.PRESETS["tiny"], "llama", len(tokenizer), 0, 0, None), seed=0)
    base = tmp_path / "base"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    assert AutoTokenizer.from_pretrained(base).pad_token is None
    code, tuned = train(tmp_path, "tuned", "--data", corpora / "sql", "--base", base, "--max-steps", "4",
                        "--lr", "1e-3")
    assert code == 0
    tok = AutoTokenizer.from_pretrained(tuned)
    tuned_model = AutoModelForCausalLM.from_pretrained(tuned)
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id == len(tokenizer)
    assert tuned_model.get_input_embeddings().weight.shape[0] == len(tok) == len(tokenizer) + 1
    assert tuned_model.config.model_type == "llama" and tuned_model.config.pad_token_id == tok.pad_token_id
    card = (tuned / "README.md").read_text()
    assert f"base_model: {base}" in card and "fine-tuned from" in card


# bad input: one line, exit status 2, nothing written or overwritten


def error_of(capsys, main, *args) -> str:
    capsys.readouterr()
    assert main(list(map(str, args))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_bad_input_is_one_line_and_touches_nothing(corpora, tmp_path, capsys, sql_run):
    out = tmp_path / "out"
    common = ["--preset", "tiny", "--max-steps", "2", "--out", out, "--no-progress"]
    assert "no such corpus folder" in error_of(capsys, train_main, "--data", tmp_path / "missing", *common)
    wrong = tmp_path / "wrong"
    (wrong / "data").mkdir(parents=True)
    datasets.Dataset.from_dict({"question": ["q"], "text": ["t"]}).to_parquet(str(wrong / "data" / "train.parquet"))
    assert "known column sets" in error_of(capsys, train_main, "--data", wrong, *common)
    assert "invalid choice" in error_of(capsys, train_main, "--data", corpora / "sql", "--preset", "huge",
                                        "--out", out)
    assert "needs a multmath corpus" in error_of(capsys, train_main, "--data", corpora / "sql", "--objective", "icot",
                                                 *common)
    assert "cannot load it" in error_of(capsys, train_main, "--data", corpora / "sql", "--base", tmp_path,
                                        "--max-steps", "2", "--out", out)
    assert "--base ./no-such-model: no such folder" in error_of(capsys, train_main, "--data", corpora / "sql",
                                                              "--base", "./no-such-model", "--out", out)
    assert "--arch llama" in error_of(capsys, train_main, "--data", corpora / "mm", "--arch", "qwen2", *common)
    assert "--aux-heads" in error_of(capsys, train_main, "--data", corpora / "mm", "--objective", "aux",
                                     "--aux-heads", "0,9", *common)
    assert "smaller than one optimizer step" in error_of(capsys, train_main, "--data", corpora / "sql",
                                                         "--train-samples", "10", "--batch-size", "8",
                                                         "--grad-accum", "4", *common)
    assert not out.exists()
    # an existing folder is never replaced without --overwrite, nor resumed from another run
    before = {p: p.stat().st_mtime_ns for p in sql_run.rglob("*")}
    assert "already exists" in error_of(capsys, train_main, "--data", corpora / "sql", "--preset", "tiny",
                                        "--out", sql_run)
    assert "smaller than one optimizer step" in error_of(capsys, train_main, "--data", corpora / "sql", "--preset",
                                                         "tiny", "--batch-size", "64", "--grad-accum", "4",
                                                         "--out", sql_run,
                                                         "--overwrite")
    assert "no unfinished zoo-train run" in error_of(capsys, train_main, "--data", corpora / "sql", "--preset",
                                                     "tiny", "--out", sql_run, "--resume")
    assert {p: p.stat().st_mtime_ns for p in sql_run.rglob("*")} == before
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints").mkdir(parents=True)
    run = {"data": str(corpora / "sql"), "preset": "tiny", "lr": 0.001}
    (unfinished / "checkpoints" / "run.json").write_text(json.dumps(run))
    err = error_of(capsys, train_main, "--data", corpora / "sql", "--preset", "tiny", "--out", unfinished, "--resume")
    assert "holds another run" in err
    assert [p.name for p in unfinished.rglob("*")] == ["checkpoints", "run.json"]
    assert "no such folder" in error_of(capsys, eval_main, "--model", tmp_path / "nope", "--data", corpora / "sql")
    assert "--split dev" in error_of(capsys, eval_main, "--model", sql_run, "--data", corpora / "sql", "--split", "dev")


def test_console_script_reports_errors_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-c", "import sys; from train.cli import train_main; "
                             "sys.exit(train_main())", "--data", str(tmp_path / "none"), "--preset", "tiny",
                             "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("zoo-train: error: --data") and result.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()
