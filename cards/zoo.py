"""The zoo: the registry of checkpoints and the `zoo` command.

The registry is `cards/zoo.json` (another file with `--registry PATH` or the environment variable
`ZOO_REGISTRY`). Each entry names a checkpoint, its Hub repository and pinned revision, what it was
trained on and how (task, level, preset, objective, parameter count, the generator and `zoo-train`
commands), its headline metrics, the sha256 of each weight file, and where it can be got
(`availability`): `shipped` (its files are in `zoo/<name>` of the source tree, `shipped_dir`),
`hub REVISION` (published), or `not built`. Entries are written by `zoo build` (`cards.build`, from
the recipe `cards/recipe.json`, `cards.recipe`) and `zoo register`, which read them from a finished
folder (its run manifest, `train.manifest.RunManifest`, metrics and weights), so no number in the
registry is typed by hand.

`published` stays false until the checkpoint is on the Hub at the pinned revision. The registry is
checked whenever it is read (`check_registry`): entries with every key of `FIELDS`, repo ids
ORG/NAME, and weight files named by plain relative names with their sha256.

Commands: `zoo list [--json | --markdown]` (the registry's entries and, with the packaged registry,
the recipe's rows not built yet; filters that match nothing are an error naming the known values),
`zoo info NAME [--card]`, `zoo download NAME` (the local Hub cache, then the shipped copy, then
snapshot_download from the configured endpoint; whatever the source every listed weight file must
have its sha256 and every `*.safetensors` must be listed), `zoo build`, `zoo publish FOLDER
--repo-id ORG/NAME [--tag V] [--dataset-repo-id ORG/CORPUS]` (`cards.hub`), `zoo serve [HUB_DIR]
[--shipped]` (olah over a local hub directory; `--shipped` publishes the shipped tier into it first),
`zoo register` and `zoo tasks-path` (the folder of the shipped lm-evaluation-harness tasks). In Python:
`cards.zoo.load(NAME)` returns `(model, tokenizer)`; `find(NAME)` and
`is_published(NAME)` answer from the registry alone, without the network.

Errors: `UsageError` for bad input, `IntegrityError` for a corrupt registry or a weight file whose
sha256 is not the registry's (or that it does not list), `ExternalError` when the endpoint fails.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Sequence

from cards import hub
from cards.card import with_option
from cards.cli import Parser, first_line, run
from cards.errors import ExternalError, IntegrityError, UsageError
from cards.hooked import load_hooked  # noqa: F401  (a TransformerLens model of NAME or DIR: cards.hooked)
from train.manifest import RunManifest


# --- the registry ----------------------------------------------------------------------------------


# The keys of a registry entry and the types of their values (None where a value may be missing).
FIELDS = {"name": str, "repo_id": str, "revision": (str, type(None)), "published": bool, "task": str,
          "level": (str, type(None)), "preset": (str, type(None)), "objective": str, "architecture": str,
          "parameters": (int, float), "corpus": dict, "train_command": str, "metrics": dict, "files": dict,
          "shipped": bool, "run": dict}
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SHIPPED = Path(__file__).resolve().parents[1] / "zoo"  # the shipped tier, in a source checkout (not in the wheel)


def shipped_dir() -> Path:
    """Where shipped checkpoints live: $ZOO_SHIPPED, else `zoo/` next to the packages of a source checkout."""
    return Path(os.environ.get("ZOO_SHIPPED") or SHIPPED)


def availability(entry: dict | None) -> str:
    """Where a checkpoint can be got: `shipped` (its files come with the project), `hub REVISION`, or
    `not built` (no entry, or neither)."""
    if entry is None:
        return "not built"
    if entry["shipped"]:
        return "shipped" + (f", hub {entry['revision']}" if entry["published"] else "")
    return f"hub {entry['revision']}" if entry["published"] else "not built"


def registry_path(path: str | os.PathLike | None = None) -> Path:
    if path or os.environ.get("ZOO_REGISTRY"):
        return Path(path or os.environ["ZOO_REGISTRY"])
    return Path(str(resources.files("cards") / "zoo.json"))


def read_registry(path: str | os.PathLike | None = None) -> list[dict]:
    """The entries of a registry file (none if it does not exist); UsageError if the path is not a file,
    IntegrityError if the file is not a valid registry (`check_registry`)."""
    file = registry_path(path)
    if not file.exists():
        return []
    if not file.is_file():
        raise UsageError(f"--registry {file}: not a registry file (a folder?)")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--registry {file}: cannot read it ({first_line(err)})") from err
    try:
        data = json.loads(text)
    except ValueError as err:
        raise IntegrityError(f"registry {file} is not a zoo registry ({err})") from err
    try:
        return check_registry(data)
    except IntegrityError as err:
        raise IntegrityError(f"registry {file} is not a zoo registry ({err})") from None


def check_registry(data) -> list[dict]:
    """The entries of a parsed registry, `{"checkpoints": [entry, ...]}`, after a schema check: every
    entry has the keys of FIELDS with values of their types, a repo id ORG/NAME, and `files` mapping
    plain relative names (`safe_name`) to sha256 digests. IntegrityError naming the first fault."""
    if not isinstance(data, dict) or not isinstance(data.get("checkpoints"), list):
        raise IntegrityError('expected an object {"checkpoints": [...]}')
    for i, entry in enumerate(data["checkpoints"]):
        where = f"entry {i}" + (f" ({entry['name']})" if isinstance(entry, dict) and "name" in entry else "")
        if not isinstance(entry, dict):
            raise IntegrityError(f"{where} is not an object")
        missing = [key for key in FIELDS if key not in entry]
        if missing:
            raise IntegrityError(f"{where} lacks {', '.join(missing)}")
        for key, kind in FIELDS.items():
            if not isinstance(entry[key], kind) or (kind is not bool and isinstance(entry[key], bool)):
                raise IntegrityError(f"{where}: {key} has the wrong type ({type(entry[key]).__name__})")
        if not hub.REPO_ID.match(entry["repo_id"]) or ".." in entry["repo_id"]:
            raise IntegrityError(f"{where}: repo_id {entry['repo_id']!r} is not ORG/NAME")
        if entry["published"] and not entry["revision"]:
            raise IntegrityError(f"{where} is published but names no pinned revision")
        if not entry["files"]:
            raise IntegrityError(f"{where}: files lists no weight file")
        for name, digest in entry["files"].items():
            if not safe_name(name):
                raise IntegrityError(f"{where}: file name {name!r} is not a plain relative name")
            if not isinstance(digest, str) or not SHA256.match(digest):
                raise IntegrityError(f"{where}: the sha256 of {name} is not 64 hex digits")
    return data["checkpoints"]


def safe_name(name) -> bool:
    """A plain relative file name inside a snapshot: no absolute path, `..`, `.`, empty part or backslash."""
    return (isinstance(name, str) and "\\" not in name and not name.startswith("/")
            and all(part not in ("", ".", "..") for part in name.split("/")))


def write_registry(entries: list[dict], path: str | os.PathLike | None = None) -> Path:
    file = registry_path(path)
    text = json.dumps({"checkpoints": sorted(entries, key=lambda e: e["name"])}, indent=2) + "\n"
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(file)
    return file


def lookup(name: str, path: str | os.PathLike | None = None) -> dict:
    """The entry called `name`; a UsageError naming the closest names otherwise."""
    entries = read_registry(path)
    for entry in entries:
        if entry["name"] == name:
            return entry
    row = next((r for r in recipe_rows(path) if r.name == name), None)
    if row:
        raise UsageError(f"{name} is not built yet (a {row.tier}-tier recipe row): `{row.build_command}` makes it")
    names = [e["name"] for e in entries]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"closest: {', '.join(close)}" if close else f"known: {', '.join(names) or 'none'}"
    raise UsageError(f"unknown checkpoint {name!r}; {hint}")


def find(name: str, path: str | os.PathLike | None = None) -> dict | None:
    """The entry called `name`, or None: no error, no network."""
    return next((e for e in read_registry(path) if e["name"] == name), None)


def is_published(name: str, path: str | os.PathLike | None = None) -> bool:
    """Whether the registry has a checkpoint `name` marked published (no network): a caller can refuse an
    unpublished or unknown name at once instead of asking the Hub."""
    entry = find(name, path)
    return bool(entry and entry["published"])


def sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_from_folder(folder: str | Path, name: str, repo_id: str, revision: str | None = None,
                      published: bool = False, shipped: bool = False) -> dict:
    """A registry entry read from a finished `zoo-train` folder: its manifest, metrics and weight files."""
    folder = Path(folder)
    if hub.folder_kind(folder) != "model":
        raise UsageError(f"{folder} is not a finished zoo-train folder (no weights)")
    if published and not revision:
        raise UsageError("--published needs --revision: a published entry is pinned")
    manifest = RunManifest.from_folder(folder)
    if not (folder / "metrics.json").is_file():
        raise UsageError(f"{folder} has no metrics.json (its evaluation failed or was skipped): run zoo-eval "
                         f"--model {folder} --out {folder}/metrics.json first")
    metrics = json.loads((folder / "metrics.json").read_text())
    return {
        "name": name,
        "repo_id": hub.check_repo_id(repo_id),
        "revision": revision,
        "published": published,
        "task": manifest.generator or "text",
        "level": manifest.corpus_config,
        "preset": manifest.config.preset,
        "objective": manifest.config.objective.name,
        "architecture": manifest.architecture,
        "parameters": manifest.parameters["total"],
        "corpus": {"config": manifest.corpus_config, "command": manifest.corpus_command},
        "train_command": with_option(manifest.command, "--out", name),
        "metrics": {"split": manifest.eval_split, "n": metrics.get("n", 0),
                    **{k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)},
                    **{k: [round(x, 4) for x in v] for k, v in metrics.items()
                       if isinstance(v, list) and v and all(isinstance(x, float) for x in v)}},
        "run": {"steps": manifest.steps, "seconds": manifest.seconds, "hardware": manifest.hardware},
        "files": {rel.as_posix(): sha256(folder / rel) for rel in hub.published_files(folder)
                  if rel.suffix == ".safetensors"},
        "shipped": shipped,
    }


# --- download and load ----------------------------------------------------------------------------


def download(name: str, revision: str | None = None, local_dir: str | Path | None = None,
             registry: str | None = None) -> Path:
    """A checkpoint's folder, from the first place that has it: the local Hub cache, the shipped copy
    (`shipped_dir`), then the Hub (HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE and tokens apply); a `revision`
    other than the registry's goes to the Hub. Whatever the source, its weight files must have the
    registry's sha256 (`verify`). With `local_dir`, the files
    are copied there (a new or empty folder) and that folder is returned."""
    entry = lookup(name, registry)
    pinned = revision in (None, entry["revision"])  # another revision is asked of the Hub, not of copies
    revision = revision or entry["revision"]
    source = (_cached(entry, revision) or shipped_copy(entry)) if pinned else None
    if source is None and not (entry["published"] or entry["shipped"]):
        raise UsageError(f"{name} is not built yet (the registry lists no shipped or published copy): "
                         f"`zoo build --only {name}` makes it")
    if local_dir is None:
        return verify(source, entry) if source else verify(_snapshot(entry, revision, None), entry)
    local_dir = Path(local_dir)
    if local_dir.exists() and (not local_dir.is_dir() or any(local_dir.iterdir())):
        raise UsageError(f"--local-dir {local_dir}: exists and is not an empty folder")
    local_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{local_dir.name}.partial-", dir=local_dir.parent))
    try:
        if source:
            shutil.copytree(verify(source, entry), partial, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".*"))
        verify(partial if source else _snapshot(entry, revision, partial), entry)
        if local_dir.exists():
            local_dir.rmdir()
        partial.rename(local_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return local_dir


def _cached(entry: dict, revision: str | None) -> Path | None:
    """The entry's snapshot in the local Hub cache, or None (nothing is fetched)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(entry["repo_id"], revision=revision, local_files_only=True))
    except Exception:  # not in the cache (huggingface_hub raises several kinds for that)
        return None


