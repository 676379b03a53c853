"""The zoo end to end against a real Hub-API server: olah, started by `zoo serve` on a free loopback
port over a temporary hub directory that `zoo publish` fills with a tiny checkpoint and a small corpus.
Clients run in subprocesses (huggingface_hub reads HF_ENDPOINT at import) with a temporary HF_HOME;
nothing reaches outside 127.0.0.1. Also: the registry's schema check, what `zoo download` refuses to
verify, what a failed publish leaves untouched, and HTTP ranges through the server."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import datasets
import huggingface_hub
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard, ModelCard

from cards import hub, zoo
from cards.errors import IntegrityError, UsageError
from conftest import one_line_error
from train.cli import train_main
from train.manifest import RunManifest

pytest.importorskip("olah")

CLIENT = textwrap.dedent("""
    import json, os, sys
    import datasets, torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from cards import zoo

    out = {}
    model = AutoModelForCausalLM.from_pretrained("org/tiny", revision="v1")
    tokenizer = AutoTokenizer.from_pretrained("org/tiny", revision="v1")
    out["from_pretrained"] = [type(model).__name__, sum(p.double().sum().item() for p in model.parameters()),
                              tokenizer("1 2 * 3 4").input_ids]
    AutoTokenizer.from_pretrained("org/tiny")  # no revision: optional files missing from the repo are 404s
    from huggingface_hub import HfApi
    out["model_info"] = HfApi().model_info("org/tiny").sha
    model, tokenizer = zoo.load("tiny-test")
    out["load"] = [type(model).__name__, sum(p.double().sum().item() for p in model.parameters())]
    corpus = datasets.load_dataset("org/mm", "2x2", cache_dir=sys.argv[1])
    out["rows"] = {split: corpus[split].to_list() for split in corpus}
    big = iter(datasets.load_dataset("org/big", split="train", streaming=True))  # reads the footer by range
    out["streamed"] = [next(big)["id"] for _ in range(3)]
    big.close()  # the stream's reader stops here, not in interpreter teardown
    print(json.dumps(out), flush=True)
    os._exit(0)  # a third-party thread still alive at teardown can abort the process (seen once in CI: SIGABRT)
