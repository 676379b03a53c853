"""The lm-evaluation-harness tasks shipped in cards/lm_eval_tasks: they load, read the corpus named by
INTERP_ZOO_CORPUS (or lm-eval metadata), render the records' own prompts (level 2 exactly as lm-eval's MMLU
template), score TinySQL and multiplication outputs with the project's scorers, ship in the wheel, and (with
lm_eval installed) give the same accuracy as zoo-eval on a trained checkpoint."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import math
from pathlib import Path

import datasets
import jinja2
import pytest
import yaml

from cards.generator import generate
from cards.zoo import main as zoo_main
from cards.zoo import tasks_path

ROOT = Path(__file__).resolve().parents[1]
MMLU = "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"


class _Loader(yaml.SafeLoader):
    """YAML with lm-eval's `!function module.name` tag kept as a ("function", "module.name") pair."""


_Loader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))


def task_configs() -> dict[str, dict]:
    """Every task YAML of the folder, its `include` merged in, by task name."""
    found = {}
    for path in sorted(tasks_path().glob("*.yaml")):
        config = yaml.load(path.read_text(), Loader=_Loader)
        if "include" in config:
            config = {**yaml.load((path.parent / config.pop("include")).read_text(), Loader=_Loader), **config}
        found[config["task"]] = config
    return found


def zoo_tasks():
    spec = importlib.util.spec_from_file_location("zoo_tasks", tasks_path() / "zoo_tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mcq(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lm") / "mcq"
    generate("mcq", out, levels=[1, 2, 3, 4], sizes={"train": 40, "validation": 12, "test": 20}, seed=8)
    return out


def test_tasks_path_command_and_the_wheel_ships_every_file(cli):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    status, out, _ = cli(zoo_main, "tasks-path")
    assert status == 0 and Path(out.strip()) == tasks_path() == ROOT / "cards" / "lm_eval_tasks"
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["cards"]
    files = [p.relative_to(ROOT / "cards").as_posix() for p in tasks_path().iterdir() if p.is_file()
             and not p.name.endswith(".pyc")]
    assert len(files) >= 15 and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files), files
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("lm_eval>=0.4") for req in extras["lm-eval"])


def test_every_task_is_named_and_its_functions_exist():
    configs, module = task_configs(), zoo_tasks()
    assert set(configs) == {*(f"interp_zoo_mcq_level{n}" for n in range(1, 5)),
                            *(f"interp_zoo_tinysql_level{n}" for n in range(1, 9)), "interp_zoo_multmath"}
    for name, config in configs.items():
        assert config["test_split"] == "test" and config["fewshot_split"] == "dev"
        level = name.rsplit("_level", 1)[1] if "_level" in name else None
        assert config.get("dataset_kwargs", {}).get("config") == (f"level{level}" if level else None)
        for value in config.values():
            if isinstance(value, tuple):
                assert callable(getattr(module, value[1].split(".", 1)[1])), value


def test_mcq_tasks_render_the_records_prompts(mcq):
    configs, env = task_configs(), jinja2.Environment(undefined=jinja2.StrictUndefined)
    for level in range(1, 5):
        config = configs[f"interp_zoo_mcq_level{level}"]
        assert config["output_type"] == "multiple_choice" and config["target_delimiter"] == " "
        for record in datasets.load_dataset(str(mcq), f"level{level}", split="test"):
            assert env.from_string(config["doc_to_text"]).render(**record) == record["prompt"]
            choices = record[config["doc_to_choice"]]
            assert choices[record[config["doc_to_target"]]] == record["answer_label"]
            assert record["prompt"].endswith("\nAnswer:")
            if level == 2:  # lm-eval's MMLU template gives the same text, and its choices are ours
                assert env.from_string(MMLU).render(**record) == record["prompt"] and choices == list("ABCD")