def shipped_copy(entry: dict) -> Path | None:
    """The shipped copy of the entry, or None when the registry marks none or this install lacks it."""
    folder = shipped_dir() / entry["name"]
    return folder if entry["shipped"] and folder.is_dir() else None


def _snapshot(entry: dict, revision: str | None, local_dir: Path | None) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    where = f"{entry['repo_id']}@{revision or 'main'}"
    try:
        return Path(snapshot_download(entry["repo_id"], revision=revision, local_dir=local_dir))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
        note = "" if entry["published"] else " (the registry marks it unpublished)"
        reason = ("no such repository or revision there, or no access" if isinstance(err, RepositoryNotFoundError)
                  else first_line(err))
        raise ExternalError(f"cannot download {where} from {constants.ENDPOINT}{note}: {reason}") from err


def verify(folder: Path, entry: dict) -> Path:
    """`folder` if each weight file the registry lists has the listed sha256 and every weight file
    (`*.safetensors`) of the folder is listed; an IntegrityError naming the file otherwise."""
    weights = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*.safetensors")
                     if not any(part.startswith(".") for part in p.relative_to(folder).parts))
    for file, expected in entry["files"].items():
        if not safe_name(file):
            raise IntegrityError(f"{entry['name']}: the registry names {file!r}, not a file inside the download")
        if not (folder / file).is_file():
            raise IntegrityError(f"{entry['name']}: {file} is missing from the download")
        found = sha256(folder / file)
        if found != expected:
            raise IntegrityError(f"{entry['name']}: sha256 mismatch for {file} (registry {expected[:12]}..., "
                                 f"downloaded {found[:12]}...); refusing to use it")
    unlisted = [file for file in weights if file not in entry["files"]]
    if unlisted:
        raise IntegrityError(f"{entry['name']}: the download has weights the registry does not list "
                             f"({', '.join(unlisted)}); refusing to use unchecked weights")
    return folder


