"""The zoo: the registry of checkpoints and the `zoo` command.

The registry is `cards/zoo.json` (another file with `--registry PATH` or the environment variable
`ZOO_REGISTRY`). Each entry names a checkpoint, its Hub repository and pinned revision, what it was
trained on and how (task, level, preset, objective, parameter count, the generator and `zoo-train`
commands), its headline metrics and the sha256 of each weight file. Entries are written by
`zoo register`, which reads them from a finished `zoo-train` folder (its run manifest,
`train.manifest.RunManifest`, which also records what the corpus card said), so no number in the
registry is typed by hand:

    zoo register RUN_FOLDER --name multmath-3x3-icot-nano --repo-id ORG/multmath-3x3-icot-nano \\
        [--revision TAG --published]

`published` stays false until the checkpoint is on the Hub at the pinned revision. The registry is
checked whenever it is read (`check_registry`): entries with every key of `FIELDS`, repo ids
ORG/NAME, and weight files named by plain relative names with their sha256.

Commands: `zoo list` (filters that match nothing are an error naming the known values),
`zoo info NAME [--card]` (the card is fetched only for a published entry), `zoo download NAME`
(snapshot_download from the configured endpoint; then every listed weight file must have its
sha256 and every `*.safetensors` of the download must be listed), `zoo publish FOLDER --repo-id
ORG/NAME [--tag V] [--dataset-repo-id ORG/CORPUS]` (`cards.hub`: the published card names the
repository, and a checkpoint's card the corpus's repository), `zoo serve HUB_DIR` (olah over a
local hub directory) and `zoo register`. In Python: `cards.zoo.load(NAME)` returns `(model, tokenizer)`;
`find(NAME)` and `is_published(NAME)` answer from the registry alone, without the network.

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
from train.manifest import RunManifest


# --- the registry ----------------------------------------------------------------------------------


# The keys of a registry entry and the types of their values (None where a value may be missing).
FIELDS = {"name": str, "repo_id": str, "revision": (str, type(None)), "published": bool, "task": str,
          "level": (str, type(None)), "preset": (str, type(None)), "objective": str, "architecture": str,
          "parameters": (int, float), "corpus": dict, "train_command": str, "metrics": dict, "files": dict}
SHA256 = re.compile(r"^[0-9a-f]{64}$")


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
                      published: bool = False) -> dict:
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
                    **{k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}},
        "files": {rel.as_posix(): sha256(folder / rel) for rel in hub.published_files(folder)
                  if rel.suffix == ".safetensors"},
    }


# --- download and load ----------------------------------------------------------------------------


def download(name: str, revision: str | None = None, local_dir: str | Path | None = None,
             registry: str | None = None) -> Path:
    """Download a checkpoint with huggingface_hub (HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE and tokens apply)
    and check its weight files against the registry's sha256; returns the folder."""
    entry = lookup(name, registry)
    revision = revision or entry["revision"]
    if local_dir is None:
        return verify(_snapshot(entry, revision, None), entry)
    local_dir = Path(local_dir)
    if local_dir.exists() and (not local_dir.is_dir() or any(local_dir.iterdir())):
        raise UsageError(f"--local-dir {local_dir}: exists and is not an empty folder")
    local_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{local_dir.name}.partial-", dir=local_dir.parent))
    try:
        verify(_snapshot(entry, revision, partial), entry)
        if local_dir.exists():
            local_dir.rmdir()
        partial.rename(local_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return local_dir


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
    ls = sub.add_parser("list", help="the checkpoints, as a table")
    ls.add_argument("--task", help="tinysql, multmath, mcq, ...")
    ls.add_argument("--level", help="the corpus config, e.g. 3x3 or level1 (1 matches level1)")
    ls.add_argument("--size", help="the preset, e.g. nano or 33m")
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
    serve.add_argument("hub_dir")
    serve.add_argument("--port", type=int, default=8090)
    reg = sub.add_parser("register", help="add or replace a registry entry, read from a zoo-train folder")
    reg.add_argument("folder")
    reg.add_argument("--name", required=True)
    reg.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    reg.add_argument("--revision", help="the pinned revision (tag or commit) once published")
    reg.add_argument("--published", action="store_true", help="the checkpoint is on the Hub at --revision")
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return COMMANDS[args.command](args)


def _list(args) -> int:
    def keep(e: dict) -> bool:
        return ((not args.task or e["task"] == args.task) and (not args.size or e["preset"] == args.size)
                and (not args.level or args.level in (e["level"], (e["level"] or "").removeprefix("level"))))

    known = read_registry(args.registry)
    entries = [e for e in known if keep(e)]
    asked = {option: value for option, value in (("task", args.task), ("level", args.level), ("size", args.size))
             if value}
    if not entries and asked:
        key = {"task": "task", "level": "level", "size": "preset"}
        values = "; ".join(f"{option}s: {', '.join(sorted({str(e[key[option]]) for e in known})) or 'none'}"
                           for option in asked)
        raise UsageError(f"no checkpoint matches {' '.join(f'--{o} {v}' for o, v in asked.items())} (known {values})")
    rows = [[e["name"], e["task"], e["level"], e["objective"], e["preset"], f"{e['parameters'] / 1e6:.1f}M",
             _headline(e["metrics"]), "yes" if e["published"] else "no"] for e in entries]
    print(_table(["name", "task", "level", "objective", "size", "params", "test metric", "published"], rows))
    return 0


def _headline(metrics: dict) -> str:
    """exact_match, else the first score of the entry's metrics."""
    scores = [k for k, v in metrics.items() if isinstance(v, float)]
    key = "exact_match" if "exact_match" in scores else next(iter(scores), None)
    return f"{key} {metrics[key]:.3f}" if key else "-"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows])


def _info(args) -> int:
    e = lookup(args.name, args.registry)
    if args.card and not e["published"]:
        raise UsageError(f"{e['name']} is not published (the registry marks it unpublished): no card to fetch")
    print(f"{e['name']}: a {e['parameters']:,}-parameter {e['architecture']} ({e['preset']} preset), "
          f"{e['task']} {e['level']}, objective {e['objective']}")
    print(f"repo:      {e['repo_id']} @ {e['revision'] or '(no pinned revision)'}"
          f" ({'published' if e['published'] else 'not published'})")
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
    server = hub.Server(Path(args.hub_dir), args.port)
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


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _register(args) -> int:
    entry = entry_from_folder(args.folder, args.name, args.repo_id, args.revision, args.published)
    before = read_registry(args.registry)
    entries = [e for e in before if e["name"] != args.name]
    file = write_registry([*entries, entry], args.registry)
    print(f"zoo: {'replaced' if len(entries) < len(before) else 'registered'} {args.name} in {file}")
    return 0


COMMANDS = {"list": _list, "info": _info, "download": _download, "publish": _publish, "serve": _serve,
            "register": _register}


def main(argv: Sequence[str] | None = None) -> int:
    return run("zoo", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