def test_corpus_comes_from_the_environment_or_metadata(mcq, tmp_path, monkeypatch):
    module = zoo_tasks()
    monkeypatch.delenv(module.ENV, raising=False)
    with pytest.raises(module.TaskError, match="INTERP_ZOO_CORPUS"):
        module.load("level2")
    monkeypatch.setenv(module.ENV, str(mcq))
    splits = module.load("level3", pretrained="ignored")
    test = datasets.load_dataset(str(mcq), "level3", split="test")
    assert splits["test"]["id"] == test["id"]
    assert splits["dev"]["id"] == datasets.load_dataset(str(mcq), "level3", split="validation")["id"]
    monkeypatch.setenv(module.ENV, str(tmp_path / "nowhere"))
    with pytest.raises(module.TaskError, match="cannot load"):
        module.load("level3")
    # metadata wins over the environment; a corpus without validation takes its first other split as dev
    folder = tmp_path / "two"
    generate("mcq", folder, levels=[1], sizes={"train": 10, "test": 6}, seed=1)
    splits = module.load("level1", corpus=str(folder))
    assert len(splits["test"]) == 6 and len(splits["dev"]) == 10


def test_generation_tasks_score_with_the_project_scorers(tmp_path):
    module = zoo_tasks()
    generate("tinysql", tmp_path / "sql", levels=[2], sizes={"train": 4, "test": 4}, seed=2)
    generate("multmath", tmp_path / "mm", levels=[(2, 2)], sizes={"train": 4, "test": 4}, seed=2)
    for record in datasets.load_dataset(str(tmp_path / "sql"), split="test"):
        assert module.tinysql_prompt(record) == record["prompt"] and module.tinysql_target(record) == record["completion"]
        right = module.tinysql_results(record, [" " + record["sql_statement"] + "\n"])
        assert right == {"exact_match": 1.0, "normalized_match": 1.0, "execution_match": 1.0, "clause_credit": 1.0}
        flipped = record["sql_statement"].replace(" ASC", " D_SC").replace(" DESC", " ASC").replace(" D_SC", " DESC")
        wrong = module.tinysql_results(record, [flipped])
        assert wrong["exact_match"] == wrong["normalized_match"] == wrong["execution_match"] == 0.0
    for record in datasets.load_dataset(str(tmp_path / "mm"), split="test"):
        prompt, target = module.multmath_prompt(record), module.multmath_target(record)
        assert prompt == record["prompt"] + " ||" and prompt + " " + target == record["text"].replace("||", " || ")
        assert module.multmath_results(record, [" " + target]) == {"exact_match": 1.0, "digit_accuracy": 1.0}
        first = str((int(record["answer"][0]) + 1) % 10)
        off = module.multmath_results(record, [f" #### {first}{record['answer'][1:]}"])
        assert off["exact_match"] == 0.0 and off["digit_accuracy"] == 1 - 1 / len(record["answer_digits"])
        assert module.multmath_results(record, [record["answer"]])["exact_match"] == 0.0  # no #### marker


# --- with lm-evaluation-harness installed (pip install -e '.[lm-eval]') --------------------------------------


def lm_eval_tasks(monkeypatch, corpus):
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager, get_task_dict

    monkeypatch.setenv("INTERP_ZOO_CORPUS", str(corpus))
    return lm_eval, TaskManager(include_path=str(tasks_path()), include_defaults=False), get_task_dict


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # get_task_dict: kept, it works across lm-eval 0.4.x
def test_lm_eval_builds_the_records_prompts_and_few_shot_contexts(mcq, monkeypatch):
    _, manager, get_task_dict = lm_eval_tasks(monkeypatch, mcq)
    assert {f"interp_zoo_mcq_level{n}" for n in range(1, 5)} | {"interp_zoo_multmath"} <= set(manager.all_tasks)
    for level in (2, 4):
        task = get_task_dict([f"interp_zoo_mcq_level{level}"], manager)[f"interp_zoo_mcq_level{level}"]
        task.build_all_requests()
        test = datasets.load_dataset(str(mcq), f"level{level}", split="test")
        by_doc = {}
        for instance in task.instances:
            by_doc.setdefault(instance.doc_id, []).append(instance.arguments)
        for n, record in enumerate(test):
            assert by_doc[n] == [(record["prompt"], " " + label) for label in record["labels"]]
        task.set_config("num_fewshot", 2)
        task.build_all_requests(rewrite_requests_cache=True)
        dev = datasets.load_dataset(str(mcq), f"level{level}", split="validation")
        shots = "".join(f"{r['prompt']} {r['answer_label']}\n\n" for r in list(dev)[:2])
        assert task.instances[0].arguments[0] == shots + test[0]["prompt"]