def load(name: str, revision: str | None = None, registry: str | None = None):
    """(model, tokenizer) of a zoo checkpoint, downloaded and verified."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = download(name, revision, registry=registry)
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


# --- the command -------------------------------------------------------------------------------------


def parser() -> Parser:
    p = Parser(prog="zoo", description="The interp-zoo checkpoints: list, inspect, download, publish, serve.")
    p.add_argument("--registry", help="registry file (default: $ZOO_REGISTRY or the packaged cards/zoo.json)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    ls = sub.add_parser("list", help="the checkpoints (built or only in the recipe), with where to get them")
    ls.add_argument("--task", help="tinysql, multmath, mcq, ...")
    ls.add_argument("--level", help="the corpus config, e.g. 3x3 or level1 (1 matches level1)")
    ls.add_argument("--size", help="the preset, e.g. nano or 33m")
    form = ls.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON object per checkpoint, for scripts")
    form.add_argument("--markdown", action="store_true", help="a markdown table with each row's rebuild command")
    info = sub.add_parser("info", help="one checkpoint's registry entry")
    info.add_argument("name")
    info.add_argument("--card", action="store_true",
                      help="also print its model card, fetched from the endpoint (a published checkpoint only)")
    dl = sub.add_parser("download", help="download a checkpoint and check its weight hashes")
    dl.add_argument("name")
    dl.add_argument("--revision", help="branch, tag or commit (default: the registry's pinned revision)")
    dl.add_argument("--local-dir", help="download into this new folder instead of the Hub cache")
    pub = sub.add_parser("publish", help="publish a corpus or checkpoint folder")
    pub.add_argument("folder")
    pub.add_argument("--repo-id", required=True, help="ORG/NAME")
    target = pub.add_mutually_exclusive_group()
    target.add_argument("--hub-dir", help="a local hub directory (git repositories, served by `zoo serve`)")
    target.add_argument("--endpoint", help="a Hub endpoint (default: $HF_ENDPOINT or huggingface.co)")
    pub.add_argument("--tag", help="tag the published revision, e.g. v1 (never moved once it exists)")
    pub.add_argument("--dataset-repo-id", help="ORG/NAME of the corpus on the Hub: a checkpoint's card names it")
    serve = sub.add_parser("serve", help="serve a local hub directory over the Hub API (needs interp-zoo[serve])")
    serve.add_argument("hub_dir", nargs="?", help="the hub directory (default with --shipped: a temporary one)")
    serve.add_argument("--shipped", action="store_true",
                       help="first publish every shipped checkpoint into it, as ORG/NAME of its registry entry")
    serve.add_argument("--port", type=int, default=8090)
    b = sub.add_parser("build", help="generate, train, evaluate, ship and register the recipe's checkpoints",
                       description="Build the checkpoints of the zoo recipe (cards/recipe.json) that are not built "
                                   "yet: corpora, training (resumed if interrupted), a float16 release evaluated on "
                                   "the test split, the registry entry and, for the cpu tier, the shipped copy in "
                                   "zoo/. Nothing to do takes seconds.")
    b.add_argument("--tier", choices=("cpu", "gpu"), help="only this tier (default: cpu, unless --only names rows)")
    b.add_argument("--only", nargs="+", metavar="NAME", help="only these rows")
    b.add_argument("--task", help="only this task (tinysql, multmath, mcq)")
    b.add_argument("--build-dir", default=os.environ.get("ZOO_BUILD_DIR", "zoo-build"),
                   help="where corpora and runs are kept between builds (default: $ZOO_BUILD_DIR or ./zoo-build)")
    b.add_argument("--hub-dir", help="also publish each new checkpoint into this local hub directory")
    b.add_argument("--jobs", type=int, default=1, help="runs trained at once (default 1)")
    b.add_argument("--threads", type=int, default=1,
                   help="torch threads per cpu-tier run (default 1, as the shipped tier was built: bit-reproducible)")
    b.add_argument("--rebuild", action="store_true", help="train the chosen rows again from scratch")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    reg = sub.add_parser("register", help="add or replace a registry entry, read from a zoo-train folder")
    reg.add_argument("folder")
    reg.add_argument("--name", required=True)
    reg.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    reg.add_argument("--revision", help="the pinned revision (tag or commit) once published")
    reg.add_argument("--published", action="store_true", help="the checkpoint is on the Hub at --revision")
    sub.add_parser("tasks-path", help="the folder of the shipped lm-evaluation-harness tasks, for lm_eval "
                                      "--include_path (the corpus: INTERP_ZOO_CORPUS=DIR)")
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return COMMANDS[args.command](args)


def listing(registry: str | None = None) -> list[dict]:
    """Every checkpoint: the registry's entries, then the recipe's rows not in the registry (not built),
    each as the JSON object `zoo list --json` prints."""
    entries = read_registry(registry)
    rows = {row.name: row for row in recipe_rows(registry)}
    known = {e["name"] for e in entries}
    items = [{"name": e["name"], "task": e["task"], "level": e["level"], "objective": e["objective"],
              "preset": e["preset"], "parameters": e["parameters"], "metrics": e["metrics"],
              "available": availability(e), "tier": rows[e["name"]].tier if e["name"] in rows else None,
              "build": rows[e["name"]].build_command if e["name"] in rows else None} for e in entries]
    items += [{"name": r.name, "task": r.task, "level": r.level, "objective": r.objective, "preset": r.preset,
               "parameters": None, "metrics": {}, "available": availability(None), "tier": r.tier,
               "build": r.build_command} for r in rows.values() if r.name not in known]
    bases = {r.name: r.base for r in rows.values()} | {e["name"]: _base(e) for e in entries}
    presets = {item["name"]: item["preset"] for item in items}
    for item in items:
        item["preset"] = inherited_preset(item["name"], presets, bases)
    return items


def inherited_preset(name: str, presets: dict, bases: dict) -> str | None:
    """A checkpoint's size: its own preset, else that of the model it was fine-tuned from (down the chain)."""
    seen = {name}
    while not presets.get(name) and bases.get(name) and bases[name] not in seen:
        name = bases[name]
        seen.add(name)
    return presets.get(name)


