"""Publishing corpus and checkpoint folders as Hub repositories, and serving them offline.

Two publication targets:

- a Hub endpoint (huggingface.co or any server speaking the Hub API): `publish_to_endpoint` creates
  the repository, commits the folder's files with huggingface_hub and tags the revision;
- a local hub directory: `publish_to_dir` keeps one git repository per artefact,
  `<hub>/models/<org>/<name>` or `<hub>/datasets/<org>/<name>`, one commit per publication and a tag
  per version. Publishing an unchanged folder again makes no commit.

Both check everything before they write anything: the folder's kind, the repo ids, the hub
directory, and a `--tag` that must be free or already name the same files (a version never moves).
The published card is the folder's with its load snippets naming the repository, and a
checkpoint's corpus named by its Hub id when `--dataset-repo-id` gives it (`published_readme`); the
folder itself is not changed.

`serve` runs olah (an open-source Hub mirror) in offline mode over a local hub directory, so that
`HF_ENDPOINT=http://127.0.0.1:PORT` makes `snapshot_download`, `from_pretrained` and `load_dataset`
(streaming too) read from it without reaching anything else; `HubAnswers` makes the few answers
where olah differs from the Hub the Hub's (missing files, repository info, byte ranges). olah is the
optional extra `interp-zoo[serve]`.

Errors: `UsageError` for bad input (a folder that is neither artefact, a bad repo id or tag, a hub
directory that is a file, a busy port, a version tag that would move), `ExternalError` when git,
olah or the endpoint fails.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from cards.cli import first_line
from cards.errors import ExternalError, UsageError
from train.manifest import CHECKPOINTS

SKIPPED = (CHECKPOINTS,)  # a run's resumable training states: not part of the published checkpoint
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "zoo publish", "GIT_AUTHOR_EMAIL": "zoo@localhost",
                "GIT_COMMITTER_NAME": "zoo publish", "GIT_COMMITTER_EMAIL": "zoo@localhost"}
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
TAG = re.compile(r"^[A-Za-z0-9][\w.-]*$")


def folder_kind(folder: Path) -> str:
    """'model' for a checkpoint folder (config.json and safetensors weights), 'dataset' for a corpus folder
    (a README.md card and a data/ folder)."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return "model"
    if (folder / "README.md").is_file() and (folder / "data").is_dir():
        return "dataset"
    raise UsageError(f"{folder} is neither a checkpoint folder (config.json and *.safetensors) "
                     "nor a corpus folder (README.md and data/)")