@pytest.fixture(scope="module")
def mcq_model(tmp_path_factory):
    """A tiny llama trained for a few steps on an mcq level-2 corpus (zoo-train's Python entry point)."""
    pytest.importorskip("lm_eval")
    import train

    root = tmp_path_factory.mktemp("lm-run")
    generate("mcq", root / "q2", levels=[2], sizes={"train": 320, "validation": 16, "test": 48}, seed=11)
    config = train.RunConfig(data=root / "q2", out=root / "run", preset="tiny", arch="llama", max_steps=40,
                             batch_size=16, progress=False)
    return root / "q2", root / "run", train.run(config)


def test_lm_eval_accuracy_equals_zoo_eval(mcq_model, monkeypatch, cli):
    corpus, run, trained = mcq_model
    lm_eval, manager, _ = lm_eval_tasks(monkeypatch, corpus)
    from train.cli import eval_main

    status, out, _ = cli(eval_main, "--model", run, "--data", corpus, "--split", "test", "--no-progress")
    zoo = json.loads(out)
    assert status == 0 and zoo["n"] == 48 and zoo["label_accuracy"] == trained["label_accuracy"]
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={run}", tasks=["interp_zoo_mcq_level2"],
                                      task_manager=manager, device="cpu", batch_size=8, log_samples=True)
    got = results["results"]["interp_zoo_mcq_level2"]
    samples = sorted(results["samples"]["interp_zoo_mcq_level2"], key=lambda s: s["doc_id"])
    assert len(samples) == 48 and got["acc,none"] == zoo["label_accuracy"]
    # item by item: lm-eval's probability of the gold label among the four is zoo-eval's for that record
    ours = per_record_gold_probability(run, datasets.load_dataset(str(corpus), "level2", split="test"))
    theirs = [softmax_gold(s) for s in samples]
    assert max(theirs) - min(theirs) > 1e-3  # the records differ, so agreeing is not a coincidence of constants
    assert all(math.isclose(a, b, abs_tol=2e-5) for a, b in zip(theirs, ours)), list(zip(theirs, ours))
    assert math.isclose(sum(theirs) / len(theirs), zoo["gold_probability"], abs_tol=2e-5)
    print(f"\nlm_eval acc {got['acc,none']:.4f} = zoo-eval label_accuracy {zoo['label_accuracy']:.4f}; gold probability "
          f"{sum(theirs) / len(theirs):.6f} vs {zoo['gold_probability']:.6f}, per item {min(theirs):.4f}-{max(theirs):.4f}")


def per_record_gold_probability(run: Path, records) -> list[float]:
    """zoo-eval's gold probability of each record alone (train.evaluate.choice_scores on one record)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cards.generator import get
    from train.evaluate import choice_scores

    model, tokenizer = AutoModelForCausalLM.from_pretrained(run), AutoTokenizer.from_pretrained(run)
    view = get("mcq").view
    return [choice_scores(model, tokenizer, [r], view, 8, False)["gold_probability"] for r in records]


def softmax_gold(sample: dict) -> float:
    logps = [float(resp[0]) for resp in sample["filtered_resps"]]
    top = max(logps)
    weights = [math.exp(x - top) for x in logps]
    return weights[sample["doc"]["answer"]] / sum(weights)