def _base(e: dict) -> str | None:
    from cards.recipe import option_value

    return option_value(e["train_command"], "--base")


def recipe_rows(registry: str | None = None) -> list:
    """The recipe's rows that go with `registry`: the packaged recipe goes with the packaged registry,
    ZOO_RECIPE with any; a registry of one's own has none."""
    from cards.recipe import read_recipe

    own = registry or os.environ.get("ZOO_REGISTRY")
    return read_recipe() if os.environ.get("ZOO_RECIPE") or not own else []


def _list(args) -> int:
    def keep(e: dict) -> bool:
        return ((not args.task or e["task"] == args.task) and (not args.size or e["preset"] == args.size)
                and (not args.level or args.level in (e["level"], (e["level"] or "").removeprefix("level"))))

    known = listing(args.registry)
    items = [e for e in known if keep(e)]
    asked = {option: value for option, value in (("task", args.task), ("level", args.level), ("size", args.size))
             if value}
    if not items and asked:
        key = {"task": "task", "level": "level", "size": "preset"}
        values = "; ".join(f"{option}s: {', '.join(sorted({str(e[key[option]]) for e in known})) or 'none'}"
                           for option in asked)
        raise UsageError(f"no checkpoint matches {' '.join(f'--{o} {v}' for o, v in asked.items())} (known {values})")
    if args.json:
        for item in items:
            print(json.dumps(item))
        return 0
    if args.markdown:
        built = [e for e in read_registry(args.registry) if keep(e)]
        print("\n\n".join([markdown_listing(items), *contrast_tables(built)]))
        return 0
    rows = [[e["name"], e["task"], e["level"] or "-", e["objective"], e["preset"] or "-", _millions(e["parameters"]),
             headline(e["metrics"]), e["available"]] for e in items]
    print(_table(["name", "task", "level", "objective", "size", "params", "test metric", "available"], rows))
    return 0