""")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="module")
def folders(root, corpora):
    """A small corpus (the session's multmath 2x2) and a tiny checkpoint trained on it."""
    corpus, run = corpora / "mm", root / "ck"
    assert train_main(["--data", str(corpus), "--preset", "tiny", "--max-steps", "3", "--batch-size", "8",
                       "--eval-samples", "4", "--no-progress", "--out", str(run)]) == 0
    return corpus, run


@pytest.fixture(scope="module")
def big(root):
    """A corpus whose one parquet file (6 MB, incompressible) is larger than a streaming reader's block."""
    folder = root / "big"
    (folder / "data").mkdir(parents=True)
    rng = random.Random(0)
    table = pa.table({"id": list(range(3000)), "blob": [rng.randbytes(2000) for _ in range(3000)]})
    pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet", row_group_size=500)
    (folder / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                      "    path: data/train-*\n---\n# big\n")
    return folder


@pytest.fixture(scope="module")
def hub_dir(root, folders, big):
    corpus, run = folders
    hub_dir = root / "hub"
    assert zoo.main(["publish", str(run), "--repo-id", "org/tiny", "--hub-dir", str(hub_dir), "--tag", "v1",
                     "--dataset-repo-id", "org/mm"]) == 0
    assert zoo.main(["publish", str(corpus), "--repo-id", "org/mm", "--hub-dir", str(hub_dir), "--tag", "v1"]) == 0
    assert zoo.main(["publish", str(big), "--repo-id", "org/big", "--hub-dir", str(hub_dir)]) == 0
    return hub_dir


@pytest.fixture(scope="module")
def registry(root, folders):
    corpus, run = folders
    entry = zoo.entry_from_folder(run, "tiny-test", "org/tiny", revision="v1", published=True)
    return zoo.write_registry([entry], root / "zoo.json")


@pytest.fixture(scope="module")
def server(hub_dir):
    """`zoo serve` in a subprocess; stopped with Ctrl-C (SIGINT) at the end, which must free the port."""
    port = hub.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cards.zoo", "serve", str(hub_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_hermetic(os.environ))
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[1].strip() == f"export HF_ENDPOINT=http://127.0.0.1:{port}", (lines, proc.stderr.read())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0 and hub.port_is_free(port)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def _hermetic(environ) -> dict:
    env = {k: v for k, v in environ.items() if not k.startswith(("HF_", "HUGGING_FACE_")) and k != "ZOO_REGISTRY"}
    return {**env, "HF_HUB_DISABLE_TELEMETRY": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@pytest.fixture(scope="module")
def client_env(root, server, registry):
    home = root / "hf-home"
    return {**_hermetic(os.environ), "HF_ENDPOINT": server, "HF_HOME": str(home),
            "HF_DATASETS_CACHE": str(home / "datasets"), "ZOO_REGISTRY": str(registry)}


def zoo_cli(env, *args):
    return subprocess.run([sys.executable, "-m", "cards.zoo", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def client(root, client_env):
    """One client process: from_pretrained, cards.zoo.load and load_dataset through the server."""
    done = subprocess.run([sys.executable, "-c", CLIENT, str(root / "datasets-cache")], capture_output=True,
                          text=True, env=client_env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def weight_sum(run: Path) -> float:
    from transformers import AutoModelForCausalLM

    return sum(p.double().sum().item() for p in AutoModelForCausalLM.from_pretrained(run).parameters())


# --- cards and registry ------------------------------------------------------------------------------


def test_cards_parse_back_with_hub_card_data_classes(folders, registry):
    corpus, run = folders
    data = DatasetCard.load(corpus / "README.md").data
    assert [c["config_name"] for c in data.configs] == ["2x2"]
    assert data.license == "cc-by-4.0" and data.size_categories == ["n<1K"] and data.task_categories
    model = ModelCard.load(run / "README.md").data
    assert "model-index" in model.to_dict() and model.license == "apache-2.0" and model.tags
    metrics = json.loads((run / "metrics.json").read_text())
    results = {r.metric_type: r.metric_value for r in model.eval_results}
    assert results == {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
    entry = zoo.read_registry(registry)[0]
    assert {k: v for k, v in entry["metrics"].items() if isinstance(v, float)} == results
    assert entry["metrics"]["digit_accuracy_by_position"] == [round(x, 4) for x in metrics["digit_accuracy_by_position"]]
    assert entry["parameters"] == model.interp_zoo["parameters"]["total"]
    assert entry["files"] == {"model.safetensors": zoo.sha256(run / "model.safetensors")}


def test_registry_entry_comes_from_the_run_manifest(folders, registry):
    corpus, run = folders
    entry, manifest = zoo.read_registry(registry)[0], RunManifest.from_folder(run)
    assert (entry["task"], entry["level"], entry["preset"], entry["objective"]) == ("multmath", "2x2", "tiny", "sft")
    assert entry["corpus"] == {"config": "2x2", "command": manifest.corpus_command}
    assert entry["corpus"]["command"] == "multmath-gen --digits 2x2 -n 800 --num-valid 40 --num-test 40 --out mm"
    train = shlex.split(entry["train_command"])
    assert train[train.index("--data") + 1] == "mm" and train[train.index("--out") + 1] == "tiny-test"
    assert entry["architecture"] == manifest.architecture and entry["parameters"] == manifest.parameters["total"]


def test_list_filters_and_info(registry, tmp_path, capsys):
    assert zoo.main(["--registry", str(registry), "list", "--task", "multmath", "--level", "2x2", "--size", "tiny"]) == 0
    listed = capsys.readouterr().out
    assert "tiny-test" in listed and "exact_match " in listed
    capsys.readouterr()
    assert zoo.main(["--registry", str(registry), "list", "--task", "tinysql"]) == 2  # nothing matches
    out, err = capsys.readouterr()
    assert out == "" and err == "zoo: error: no checkpoint matches --task tinysql (known tasks: multmath)\n"
    assert zoo.main(["--registry", str(registry), "info", "tiny-test"]) == 0
    out = capsys.readouterr().out
    assert "org/tiny @ v1 (published)" in out and zoo.read_registry(registry)[0]["files"]["model.safetensors"] in out
    assert "(tiny preset)" in out


def test_info_names_the_base_of_a_fine_tuned_entry(tmp_path, capsys):
    registry = tmp_path / "zoo.json"
    entry = an_entry(preset=None, train_command="zoo-train --data q --out m --base m-nano --max-steps 10")
    zoo.write_registry([entry], registry)
    assert zoo.main(["--registry", str(registry), "info", "m"]) == 0
    assert "(fine-tuned from m-nano)" in capsys.readouterr().out


def test_a_fine_tuned_entry_has_the_size_of_its_base(tmp_path, capsys):
    registry = tmp_path / "zoo.json"
    tune = "zoo-train --data q --out {} --base {} --max-steps 10"
    entries = [an_entry(name="m-nano", preset="nano"), an_entry(name="m-long", preset=None,
               train_command=tune.format("m-long", "m-nano")), an_entry(name="m-longer", preset=None,
               train_command=tune.format("m-longer", "m-long")), an_entry(name="loop", preset=None,
               train_command=tune.format("loop", "loop"))]
    zoo.write_registry(entries, registry)
    assert zoo.main(["--registry", str(registry), "list", "--size", "nano", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((e["name"], e["preset"]) for e in listed) == [("m-long", "nano"), ("m-longer", "nano"), ("m-nano", "nano")]
    assert zoo.main(["--registry", str(registry), "list"]) == 0
    assert re.search(r"^loop .* - ", capsys.readouterr().out, re.M)  # a base that is itself: no size, no hang


def test_contrast_tables_compare_only_runs_trained_from_scratch():
    def run(name, objective, base=None):
        command = f"zoo-train --data mm --out {name}" + (f" --base {base}" if base else "")
        return an_entry(name=name, task="multmath", level="3x3", objective=objective, train_command=command,
                        metrics={"split": "test", "n": 8, "exact_match": 0.5, "digit_accuracy": 0.9})

    entries = [run("m-aux", "aux"), run("m-nocot", "nocot"), run("m-aux-long", "aux", base="m-aux"),
               run("m-aux-lnfree", "remove-norm", base="m-aux")]
    [table] = zoo.contrast_tables(entries)
    assert "`m-aux` | aux" in table and "`m-nocot` | nocot" in table
    assert "m-aux-long" not in table and "m-aux-lnfree" not in table
    assert zoo.contrast_tables(entries[:1] + entries[2:]) == []  # one objective from scratch: nothing to compare


def an_entry(**changes) -> dict:
    """A valid registry entry, with `changes`."""
    entry = {"name": "m", "repo_id": "org/m", "revision": None, "published": False, "task": "mcq", "level": "level1",
             "preset": "tiny", "objective": "sft", "architecture": "gpt2", "parameters": 100_000,
             "corpus": {"config": "level1", "command": "mcq-gen --out q"}, "train_command": "zoo-train --out m",
             "metrics": {"split": "test", "n": 8, "label_accuracy": 0.5, "gold_probability": 0.4},
             "files": {"model.safetensors": "0" * 64}, "shipped": False,
             "run": {"steps": 3, "seconds": 1.0, "hardware": "CPU"}}
    return {**entry, **changes}


def test_headline_is_exact_match_else_the_first_score(tmp_path, capsys):
    zoo.write_registry([an_entry()], tmp_path / "zoo.json")
    assert zoo.main(["--registry", str(tmp_path / "zoo.json"), "list"]) == 0
    assert "label_accuracy 0.500" in capsys.readouterr().out


def test_register_reads_the_entry_from_the_run(folders, tmp_path, capsys):
    corpus, run = folders
    reg = tmp_path / "zoo.json"
    args = ["--registry", str(reg), "register", str(run), "--name", "x", "--repo-id", "org/x"]
    assert zoo.main(args) == 0 and zoo.main(args) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("zoo: replaced x")
    assert [e["name"] for e in zoo.read_registry(reg)] == ["x"] and not zoo.read_registry(reg)[0]["published"]
    assert zoo.main([*args, "--published"]) == 2  # a published entry needs a pinned revision
    assert zoo.main(["--registry", str(reg), "register", str(corpus), "--name", "x", "--repo-id", "org/x"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 2


def test_a_corrupt_registry_is_an_integrity_error(tmp_path, capsys):
    (tmp_path / "zoo.json").write_text('{"entries": []}')
    with pytest.raises(IntegrityError, match="is not a zoo registry"):
        zoo.read_registry(tmp_path / "zoo.json")
    assert zoo.main(["--registry", str(tmp_path / "zoo.json"), "list"]) == 2
    assert capsys.readouterr().err.startswith("zoo: error: registry ")


@pytest.mark.parametrize("text, fault", [
    ("[1, 2]", "expected an object"),
    (json.dumps({"checkpoints": [{k: v for k, v in an_entry().items() if k != "name"}]}), "entry 0 lacks name"),
    (json.dumps({"checkpoints": [{k: v for k, v in an_entry().items() if k != "files"}]}), "entry 0 (m) lacks files"),
    (json.dumps({"checkpoints": [an_entry(repo_id="../../x")]}), "repo_id '../../x' is not ORG/NAME"),
    (json.dumps({"checkpoints": [an_entry(parameters="many")]}), "parameters has the wrong type"),
    (json.dumps({"checkpoints": [an_entry(published=True)]}), "published but names no pinned revision"),
    (json.dumps({"checkpoints": [an_entry(files={"../dl1/model.safetensors": "0" * 64})]}), "not a plain relative"),
    (json.dumps({"checkpoints": [an_entry(files={"/abs/model.safetensors": "0" * 64})]}), "not a plain relative"),
    (json.dumps({"checkpoints": [an_entry(files={"sub\\model.safetensors": "0" * 64})]}), "not a plain relative"),
    (json.dumps({"checkpoints": [an_entry(files={"model.safetensors": "abc"})]}), "not 64 hex digits"),
])
def test_a_malformed_registry_is_one_line(tmp_path, cli, text, fault):
    (tmp_path / "zoo.json").write_text(text)
    for command in (["list"], ["info", "m"], ["download", "m"]):
        status, out, err = cli(zoo.main, "--registry", tmp_path / "zoo.json", *command)
        assert one_line_error(status, err).startswith(f"zoo: error: registry {tmp_path / 'zoo.json'} is not a zoo registry")
        assert fault in err and out == ""


def test_a_registry_that_is_a_folder_is_a_usage_error(tmp_path, cli):
    status, _, err = cli(zoo.main, "--registry", tmp_path, "list")
    assert one_line_error(status, err) == f"zoo: error: --registry {tmp_path}: not a registry file (a folder?)\n"


def test_verify_checks_every_weight_file_of_the_download_and_nothing_outside_it(folders, tmp_path):
    corpus, run = folders
    good, bad = tmp_path / "dl1", tmp_path / "dl2"
    for folder in (good, bad):
        folder.mkdir()
        shutil.copy(run / "model.safetensors", folder)
    (bad / "model.safetensors").write_bytes(b"tampered")
    escaping = an_entry(files={"../dl1/model.safetensors": zoo.sha256(good / "model.safetensors")})
    with pytest.raises(IntegrityError, match="not a file inside the download"):
        zoo.verify(bad, escaping)  # the tampered weights were never checked
    listed = an_entry(files={"model.safetensors": zoo.sha256(good / "model.safetensors")})
    assert zoo.verify(good, listed) == good
    shutil.copy(run / "model.safetensors", good / "extra.safetensors")
    with pytest.raises(IntegrityError, match=r"does not list \(extra.safetensors\)"):
        zoo.verify(good, listed)


def test_is_published_and_info_card_answer_from_the_registry(registry, tmp_path, cli, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("asked the Hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    reg = zoo.write_registry([an_entry(name="draft")], tmp_path / "zoo.json")
    assert zoo.is_published("tiny-test", registry) and not zoo.is_published("draft", reg)
    assert not zoo.is_published("nosuch", reg) and zoo.find("nosuch", reg) is None
    status, out, err = cli(zoo.main, "--registry", reg, "info", "draft", "--card")
    assert one_line_error(status, err) == ("zoo: error: draft is not published (the registry marks it unpublished): "
                                           "no card to fetch\n") and out == ""


def test_the_hub_module_loads_without_torch():
    check = "import sys, cards.hub, cards.zoo; assert 'torch' not in sys.modules, 'torch'"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_unknown_name_is_one_line_with_the_closest_names(registry, capsys):
    assert zoo.main(["--registry", str(registry), "download", "tiny-tst"]) == 2
    err = capsys.readouterr().err
    assert err == "zoo: error: unknown checkpoint 'tiny-tst'; closest: tiny-test\n"


# --- publishing --------------------------------------------------------------------------------------


def git(repo: Path, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_publishing_the_same_folder_again_makes_no_commit(hub_dir, folders, capsys):
    corpus, run = folders
    repo = hub_dir / "models" / "org" / "tiny"
    head = git(repo, "rev-parse", "HEAD")
    assert zoo.main(["publish", str(run), "--repo-id", "org/tiny", "--hub-dir", str(hub_dir), "--tag", "v1",
                     "--dataset-repo-id", "org/mm"]) == 0
    assert "no new commit" in capsys.readouterr().out
    assert git(repo, "rev-list", "--count", "HEAD") == "1" and git(repo, "rev-parse", "v1^{commit}") == head
    assert set(git(repo, "ls-files").split()) == {str(p) for p in hub.published_files(run)}
    assert (hub_dir / "datasets" / "org" / "mm" / "data" / "2x2").is_dir()


def test_bad_publish_and_serve_input_is_one_line(hub_dir, folders, tmp_path, capsys):
    corpus, run = folders
    (tmp_path / "a-file").write_text("")
    assert zoo.main(["publish", str(tmp_path), "--repo-id", "org/x", "--hub-dir", str(hub_dir)]) == 2
    assert zoo.main(["publish", str(run), "--repo-id", "not-an-id", "--hub-dir", str(hub_dir)]) == 2
    assert zoo.main(["publish", str(run), "--repo-id", "org/x", "--hub-dir", str(tmp_path / "a-file")]) == 2
    assert zoo.main(["publish", str(run), "--repo-id", "org/x", "--hub-dir", str(tmp_path), "--tag", "a b"]) == 2
    assert zoo.main(["publish", str(corpus), "--repo-id", "org/x", "--hub-dir", str(tmp_path),
                     "--dataset-repo-id", "org/y"]) == 2  # only a checkpoint names its corpus
    assert zoo.main(["serve", str(tmp_path / "missing")]) == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        assert zoo.main(["serve", str(hub_dir), "--port", str(busy.getsockname()[1])]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 7 and all(line.startswith("zoo: error: ") for line in lines)
    assert lines[2] == f"zoo: error: --hub-dir {tmp_path / 'a-file'}: {tmp_path / 'a-file'} exists and is not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing written


def test_a_refused_tag_moves_nothing_and_a_tag_may_name_the_same_files(folders, tmp_path, capsys):
    corpus, run = folders
    repo = tmp_path / "hub" / "models" / "org" / "tiny"

    def publish(folder, *options):
        return zoo.main(["publish", str(folder), "--repo-id", "org/tiny", "--hub-dir", str(tmp_path / "hub"), *options])

    assert publish(run, "--tag", "v1") == 0
    head, files = git(repo, "rev-parse", "HEAD"), git(repo, "ls-files", "-s")
    tampered = tmp_path / "tampered"
    shutil.copytree(run, tampered)
    (tampered / "model.safetensors").write_bytes(b"tampered")
    capsys.readouterr()
    assert publish(tampered, "--tag", "v1") == 2
    assert capsys.readouterr().err.startswith("zoo: error: --tag v1: already names other files")
    assert git(repo, "rev-parse", "main") == head and git(repo, "ls-files", "-s") == files  # main did not move
    assert git(repo, "status", "--porcelain") == "" and (repo / "model.safetensors").read_bytes() != b"tampered"
    assert publish(tampered) == 0  # main moves, v1 stays
    assert publish(run, "--tag", "v1") == 0  # the files v1 names: accepted
    assert git(repo, "rev-parse", "v1") == head and git(repo, "rev-parse", "main^{tree}") == git(repo, "rev-parse", "v1^{tree}")
    assert git(repo, "rev-list", "--count", "main") == "3"


def test_publishing_to_an_endpoint_checks_the_tag_before_writing(folders, monkeypatch):
    corpus, run = folders
    calls = []

    def blob(path, data: bytes):  # a file as the Hub's tree lists it: its git blob id
        return SimpleNamespace(path=path, blob_id=hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(), lfs=None)

    published = {rel.as_posix(): (corpus / rel).read_bytes() for rel in hub.published_files(corpus)}
    published["README.md"] = hub.published_readme(corpus, "dataset", "org/mm").encode()
    tree = [blob(".gitattributes", b"*.parquet filter=lfs\n")] + [blob(p, d) for p, d in published.items()]

    class Api:
        def __init__(self, endpoint=None, token=None):
            self.endpoint = "http://hub.invalid"

        def list_repo_refs(self, repo_id, repo_type):
            return SimpleNamespace(tags=[SimpleNamespace(name="v1")])

        def list_repo_tree(self, repo_id, revision, recursive, repo_type):
            return tree

        def __getattr__(self, name):  # create_repo, create_commit, create_tag: writes
            return lambda *args, **kwargs: calls.append(name) or SimpleNamespace(oid="c0ffee")

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    assert hub.publish_to_endpoint(corpus, "org/mm", tag="v1") == "c0ffee"  # v1 names these files: no new tag
    assert calls == ["create_repo", "create_commit"]
    tree[-1] = blob(tree[-1].path, b"other bytes")
    with pytest.raises(UsageError, match="--tag v1: already names other files in org/mm"):
        hub.publish_to_endpoint(corpus, "org/mm", tag="v1")
    assert calls == ["create_repo", "create_commit"]  # nothing written


def test_published_cards_name_their_repositories(hub_dir, folders):
    corpus, run = folders
    dataset = DatasetCard(git(hub_dir / "datasets" / "org" / "mm", "show", "v1:README.md"))
    assert 'load_dataset("org/mm", "2x2")' in dataset.text and "path/to/this/folder" not in dataset.text
    assert 'load_dataset("path/to/this/folder", "2x2")' in (corpus / "README.md").read_text()  # the folder's own
    model = ModelCard(git(hub_dir / "models" / "org" / "tiny", "show", "v1:README.md"))
    assert model.data.datasets == ["org/mm"] and {r.dataset_name for r in model.data.eval_results} == {"org/mm"}
    assert {r.dataset_type for r in model.data.eval_results} == {"org/mm"} and "corpus `org/mm`" in model.text
    assert 'AutoModelForCausalLM.from_pretrained("org/tiny")' in model.text and "path/to/this" not in model.text
    assert ModelCard.load(run / "README.md").data.datasets == ["mm"]


# --- through the server --------------------------------------------------------------------------------


def test_download_verifies_and_from_pretrained_loads(hub_dir, folders, client_env, client, tmp_path):
    corpus, run = folders
    done = zoo_cli(client_env, "download", "tiny-test", "--local-dir", tmp_path / "got")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == tmp_path / "got" and "verified" in done.stderr
    assert zoo.sha256(tmp_path / "got" / "model.safetensors") == zoo.sha256(run / "model.safetensors")
    expected = weight_sum(run)
    assert client["from_pretrained"][0] == "GPT2LMHeadModel" and client["from_pretrained"][1] == pytest.approx(expected)
    assert client["load"] == ["GPT2LMHeadModel", pytest.approx(expected)]
    assert client["model_info"] == git(hub_dir / "models" / "org" / "tiny", "rev-parse", "v1^{commit}")


def test_load_dataset_through_the_server_returns_the_folder_rows(folders, client, tmp_path):
    corpus, run = folders
    local = datasets.load_dataset(str(corpus), "2x2", cache_dir=str(tmp_path / "cache"))
    assert set(client["rows"]) == set(local) == {"train", "validation", "test"}
    for split in local:
        assert client["rows"][split] == local[split].to_list()


def test_the_server_answers_range_requests(hub_dir, folders, server, client):
    corpus, run = folders
    file = sorted((corpus / "data" / "2x2").glob("train-*.parquet"))[0]
    data = file.read_bytes()
    url = f"{server}/datasets/org/mm/resolve/main/data/2x2/{file.name}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(span: str):
        try:
            with opener.open(urllib.request.Request(url, headers={"Range": span}), timeout=30) as answer:
                return answer.status, answer.headers.get("Content-Range"), answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Range"), b""

    size = len(data)
    assert get("bytes=-8") == (206, f"bytes {size - 8}-{size - 1}/{size}", data[-8:])
    assert get("bytes=0-3") == (206, f"bytes 0-3/{size}", b"PAR1")
    assert get("bytes=100-") == (206, f"bytes 100-{size - 1}/{size}", data[100:])
    assert get(f"bytes={size}-") == (416, f"bytes */{size}", b"")
    assert get("bytes=0-1,4-5") == (200, None, data)  # several ranges: the whole file, as a server may
    assert client["streamed"] == [0, 1, 2]  # load_dataset(..., streaming=True) of a 6 MB parquet file


def test_a_tampered_weight_file_is_rejected(hub_dir, folders, client_env, root, tmp_path):
    corpus, run = folders
    tampered = tmp_path / "tampered"
    shutil.copytree(run, tampered)
    weights = bytearray((tampered / "model.safetensors").read_bytes())
    weights[-1] ^= 1  # one bit of the last weight
    (tampered / "model.safetensors").write_bytes(bytes(weights))
    assert zoo.main(["publish", str(tampered), "--repo-id", "org/tiny", "--hub-dir", str(hub_dir)]) == 0
    for target in (["--local-dir", tmp_path / "got"], []):
        done = zoo_cli(client_env, "download", "tiny-test", "--revision", "main", *target)
        assert done.returncode == 2 and done.stdout == ""
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("zoo: error: tiny-test: sha256 mismatch for model.safetensors") and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tampered"]  # no half-written --local-dir


def test_unreachable_revision_is_one_line(client_env):
    done = zoo_cli(client_env, "download", "tiny-test", "--revision", "no-such-tag")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("zoo: error: cannot download org/tiny@no-such-tag from http://127.0.0.1:")


def test_a_reader_that_goes_away_is_not_a_traceback():
    proc = subprocess.Popen([sys.executable, "-m", "cards.zoo", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `zoo list | head -0`: closed before zoo writes
    error = proc.stderr.read()
    proc.wait()
    assert proc.returncode == 141 and error == b""
