"""`zoo-train` and `zoo-eval` end to end with the tiny preset: every objective and corpus, the
Hub-ready folder and its card and manifest, resume equivalence, fine-tuning a local base,
`train.run` from Python, a corpus without generator metadata, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

import train
from conftest import one_line_error, script
from train import loop
from train.cli import eval_main, train_main
from train.data import load_corpus
from train.manifest import CHECKPOINTS, RESUME, RunManifest

QUIET = ["--no-progress", "--log-every", "1"]


def train_run(cli, folder: Path, name: str, *args):
    out = folder / name
    status, stdout, err = cli(train_main, *args, "--out", out, *QUIET)
    return status, out


def losses(out: Path) -> list[float]:
    return [e["loss"] for e in loop.read_log(out) if "loss" in e]


def falls(values: list[float]) -> bool:
    k = max(len(values) // 4, 1)
    return sum(values[-k:]) / k < 0.9 * sum(values[:k]) / k


@pytest.fixture(scope="module")
def sql_run(corpora, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sql"
    assert train_main(["--data", str(corpora / "sql"), "--preset", "tiny", "--max-steps", "30", "--batch-size", "16",
                       "--eval-every", "15", "--eval-samples", "8", "--tensorboard", "--out", str(out), *QUIET]) == 0
    return out


def test_tinysql_run_writes_a_loadable_hub_ready_folder(corpora, sql_run):
    files = {p.name for p in sql_run.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "metrics.json", "training_args.json", "log.jsonl", "curve.png", "README.md", "runs"} <= files
    assert CHECKPOINTS not in files
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


def test_the_learning_curve_is_kept_beside_the_weights_and_shown_in_the_card(sql_run):
    curve = json.loads((sql_run / "curve.json").read_text())
    evals = [{"step": e["step"], **e["eval"]} for e in loop.read_log(sql_run) if "eval" in e]
    assert curve == evals and [e["step"] for e in curve] == [15, 30]
    card = (sql_run / "README.md").read_text()
    rows = [line for line in card.splitlines() if line.startswith(("| 15 |", "| 30 |"))]
    assert [row.split(" | ")[1] for row in rows] == [f"{e['exact_match']:.3f}" for e in curve]
    assert f"normalized SQL match (TinySQL scorer) {curve[1]['normalized_match']:.3f}" in rows[1]
    assert "first 8 records of the validation split" in card


def test_manifest_records_the_run_and_what_the_corpus_card_said(sql_run):
    manifest = RunManifest.from_folder(sql_run)
    assert (manifest.generator, manifest.corpus, manifest.corpus_config) == ("tinysql", "sql", "level1")
    assert manifest.corpus_command == "tinysql-gen --level 1 -n 160 --out sql"
    assert manifest.command.startswith("zoo-train --data sql --out sql --preset tiny --max-steps 30")
    assert manifest.config.preset == "tiny" and manifest.config.objective.name == "sft"
    assert manifest.config.lr == 1e-3 and manifest.config.warmup_steps == 3  # filled in as used
    assert manifest.steps == 30 and manifest.eval_split == "test" and manifest.architecture == "gpt2"


def test_model_card_states_results_size_command_and_hardware(sql_run):
    card = ModelCard.load(sql_run / "README.md")
    data, manifest = card.data, RunManifest.from_folder(sql_run)
    metrics = json.loads((sql_run / "metrics.json").read_text())
    results = {r.metric_type: r.metric_value for r in data.eval_results}
    assert results["exact_match"] == round(metrics["exact_match"], 4)
    assert {r.task_name for r in data.eval_results} == {"text-to-SQL"} and data.datasets == ["sql"]
    facts = data.interp_zoo
    assert facts["parameters"] == manifest.parameters and facts["levels"] == [1]
    assert facts["parameters"]["total"] == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(sql_run)
                                               .parameters())
    assert facts["command"] == manifest.command and "--max-steps 30" in facts["command"]
    assert facts["hardware"].startswith("CPU (") and facts["training"]["lr"] == 1e-3
    assert facts["training"] == manifest.config.card_table()
    # the corpus is named by its folder name and its generator command, never by a path of this machine
    assert facts["corpus_command"] == "tinysql-gen --level 1 -n 160 --out sql"
    assert str(sql_run.parent) not in card.content
    assert "## Intended use" in card.text and f"{facts['parameters']['total']:,}" in card.text


@pytest.mark.parametrize("objective", ["sft", "lm", "icot", "nocot", "aux"])
def test_every_multmath_objective_trains(corpora, tmp_path, cli, objective):
    extra = ["--icot-per-epoch", "40"] if objective == "icot" else []
    status, out = train_run(cli, tmp_path, objective, "--data", corpora / "mm", "--preset", "tiny", "--objective",
                            objective, "--max-steps", "25", "--batch-size", "32", *extra)
    assert status == 0
    log = [e for e in loop.read_log(out) if "loss" in e]
    assert falls([e["lm_loss"] for e in log])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 40 and len(metrics["digit_accuracy_by_position"]) == 4
    assert ModelCard.load(out / "README.md").data.interp_zoo["objective"] == objective
    if objective == "icot":  # 40 tokens per epoch of 25 steps: the 8-token CoT is gone from step 5 on
        assert [e["cot_removed"] for e in log[:7]] == [0, 1, 3, 4, 6, 8, 8] and log[-1]["cot_removed"] == 8
    if objective == "aux":
        assert falls([e["aux_loss"] for e in log])
        heads = load_file(out / "aux_heads.safetensors")
        assert heads["weight"].shape == (2, 16)
        assert not any("aux" in k for k in load_file(out / "model.safetensors"))
    else:
        assert "aux_loss" not in log[0]


def test_mcq_run_and_zoo_eval_on_all_three_corpora(corpora, tmp_path, sql_run, cli):
    status, out = train_run(cli, tmp_path, "mcq", "--data", corpora / "mcq", "--preset", "tiny", "--arch", "llama",
                            "--max-steps", "20", "--batch-size", "16")
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"exact_match", "label_accuracy", "gold_probability"} <= set(metrics)
    sizes = {k: len(v) for k, v in load_corpus(str(corpora / "mcq")).items()}
    assert metrics["n"] == sizes["test"]
    status, stdout, err = cli(eval_main, "--model", out, "--data", corpora / "mcq", "--split", "validation",
                              "--no-progress")
    result = json.loads(stdout)
    assert result["split"] == "validation" and result["n"] == sizes["validation"] and 0 <= result["gold_probability"] <= 1
    status, stdout, err = cli(eval_main, "--model", sql_run, "--data", corpora / "sql", "--samples", "5",
                              "--no-progress", "--out", tmp_path / "m.json", "--predictions", tmp_path / "p.jsonl")
    assert status == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    test = load_corpus(str(corpora / "sql"))["test"]
    assert metrics["n"] == 5 and [r["id"] for r in rows] == test["id"][:5]
    assert [r["gold"] for r in rows] == [c.strip() for c in test["completion"][:5]]
    assert sum(r["correct"] for r in rows) / 5 == metrics["exact_match"]
    assert all(r["correct"] == (r["prediction"] == r["gold"]) for r in rows)
    # a multmath model evaluated by zoo-eval agrees with the trainer's own final evaluation
    status, mm = train_run(cli, tmp_path, "mm", "--data", corpora / "mm", "--preset", "tiny", "--objective", "nocot",
                           "--max-steps", "10")
    status, stdout, err = cli(eval_main, "--model", mm, "--data", corpora / "mm", "--no-progress")
    again = json.loads(stdout)
    again.pop("split")
    trained = json.loads((mm / "metrics.json").read_text())
    assert again == {k: v for k, v in trained.items() if k not in ("split", "corpus", "config")}


def test_killed_and_resumed_run_ends_with_the_same_weights(corpora, tmp_path, cli, monkeypatch):
    args = ["--data", corpora / "mm", "--preset", "tiny", "--objective", "icot", "--icot-per-epoch", "30",
            "--max-steps", "8", "--batch-size", "16", "--grad-accum", "2", "--save-every", "3", "--seed", "5"]
    status, straight = train_run(cli, tmp_path, "straight", *args)
    assert status == 0

    real_save, saves = loop.save_checkpoint, []

    def save_then_die(*a, **k):  # the process is killed right after its second checkpoint (step 6)
        folder = real_save(*a, **k)
        saves.append(folder.name)
        if len(saves) == 2:
            raise KeyboardInterrupt
        return folder

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    status, killed = train_run(cli, tmp_path, "killed", *args)
    assert status == 130 and saves == ["step-00000003", "step-00000006"]
    assert not (killed / "model.safetensors").exists()
    assert [p.name for p in (killed / CHECKPOINTS).glob("step-*")] == ["step-00000006"]
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    saved = killed / CHECKPOINTS / "step-00000006" / "trainer.json"
    state = json.loads(saved.read_text())
    assert 0 < state["seconds"] < 1000
    saved.write_text(json.dumps({**state, "seconds": 1000.0}))  # as if the first attempt had taken 1,000 s
    status, resumed = train_run(cli, tmp_path, "killed", *args, "--resume")
    assert status == 0
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [e["step"] for e in loop.read_log(resumed) if "loss" in e] == list(range(1, 9))
    assert losses(resumed) == losses(straight)
    # all attempts counted; >= since seconds are rounded to 0.1 and the resumed attempt may be shorter
    assert json.loads((resumed / "training_args.json").read_text())["seconds"] >= 1000


def test_python_entry_point_and_a_corpus_without_metadata(tmp_path):
    # a prompt/completion corpus written by hand, without a card: it trains as generic text
    folder = tmp_path / "sums"
    (folder / "data").mkdir(parents=True)
    pairs = [(a, b) for a in range(12) for b in range(12)]
    for split, part in (("train", pairs[:128]), ("test", pairs[128:])):
        datasets.Dataset.from_dict({"prompt": [f"{a}+{b}=" for a, b in part],
                                    "completion": [f" {a + b}" for a, b in part]}).to_parquet(
            str(folder / "data" / f"{split}.parquet"))
    config = train.RunConfig(data=folder, out=tmp_path / "run", preset="tiny", max_steps=6, batch_size=16,
                             progress=False)
    metrics = train.run(config)
    assert metrics["n"] == 16 and set(metrics) == {"n", "skipped_too_long", "exact_match"}
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["exact_match"] == metrics["exact_match"]
    manifest = RunManifest.from_folder(tmp_path / "run")
    assert manifest.generator is None and manifest.corpus_command is None and manifest.corpus == "sums"
    assert manifest.command == "zoo-train --data sums --out run --preset tiny --max-steps 6 --batch-size 16"
    card = ModelCard.load(tmp_path / "run" / "README.md")
    assert {r.task_name for r in card.data.eval_results} == {"prompt completion"} and "text" in card.data.tags


def test_fine_tuning_a_local_base_without_pad_token(corpora, tmp_path, cli):
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
    status, tuned = train_run(cli, tmp_path, "tuned", "--data", corpora / "sql", "--base", base, "--max-steps", "4",
                              "--lr", "1e-3")
    assert status == 0
    tok = AutoTokenizer.from_pretrained(tuned)
    tuned_model = AutoModelForCausalLM.from_pretrained(tuned)
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id == len(tokenizer)
    assert tuned_model.get_input_embeddings().weight.shape[0] == len(tok) == len(tokenizer) + 1
    assert tuned_model.config.model_type == "llama" and tuned_model.config.pad_token_id == tok.pad_token_id
    card = ModelCard.load(tuned / "README.md")
    assert card.data.base_model == str(base) and "fine-tuned from" in card.text
    assert card.data.interp_zoo["preset"] is None and card.data.interp_zoo["training"]["lr"] == 1e-3


# bad input: one line, exit status 2, nothing written or overwritten


def test_bad_input_is_one_line_and_touches_nothing(corpora, tmp_path, cli, sql_run):
    out = tmp_path / "out"
    common = ["--preset", "tiny", "--max-steps", "2", "--out", out, "--no-progress"]

    def error(main, *args) -> str:
        return one_line_error(*cli(main, *args)[::2])

    assert "no such corpus folder" in error(train_main, "--data", tmp_path / "missing", *common)
    wrong = tmp_path / "wrong"
    (wrong / "data").mkdir(parents=True)
    datasets.Dataset.from_dict({"question": ["q"], "text": ["t"]}).to_parquet(str(wrong / "data" / "train.parquet"))
    assert "records no generator" in error(train_main, "--data", wrong, *common)
    assert "invalid choice" in error(train_main, "--data", corpora / "sql", "--preset", "huge", "--out", out)
    assert ("--objective icot needs a corpus with a chain of thought (multmath); this one is tinysql"
            in error(train_main, "--data", corpora / "sql", "--objective", "icot", *common))
    assert "--aux-layer only applies to --objective aux" in error(train_main, "--data", corpora / "mm", "--objective",
                                                                  "icot", "--aux-layer", "0", *common)
    assert "cannot load it" in error(train_main, "--data", corpora / "sql", "--base", tmp_path, "--max-steps", "2",
                                     "--out", out)
    assert "--base ./no-such-model: no such folder" in error(train_main, "--data", corpora / "sql",
                                                             "--base", "./no-such-model", "--out", out)
    assert "--arch llama" in error(train_main, "--data", corpora / "mm", "--arch", "qwen2", *common)
    assert "--aux-heads" in error(train_main, "--data", corpora / "mm", "--objective", "aux", "--aux-heads", "0,9",
                                  *common)
    assert "smaller than one optimizer step" in error(train_main, "--data", corpora / "sql", "--train-samples", "10",
                                                      "--batch-size", "8", "--grad-accum", "4", *common)
    assert not out.exists()
    # an existing folder is never replaced without --overwrite, nor resumed from another run
    before = {p: p.stat().st_mtime_ns for p in sql_run.rglob("*")}
    assert "already exists" in error(train_main, "--data", corpora / "sql", "--preset", "tiny", "--out", sql_run)
    assert "smaller than one optimizer step" in error(train_main, "--data", corpora / "sql", "--preset", "tiny",
                                                      "--batch-size", "64", "--grad-accum", "4", "--out", sql_run,
                                                      "--overwrite")
    assert "no unfinished zoo-train run" in error(train_main, "--data", corpora / "sql", "--preset", "tiny",
                                                  "--out", sql_run, "--resume")
    assert {p: p.stat().st_mtime_ns for p in sql_run.rglob("*")} == before
    unfinished = tmp_path / "unfinished"
    (unfinished / CHECKPOINTS).mkdir(parents=True)
    (unfinished / CHECKPOINTS / RESUME).write_text(json.dumps({"data": str(corpora / "sql"), "preset": "tiny",
                                                               "lr": 0.001}))
    assert "holds another run" in error(train_main, "--data", corpora / "sql", "--preset", "tiny",
                                        "--out", unfinished, "--resume")
    assert [p.name for p in unfinished.rglob("*")] == [CHECKPOINTS, RESUME]
    assert "no such folder" in error(eval_main, "--model", tmp_path / "nope", "--data", corpora / "sql")
    assert "--split dev" in error(eval_main, "--model", sql_run, "--data", corpora / "sql", "--split", "dev")


def test_console_script_reports_errors_without_traceback(tmp_path):
    done = script("train.cli", "--data", tmp_path / "none", "--preset", "tiny", "--out", tmp_path / "o")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("zoo-train: error: --data") and done.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()