def markdown_listing(items: list[dict]) -> str:
    """The README's results table: one row per checkpoint and the command that (re)builds it."""
    from cards.card import markdown_table

    rows = [[f"`{e['name']}`", e["task"], e["level"] or "-", e["objective"], e["preset"] or "-",
             _millions(e["parameters"]), headline(e["metrics"]), e["available"], f"`{e['build']}`" if e["build"]
             else "-"] for e in items]
    return markdown_table(["checkpoint", "task", "level", "objective", "size", "params", "test metric", "get it",
                           "rebuild"], rows)


def contrast_tables(entries: list[dict]) -> list[str]:
    """For each multiplication size with two or more objectives trained from scratch, a markdown table
    comparing them (exact match, digit accuracy, accuracy per answer digit, steps, minutes). Fine-tuned
    entries (LN-free twins, continuations) are left out: their steps add to their base's."""
    from cards.card import markdown_table

    tables = []
    entries = [e for e in entries if not _base(e)]
    for level in sorted({e["level"] for e in entries if e["task"] == "multmath"}):
        group = sorted((e for e in entries if e["task"] == "multmath" and e["level"] == level),
                       key=lambda e: ("aux", "nocot", "icot").index(e["objective"]) if e["objective"] in
                       ("aux", "nocot", "icot") else 9)
        if len(group) < 2:
            continue
        rows = [[f"`{e['name']}`", e["objective"], f"{e['metrics'].get('exact_match', 0):.3f}",
                 f"{e['metrics'].get('digit_accuracy', 0):.3f}",
                 " ".join(f"{x:.2f}" for x in e["metrics"].get("digit_accuracy_by_position", [])),
                 f"{e['run']['steps']:,}", f"{e['run']['seconds'] / 60:.0f}"] for e in group]
        tables.append(f"Multiplication {level}, test split:\n\n" + markdown_table(
            ["checkpoint", "objective", "exact match", "digit accuracy", "per digit c0 (lowest) ..", "steps",
             "minutes"], rows))
    return tables


