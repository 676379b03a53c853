"""`zoo build` and the shipped tier: a two-row recipe of tiny models built into temporary folders
(ZOO_RECIPE, ZOO_SHIPPED, --registry), then listed, downloaded offline, tampered with and served;
the build's resume decisions; the packaged recipe and registry against each other, the README and
the wheel."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from safetensors import safe_open

from cards import build, recipe, zoo
from conftest import one_line_error
from train.cli import train_parser

ROOT = Path(__file__).resolve().parents[1]
RECIPE = {
    "corpora": {"mm": "multmath-gen --digits 2x2 -n 300 --num-test 30 --seed 1"},
    "checkpoints": [
        {"name": "mm-tiny", "tier": "cpu", "corpus": "mm",
         "train": "--preset tiny --max-steps 3 --batch-size 8 --eval-samples 4"},
        {"name": "mm-tiny-aux", "tier": "cpu", "corpus": "mm",
         "train": "--preset tiny --max-steps 3 --batch-size 8 --eval-samples 4 --objective aux"},
        {"name": "mm-big", "tier": "gpu", "corpus": "mm", "train": "--preset 33m --max-steps 3"},
    ],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The cpu tier of RECIPE built once (two runs at once); returns (root, registry, environment)."""
    root = tmp_path_factory.mktemp("build")
    (root / "recipe.json").write_text(json.dumps(RECIPE))
    env = {"ZOO_RECIPE": str(root / "recipe.json"), "ZOO_SHIPPED": str(root / "shipped")}
    registry = root / "zoo.json"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        assert zoo.main(["--registry", str(registry), "build", "--build-dir", str(root / "b"), "--jobs", "2",
                         "--no-progress"]) == 0
    return root, registry, env


@pytest.fixture
def in_build(built, monkeypatch):
    """`built`, with its recipe and shipped folder in the environment for this test."""
    for key, value in built[2].items():
        monkeypatch.setenv(key, value)
    return built


def test_build_ships_float16_releases_and_registers_what_they_measure(in_build):
    root, registry, _ = in_build
    entries = {e["name"]: e for e in zoo.read_registry(registry)}
    assert sorted(entries) == ["mm-tiny", "mm-tiny-aux"]  # the gpu row is not built by default
    for name, entry in entries.items():
        shipped = root / "shipped" / name
        assert entry["shipped"] and not entry["published"] and entry["repo_id"] == f"interp-zoo/{name}"
        assert not (shipped / "log.jsonl").exists() and not (shipped / "checkpoints").exists()
        assert json.loads((shipped / "config.json").read_text())["dtype"] == "float16"
        with safe_open(shipped / "model.safetensors", "pt") as f:
            assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}
        metrics = json.loads((shipped / "metrics.json").read_text())
        assert entry["metrics"]["exact_match"] == round(metrics["exact_match"], 4) and entry["metrics"]["n"] == 30
        assert zoo.verify(shipped, entry) == shipped  # sha256 of the shipped files
        train = shlex.split(entry["train_command"])
        assert train[train.index("--out") + 1] == name and train[train.index("--data") + 1] == "mm"
        card = (shipped / "README.md").read_text()
        assert f"# {name}" in card and card.count("## The objectives compared") == 1 and "stored in float16" in card
        contrast = card[card.index(build.CONTRAST[0]):]
        assert "`mm-tiny` | sft |" in contrast and "`mm-tiny-aux` | aux |" in contrast  # each card, both runs
    assert "aux_heads.safetensors" in entries["mm-tiny-aux"]["files"]


def test_a_second_build_does_nothing_and_never_trains(in_build, monkeypatch, capsys):
    root, registry, _ = in_build
    monkeypatch.setattr(build, "train", lambda *a, **k: pytest.fail("a built row was trained again"))
    assert zoo.main(["--registry", str(registry), "build", "--build-dir", str(root / "b")]) == 0
    assert "nothing to do (2 checkpoints up to date)" in capsys.readouterr().err


def test_a_tampered_shipped_file_stops_build_and_download(in_build, tmp_path, cli):
    root, registry, _ = in_build
    copy = tmp_path / "shipped"
    subprocess.run(["cp", "-r", str(root / "shipped"), str(copy)], check=True)
    weights = copy / "mm-tiny" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-2] + b"\0\0")
    env = {"ZOO_SHIPPED": str(copy), "HF_HOME": str(tmp_path / "hf")}
    for command in (["download", "mm-tiny"], ["build", "--only", "mm-tiny", "--build-dir", str(tmp_path / "b")]):
        done = subprocess.run([sys.executable, "-m", "cards.zoo", "--registry", str(registry), *command],
                              capture_output=True, text=True, env={**os.environ, **env, "HF_HUB_OFFLINE": "1"})
        assert "sha256 mismatch for model.safetensors" in one_line_error(done.returncode, done.stderr)