def published_files(folder: Path) -> list[Path]:
    """The files that make up the artefact, relative to `folder`: everything but hidden files and
    the trainer's `checkpoints/`."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not rel.parts[0] in SKIPPED and not any(p.startswith(".") for p in rel.parts):
            files.append(rel)
    return files


def check_repo_id(repo_id: str) -> str:
    if not isinstance(repo_id, str) or not REPO_ID.match(repo_id) or ".." in repo_id:
        raise UsageError(f"--repo-id: expected ORG/NAME, got {repo_id!r}")
    return repo_id


def check_tag(tag: str | None) -> str | None:
    if tag is not None and (not TAG.match(tag) or ".." in tag or tag.endswith(".lock")):
        raise UsageError(f"--tag: expected a version name such as v1, got {tag!r}")
    return tag


def published_readme(folder: Path, kind: str, repo_id: str, dataset_repo_id: str | None = None) -> str | None:
    """The card as published at `repo_id` (`cards.card.for_repo`, `cards.model_card.for_repo`)."""
    from cards import card, model_card

    if dataset_repo_id is not None and kind != "model":
        raise UsageError("--dataset-repo-id: only a checkpoint folder names the corpus it was trained on")
    text = (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").is_file() else None
    if text is None:
        return None
    if kind == "model":
        return model_card.for_repo(text, repo_id, dataset_repo_id and check_repo_id(dataset_repo_id))
    return card.for_repo(text, repo_id)


# --- a local hub directory -------------------------------------------------------------------------


def publish_to_dir(folder: Path, hub_dir: Path, repo_id: str, tag: str | None = None,
                   dataset_repo_id: str | None = None) -> tuple[str, bool]:
    """Commit the folder's files (its card naming `repo_id`) to `<hub_dir>/<models|datasets>/<repo_id>`;
    returns (commit, new commit?). Everything is checked before anything is written: the folder, the
    ids, the hub directory, and that `tag` is free or names the same files."""
    kind = folder_kind(folder)
    repo = Path(hub_dir) / f"{kind}s" / check_repo_id(repo_id)
    check_tag(tag)
    readme = published_readme(folder, kind, repo_id, dataset_repo_id)
    for path in (Path(hub_dir), repo.parent.parent, repo.parent, repo):
        if path.exists() and not path.is_dir():
            raise UsageError(f"--hub-dir {hub_dir}: {path} exists and is not a folder")
    exists = (repo / ".git").is_dir()
    tagged = _git(repo, "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{tree}}", check=False) \
        if exists and tag else None
    if tagged and tagged != _tree(repo, folder, readme, write=False):
        raise UsageError(f"--tag {tag}: already names other files in {repo}; a version is never moved")
    if not exists:
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q", "-b", "main")
    tree = _tree(repo, folder, readme, write=True)
    head = _git(repo, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    changed = head is None or _git(repo, "rev-parse", "HEAD^{tree}") != tree
    if changed:
        commit = _git(repo, "commit-tree", tree, *(["-p", head] if head else []),
                      "-m", f"Publish {folder.resolve().name}")
        _git(repo, "update-ref", "refs/heads/main", commit)
        _git(repo, "reset", "-q", "--hard", "main")  # the work tree shows what was published
    commit = _git(repo, "rev-parse", "HEAD")
    if tag and not tagged:
        _git(repo, "tag", tag, commit)
    return commit, changed


def _tree(repo: Path, folder: Path, readme: str | None, write: bool) -> str:
    """The git tree of the folder's published files, `README.md` replaced by `readme`; with `write`, its
    objects are stored in `repo`, else only hashed."""
    with tempfile.TemporaryDirectory(prefix="zoo-publish-") as tmp:
        files = {rel.as_posix(): (folder / rel).resolve() for rel in published_files(folder)}
        if readme is not None:
            files["README.md"] = Path(tmp) / "README.md"
            files["README.md"].write_text(readme, encoding="utf-8")
        paths = sorted(files)
        blobs = _git(repo, "hash-object", *(["-w"] if write else []), "--stdin-paths",
                     input="".join(f"{files[p]}\n" for p in paths)).split() if paths else []
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(repo, "update-index", "--add", "--index-info", env=env,
             input="".join(f"100644 {blob}\t{path}\n" for path, blob in zip(paths, blobs)))
        return _git(repo, "write-tree", *([] if write else ["--missing-ok"]), env=env)


def _git(repo: Path, *args: str, input: str | None = None, env: dict | None = None, check: bool = True) -> str | None:
    """git's output; with `check=False`, None when git fails (e.g. `rev-parse --verify` of a missing ref)."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, input=input, encoding="utf-8",
                              errors="replace", env={**os.environ, **GIT_IDENTITY, **(env or {})})
    except FileNotFoundError as err:
        raise ExternalError("publishing to a hub directory needs git on PATH") from err
    if done.returncode and not check:
        return None
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise ExternalError(f"git {args[0]} failed in {repo}: {lines[-1]}")
    return done.stdout.strip()


# --- a Hub endpoint --------------------------------------------------------------------------------