def _millions(parameters) -> str:
    return f"{parameters / 1e6:.1f}M" if parameters else "-"


def headline(metrics: dict) -> str:
    """exact_match, else the first score of the entry's metrics."""
    scores = [k for k, v in metrics.items() if isinstance(v, float)]
    key = "exact_match" if "exact_match" in scores else next(iter(scores), None)
    return f"{key} {metrics[key]:.3f}" if key else "-"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows])


def _shape(e: dict) -> str:
    """Where an entry's shape comes from: its preset, or the model its training fine-tuned."""
    if e["preset"]:
        return f"{e['preset']} preset"
    base = _base(e)
    return f"fine-tuned from {base}" if base else "no preset"


def _info(args) -> int:
    e = lookup(args.name, args.registry)
    if args.card and not e["published"]:
        raise UsageError(f"{e['name']} is not published (the registry marks it unpublished): no card to fetch")
    print(f"{e['name']}: a {e['parameters']:,}-parameter {e['architecture']} ({_shape(e)}), "
          f"{e['task']} {e['level']}, objective {e['objective']}")
    print(f"repo:      {e['repo_id']} @ {e['revision'] or '(no pinned revision)'}"
          f" ({'published' if e['published'] else 'not published'})")
    print(f"available: {availability(e)}" + (f" ({shipped_dir() / e['name']})" if shipped_copy(e) else ""))
    print("metrics:   " + ", ".join(f"{k} {v}" for k, v in e["metrics"].items()))
    print(f"corpus:    {e['corpus'].get('command') or '(unknown)'}")
    print(f"training:  {e['train_command']}")
    for file, digest in e["files"].items():
        print(f"sha256:    {digest}  {file}")
    if args.card:
        print()
        print(_fetch_card(e))
    return 0


def _fetch_card(e: dict) -> str:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(e["repo_id"], "README.md", revision=e["revision"])).read_text(encoding="utf-8")
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
        raise ExternalError(f"cannot fetch the card of {e['repo_id']}: {first_line(err)}") from err