def test_download_offline_gets_the_shipped_copy_and_from_pretrained_loads_it(in_build, tmp_path):
    root, registry, env = in_build
    done = subprocess.run([sys.executable, "-m", "cards.zoo", "--registry", str(registry), "download", "mm-tiny",
                           "--local-dir", str(tmp_path / "got")], capture_output=True, text=True,
                          env={**os.environ, **env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == tmp_path / "got" and "verified" in done.stderr
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "got")
    assert model.config.dtype == "float16" or str(model.dtype) == "torch.float16"


def test_an_unbuilt_row_is_listed_and_refused_by_download(in_build, cli):
    root, registry, _ = in_build
    status, out, err = cli(zoo.main, "--registry", registry, "list", "--json")
    items = {json.loads(line)["name"]: json.loads(line) for line in out.splitlines()}
    assert status == 0 and set(items) == {"mm-tiny", "mm-tiny-aux", "mm-big"}
    assert items["mm-tiny"]["available"] == "shipped" and items["mm-tiny"]["metrics"]["n"] == 30
    assert items["mm-big"] == {"name": "mm-big", "task": "multmath", "level": "2x2", "objective": "sft",
                               "preset": "33m", "parameters": None, "metrics": {}, "available": "not built",
                               "tier": "gpu", "build": "zoo build --only mm-big"}
    status, out, err = cli(zoo.main, "--registry", registry, "download", "mm-big")
    assert one_line_error(status, err) == ("zoo: error: mm-big is not built yet (a gpu-tier recipe row): "
                                           "`zoo build --only mm-big` makes it\n")
    status, out, err = cli(zoo.main, "--registry", registry, "list", "--markdown")
    assert "| `mm-tiny` | multmath | 2x2 | sft | tiny |" in out and "`zoo build --only mm-big`" in out


def test_serve_shipped_lets_from_pretrained_load_over_http(in_build, tmp_path):
    pytest.importorskip("olah")
    from cards import hub

    root, registry, env = in_build
    port = hub.free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    server = subprocess.Popen([sys.executable, "-m", "cards.zoo", "--registry", str(registry), "serve", "--shipped",
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**clean, **env})
    try:
        lines = [server.stdout.readline(), server.stdout.readline()]
        assert lines[1].strip() == f"export HF_ENDPOINT=http://127.0.0.1:{port}", (lines, server.stderr.read())
        code = ("from transformers import AutoModelForCausalLM as M; "
                "m = M.from_pretrained('interp-zoo/mm-tiny'); print(sum(p.numel() for p in m.parameters()))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              env={**clean, "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": str(tmp_path / "h"),
                                   "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
        assert done.returncode == 0, done.stderr[-2000:]
        assert int(done.stdout.split()[-1]) == zoo.find("mm-tiny", registry)["parameters"]
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- the build's decisions, without training ---------------------------------------------------------


def test_a_run_with_checkpoints_is_resumed_and_a_broken_one_started_over(tmp_path, monkeypatch):
    row = recipe.Row("r", "cpu", "c", "multmath-gen --digits 2x2", "--preset tiny")
    calls = []
    monkeypatch.setattr(build.subprocess, "run", lambda argv, **k: calls.append((argv, k["env"]))
                        or subprocess.CompletedProcess(argv, 0))
    out = tmp_path / "runs" / "r"
    (out / "checkpoints" / "step-4").mkdir(parents=True)
    build.train(row, tmp_path, 1, rebuild=False, show=False)
    (out / "checkpoints" / "step-4").rmdir()
    build.train(row, tmp_path, 1, rebuild=False, show=False)
    assert [argv[-2] for argv, _ in calls] == ["--resume", "--overwrite"]  # (--no-progress follows)
    assert calls[0][1]["OMP_NUM_THREADS"] == "1"
    (out / "metrics.json").write_text("{}")
    (out / "training_args.json").write_text("{}")
    build.train(row, tmp_path, 1, rebuild=False, show=False)
    assert len(calls) == 2  # finished: kept
    build.train(row, tmp_path, 1, rebuild=True, show=False)
    assert calls[-1][0][-2] == "--overwrite"


def test_progress_lines_of_runs_trained_at_once_stay_whole(monkeypatch):
    class SlowStream:  # yields to the other threads inside each write, as a busy terminal would
        def __init__(self):
            self.text = ""

        def write(self, chunk):
            time.sleep(0.0005)
            self.text += chunk

        def flush(self):
            pass

    stream = SlowStream()
    monkeypatch.setattr(build.sys, "stderr", stream)

    def run(n):
        for i in range(30):
            build.say(f"run {n} step {i}")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = stream.text.splitlines()
    assert len(lines) == 120 and all(re.fullmatch(r"zoo build: run \d step \d+", line) for line in lines)


@pytest.mark.parametrize("change, fault", [
    (lambda r: r["checkpoints"].append(dict(r["checkpoints"][0])), "a second row has this name"),
    (lambda r: r["checkpoints"][0].update(corpus="nope"), "corpus 'nope' is not in corpora"),
    (lambda r: r["checkpoints"][0].update(tier="tpu"), "tier 'tpu' is not one of cpu, gpu"),
    (lambda r: r["checkpoints"][0].update(train="--preset tiny --out x"), "--out is zoo build's to decide"),
    (lambda r: r["corpora"].update(mm="rm -rf /"), "the corpus command does not start with"),
])
def test_a_bad_recipe_is_one_line(tmp_path, cli, monkeypatch, change, fault):
    bad = json.loads(json.dumps(RECIPE))
    change(bad)
    (tmp_path / "r.json").write_text(json.dumps(bad))
    monkeypatch.setenv("ZOO_RECIPE", str(tmp_path / "r.json"))
    status, out, err = cli(zoo.main, "build", "--build-dir", tmp_path / "b")
    assert fault in one_line_error(status, err) and not (tmp_path / "b").exists()


def test_selection_errors_name_what_exists(cli, tmp_path):
    status, out, err = cli(zoo.main, "build", "--only", "tinysql-l1-nan", "--build-dir", tmp_path)
    assert one_line_error(status, err).startswith("zoo: error: --only tinysql-l1-nan: not a recipe row (closest: "
                                                  "tinysql-l1-nano")
    status, out, err = cli(zoo.main, "build", "--task", "chess", "--build-dir", tmp_path)
    tasks = ", ".join(sorted({r.task for r in recipe.read_recipe()}))
    assert "mcq" in tasks and f"--task chess: the recipe's tasks are {tasks}" in one_line_error(status, err)


# --- the packaged recipe and registry -----------------------------------------------------------------


def test_every_packaged_row_is_a_valid_zoo_train_command():
    rows = recipe.read_recipe()
    assert {r.tier for r in rows} == {"cpu", "gpu"}
    for row in rows:
        args = train_parser().parse_args(row.train_argv(Path("corpus"), Path("out")))
        assert args.preset == row.preset or args.base
    gpu = {(r.preset, r.level) for r in rows if r.tier == "gpu" and r.task == "tinysql"}
    assert gpu == {(p, f"level{k}") for p in ("33m", "0.5b", "1b") for k in range(1, 6)}


def test_packaged_registry_entries_are_recipe_rows_shipped_intact():
    rows = {r.name: r for r in recipe.read_recipe()}
    for e in zoo.read_registry():
        row = rows[e["name"]]
        assert e["corpus"]["command"] and build.without_out(e["corpus"]["command"]) == shlex.split(row.corpus_command)
        train = shlex.split(e["train_command"])
        assert train[0] == "zoo-train" and train[train.index("--data") + 1] == row.corpus
        assert train[train.index("--out") + 1] == e["name"] and e["level"] == e["corpus"]["config"] == row.level
        assert (e["task"], e["objective"], e["preset"]) == (row.task, row.objective, row.preset)
        if row.tier == "cpu":
            assert e["shipped"] and zoo.verify(ROOT / "zoo" / e["name"], e)


def test_readme_results_table_is_the_registry_listing(capsys):
    assert zoo.main(["list", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    assert table in (ROOT / "README.md").read_text(), "README results table is stale: zoo list --markdown"


def test_the_shipped_tier_stays_out_of_the_wheel_and_under_100_mb():
    text = (ROOT / "pyproject.toml").read_text()
    assert "zoo" not in text.split("packages = [")[1].split("]")[0]
    assert '"recipe.json"' in text
    size = sum(f.stat().st_size for f in (ROOT / "zoo").rglob("*") if f.is_file()) if (ROOT / "zoo").exists() else 0
    assert size <= 100 * 2**20