def publish_to_endpoint(folder: Path, repo_id: str, endpoint: str | None = None, tag: str | None = None,
                        token: str | None = None, dataset_repo_id: str | None = None) -> str:
    """Create the repository if needed, commit the folder's files (its card naming `repo_id`;
    huggingface_hub skips unchanged files and empty commits) and tag the resulting revision; returns the
    commit id. Checked first: the folder, the ids, and that `tag` is free or names the same files."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    kind = folder_kind(folder)
    check_repo_id(repo_id)
    check_tag(tag)
    readme = published_readme(folder, kind, repo_id, dataset_repo_id)
    files = {rel.as_posix(): folder / rel for rel in published_files(folder)}
    content = {path: readme.encode() if path == "README.md" and readme is not None else file.read_bytes
               for path, file in files.items()}
    api = HfApi(endpoint=endpoint, token=token)
    try:
        try:
            tags = {ref.name for ref in api.list_repo_refs(repo_id, repo_type=kind).tags}
        except RepositoryNotFoundError:
            tags = set()
        if tag in tags and not _same_files(api, repo_id, kind, tag, content):
            raise UsageError(f"--tag {tag}: already names other files in {repo_id}; a version is never moved")
        api.create_repo(repo_id, repo_type=kind, exist_ok=True)
        operations = [CommitOperationAdd(path, data if isinstance(data, bytes) else str(files[path]))
                      for path, data in content.items()]
        info = api.create_commit(repo_id, operations, commit_message=f"Publish {folder.resolve().name}",
                                 repo_type=kind)
        if tag and tag not in tags:
            api.create_tag(repo_id, tag=tag, revision=info.oid, repo_type=kind)
    except (HfHubHTTPError, OSError) as err:
        raise ExternalError(f"publishing to {api.endpoint} failed: {first_line(err)}") from err
    return info.oid


def _same_files(api, repo_id: str, kind: str, revision: str, content: dict) -> bool:
    """Whether `revision` holds exactly these files (path -> bytes, or a callable returning them), beside
    the `.gitattributes` the Hub adds: by git blob id, or sha256 for LFS files."""
    remote = {f.path: f for f in api.list_repo_tree(repo_id, revision=revision, recursive=True, repo_type=kind)
              if hasattr(f, "blob_id") and f.path != ".gitattributes"}
    if set(remote) != set(content):
        return False
    for path, data in content.items():
        data = data if isinstance(data, bytes) else data()
        lfs = getattr(remote[path], "lfs", None)
        found = (hashlib.sha256(data).hexdigest() if lfs else
                 hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())
        if found != (lfs.sha256 if lfs else remote[path].blob_id):
            return False
    return True


# --- serving a hub directory with olah -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:`port` (connections lingering in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Server:
    """olah in a child process, serving `hub_dir` offline on 127.0.0.1:`port`. Use as a context manager
    or call `start()` and `stop()`."""

    def __init__(self, hub_dir: Path, port: int):
        self.hub_dir, self.port = Path(hub_dir).resolve(), port
        self.url = f"http://127.0.0.1:{port}"
        self.state: Path | None = None
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "Server":
        if not self.hub_dir.is_dir():
            raise UsageError(f"{self.hub_dir} is not a folder")
        try:
            import olah  # noqa: F401
        except ImportError as err:
            raise UsageError("serving needs olah: pip install 'interp-zoo[serve]'") from err
        if not port_is_free(self.port):
            raise UsageError(f"--port {self.port}: already in use on 127.0.0.1")
        self.state = Path(tempfile.mkdtemp(prefix="zoo-serve-"))
        config = self.state / "olah.toml"
        config.write_text(_olah_config(self.hub_dir, self.port, self.state), encoding="utf-8")
        with open(self.state / "olah.out", "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "cards.hub", str(config), str(self.hub_dir)],
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=self.state, env=self._env())
        self._wait(timeout)
        return self

    def _env(self) -> dict:
        here = str(Path(__file__).resolve().parent.parent)  # `cards` importable from the state folder
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
        return {**os.environ, "OLAH_LOG_PATH": str(self.state), "PYTHONPATH": path}

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.state / "olah.out").read_text(errors="replace").strip().splitlines()[-1:]
                self.stop()
                raise ExternalError(f"olah stopped at start: {tail[0] if tail else 'no output'}")
            try:
                opener.open(f"{self.url}/api/models/zoo/ping/revision/main", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ExternalError(f"olah did not answer on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.state is not None:
            shutil.rmtree(self.state, ignore_errors=True)
        self.process = self.state = None

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _olah_config(hub_dir: Path, port: int, state: Path) -> str:
    return "\n".join([
        "[basic]",
        'host = "127.0.0.1"',
        f"port = {port}",
        f"repos-path = {str(state / 'cache')!r}",
        f"mirrors-path = [{str(hub_dir)!r}]",
        "",
        "[accessibility]",
        "offline = true",
        "",
    ])


class HubAnswers:
    """ASGI wrapper around olah 0.5.4 that makes three of its answers for a local repository the Hub's:

    - a file or folder the repository lacks (`resolve/...`, `api/.../tree/...`) is 404 EntryNotFound,
      not 401, which clients read as "repository not found" (`AutoTokenizer.from_pretrained` asks
      for optional files such as `tokenizer.model` and `additional_chat_templates/`);
    - repository info without a revision (`api/models/ORG/NAME`, `HfApi().model_info`) is the info
      of `main`, not 401;
    - a file requested with a `Range` header (`bytes=A-B`, `bytes=A-`, `bytes=-N`) is 206 with those
      bytes and a `Content-Range`, or 416 past its end: olah sends the whole file with 200, and
      streaming readers (`load_dataset(..., streaming=True)` reading a parquet footer) need the range.
      olah reads a local file whole into memory before it sends it; the range is cut from that body.
    """

    FILE = re.compile(r"^/(?:api/(models|datasets)/([^/]+)/([^/]+)/tree/|(datasets/)?([^/]+)/([^/]+)/resolve/)")
    INFO = re.compile(r"^/api/(models|datasets)/([^/]+)/([^/]+)/?$")

    def __init__(self, app, hub_dir: str):
        self.app, self.hub_dir = app, Path(hub_dir)

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        info, file = self.INFO.match(path), self.FILE.match(path)
        if info and self._local(info[1], info[2], info[3]):
            main = f"{path.rstrip('/')}/revision/main"
            scope = {**scope, "path": main, "raw_path": main.encode()}
        elif file and self._local(file[1] or ("datasets" if file[4] else "models"), file[2] or file[5],
                                  file[3] or file[6]):
            send = _not_found_for_unauthorized(send)
            ranges = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"range"]
            if file[5] and scope.get("method") == "GET" and ranges:
                send = _ranged(send, ranges[0])
        await self.app(scope, receive, send)

    def _local(self, kind: str, org: str, name: str) -> bool:
        return (self.hub_dir / kind / org / name / ".git").exists()


def _not_found_for_unauthorized(send):
    replaced = False

    async def patched(message):
        nonlocal replaced
        if message["type"] == "http.response.start" and message["status"] == 401:
            replaced = True
            body = b'{"error":"Entry not found"}'
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json"), (b"x-error-code", b"EntryNotFound"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        elif not replaced:
            await send(message)

    return patched


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte a `Range` header asks of a `size`-byte file; None to answer with the whole
    file (no single byte range: RFC 9110 lets a server ignore it); (size, size - 1) when none of it exists."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or match[1] == match[2] == "":
        return None
    if match[1] == "":  # the last N bytes
        return (max(size - int(match[2]), 0), size - 1) if int(match[2]) and size else (size, size - 1)
    first, last = int(match[1]), int(match[2]) if match[2] else size - 1
    if first >= size:
        return size, size - 1
    return (first, min(last, size - 1)) if first <= last else None


def _ranged(send, header: str, chunk: int = 1 << 20):
    """`send` answering a 200 with the bytes `header` asks for: 206 and Content-Range, or 416."""
    start, body = None, []

    async def patched(message):
        nonlocal start
        if message["type"] == "http.response.start" and message["status"] == 200:
            start = message
        elif message["type"] == "http.response.body" and start is not None:
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            data = b"".join(body)
            span = byte_range(header, len(data))
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length",
                                                                                         b"transfer-encoding")]
            if span is None:
                status, part, extra = 200, data, []
            elif span[0] >= len(data):
                status, part, extra = 416, b"", [(b"content-range", f"bytes */{len(data)}".encode())]
            else:
                status, part = 206, data[span[0]:span[1] + 1]
                extra = [(b"content-range", f"bytes {span[0]}-{span[1]}/{len(data)}".encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers + extra + [
                (b"accept-ranges", b"bytes"), (b"content-length", str(len(part)).encode())]})
            for i in range(0, max(len(part), 1), chunk):
                await send({"type": "http.response.body", "body": part[i:i + chunk],
                            "more_body": i + chunk < len(part)})
        else:
            await send(message)

    return patched


def _run_olah(config: str, hub_dir: str) -> None:
    """The child process of `Server`: olah's own command line, with `HubAnswers` in front."""
    sys.argv = ["olah-cli", "--config", config, "--log-path", os.environ.get("OLAH_LOG_PATH", ".")]
    from olah import server

    args = server.init()
    server.app.add_middleware(HubAnswers, hub_dir=hub_dir)
    server.run_server(args)


if __name__ == "__main__":
    _run_olah(*sys.argv[1:3])