def _download(args) -> int:
    folder = download(args.name, args.revision, args.local_dir, args.registry)
    print(f"zoo: {args.name}: sha256 of {len(lookup(args.name, args.registry)['files'])} weight file(s) verified",
          file=sys.stderr)
    print(folder)
    return 0


def _publish(args) -> int:
    folder = Path(args.folder)
    if args.hub_dir:
        commit, new = hub.publish_to_dir(folder, Path(args.hub_dir), args.repo_id, args.tag, args.dataset_repo_id)
        where = f"{args.hub_dir} ({hub.folder_kind(folder)}s/{args.repo_id})"
        state = "new commit" if new else "unchanged, no new commit"
    else:
        commit = hub.publish_to_endpoint(folder, args.repo_id, args.endpoint, args.tag,
                                         dataset_repo_id=args.dataset_repo_id)
        where, state = f"{args.endpoint or 'the configured endpoint'} ({args.repo_id})", "published"
    print(f"zoo: {folder} -> {where}: {state} {commit}" + (f", tag {args.tag}" if args.tag else ""))
    return 0


def _serve(args) -> int:
    if not (args.hub_dir or args.shipped):
        raise UsageError("zoo serve needs a hub directory, or --shipped")
    hub_dir = Path(args.hub_dir or tempfile.mkdtemp(prefix="zoo-shipped-hub-"))
    if args.shipped:
        publish_shipped(hub_dir, args.registry)
    server = hub.Server(hub_dir, args.port)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        server.start()
        print(f"zoo: serving {server.hub_dir} at {server.url} (Ctrl-C stops)")
        print(f"export HF_ENDPOINT={server.url}", flush=True)
        server.process.wait()
        raise ExternalError(f"olah stopped unexpectedly (exit status {server.process.returncode})")
    except KeyboardInterrupt:
        print("zoo: stopped", file=sys.stderr)
        return 0
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _build(args) -> int:
    from cards import build, recipe

    for option, value in (("--jobs", args.jobs), ("--threads", args.threads)):
        if value < 1:
            raise UsageError(f"{option}: expected a positive number, got {value}")
    tier = args.tier or (None if args.only else "cpu")
    rows = recipe.select(recipe.read_recipe(), tier, args.only, args.task)
    hub_dir = Path(args.hub_dir) if args.hub_dir else None
    if hub_dir and hub_dir.exists() and not hub_dir.is_dir():
        raise UsageError(f"--hub-dir {hub_dir}: exists and is not a folder")
    build.build(rows, Path(args.build_dir), hub_dir, args.jobs, args.threads, args.rebuild, args.registry,
                not args.no_progress)
    return 0


def publish_shipped(hub_dir: Path, registry: str | None = None) -> list[str]:
    """Publish every shipped checkpoint of this install (verified first) into `hub_dir` as its registry
    repo id; returns their names. A UsageError if there is none."""
    entries = [e for e in read_registry(registry) if shipped_copy(e)]
    if not entries:
        raise UsageError(f"no shipped checkpoint in {shipped_dir()} (an install from a wheel has none: clone "
                         f"the repository)")
    for e in entries:
        hub.publish_to_dir(verify(shipped_copy(e), e), hub_dir, e["repo_id"])
        print(f"zoo: {e['name']} -> {e['repo_id']}", file=sys.stderr)
    return [e["name"] for e in entries]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _register(args) -> int:
    entry = entry_from_folder(args.folder, args.name, args.repo_id, args.revision, args.published)
    before = read_registry(args.registry)
    entries = [e for e in before if e["name"] != args.name]
    file = write_registry([*entries, entry], args.registry)
    print(f"zoo: {'replaced' if len(entries) < len(before) else 'registered'} {args.name} in {file}")
    return 0


def tasks_path() -> Path:
    """The folder of the lm-evaluation-harness tasks shipped with the package (`cards/lm_eval_tasks`)."""
    return Path(__file__).resolve().parent / "lm_eval_tasks"


def _tasks_path(args) -> int:
    print(tasks_path())
    return 0


COMMANDS = {"list": _list, "info": _info, "download": _download, "publish": _publish, "serve": _serve,
            "register": _register, "build": _build, "tasks-path": _tasks_path}


def main(argv: Sequence[str] | None = None) -> int:
    return run("zoo", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
