"""Publishing corpus and checkpoint folders as Hub repositories, and serving them offline.

Two publication targets:

- a Hub endpoint (huggingface.co or any server speaking the Hub API): `publish_to_endpoint` creates
  the repository, uploads the folder with huggingface_hub and tags the revision;
- a local hub directory: `publish_to_dir` keeps one git repository per artefact,
  `<hub>/models/<org>/<name>` or `<hub>/datasets/<org>/<name>`, one commit per publication and a tag
  per version. Publishing an unchanged folder again makes no commit.

`serve` runs olah (an open-source Hub mirror) in offline mode over a local hub directory, so that
`HF_ENDPOINT=http://127.0.0.1:PORT` makes `snapshot_download`, `from_pretrained` and `load_dataset`
read from it without reaching anything else. olah is the optional extra `interp-zoo[serve]`.

Errors: `UsageError` for bad input (a folder that is neither artefact, a bad repo id, a busy port,
a version tag that would move), `ExternalError` when git, olah or the endpoint fails.
"""

from __future__ import annotations

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
    if not REPO_ID.match(repo_id) or ".." in repo_id:
        raise UsageError(f"--repo-id: expected ORG/NAME, got {repo_id!r}")
    return repo_id


# --- a local hub directory -------------------------------------------------------------------------


def publish_to_dir(folder: Path, hub_dir: Path, repo_id: str, tag: str | None = None) -> tuple[str, bool]:
    """Commit the folder's files to `<hub_dir>/<models|datasets>/<repo_id>`; returns (commit, new commit?)."""
    kind = folder_kind(folder)
    repo = hub_dir / f"{kind}s" / check_repo_id(repo_id)
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q", "-b", "main")
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for rel in published_files(folder):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / rel, repo / rel)
    _git(repo, "add", "-A")
    changed = _git(repo, "status", "--porcelain") != ""
    if changed:
        _git(repo, "commit", "-q", "-m", f"Publish {folder.resolve().name}")
    commit = _git(repo, "rev-parse", "HEAD")
    if tag:
        _tag(repo, tag, commit)
    return commit, changed


def _tag(repo: Path, tag: str, commit: str) -> None:
    try:
        tagged = _git(repo, "rev-parse", f"refs/tags/{tag}^{{commit}}")
    except ExternalError:  # no such tag yet
        _git(repo, "tag", tag, commit)
        return
    if tagged != commit:
        raise UsageError(f"--tag {tag}: already names commit {tagged[:12]} of {repo}; a version is never moved")


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              env={**os.environ, **GIT_IDENTITY})
    except FileNotFoundError as err:
        raise ExternalError("publishing to a hub directory needs git on PATH") from err
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise ExternalError(f"git {args[0]} failed in {repo}: {lines[-1]}")
    return done.stdout.strip()


# --- a Hub endpoint --------------------------------------------------------------------------------


def publish_to_endpoint(folder: Path, repo_id: str, endpoint: str | None = None, tag: str | None = None,
                        token: str | None = None) -> str:
    """Create the repository if needed, upload the folder (huggingface_hub skips unchanged files and
    empty commits) and tag the resulting revision; returns the commit id."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    kind = folder_kind(folder)
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(check_repo_id(repo_id), repo_type=kind, exist_ok=True)
        info = api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type=kind,
                                 ignore_patterns=[f"{d}/*" for d in SKIPPED] + [".*", "*/.*"],
                                 commit_message=f"Publish {folder.resolve().name}")
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid, repo_type=kind, exist_ok=True)
    except (HfHubHTTPError, OSError) as err:
        raise ExternalError(f"publishing to {api.endpoint} failed: {first_line(err)}") from err
    return info.oid


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
    """ASGI wrapper around olah 0.5.4 that makes two of its answers for a local repository the Hub's:

    - a file or folder the repository lacks (`resolve/...`, `api/.../tree/...`) is 404 EntryNotFound,
      not 401, which clients read as "repository not found" (`AutoTokenizer.from_pretrained` asks
      for optional files such as `tokenizer.model` and `additional_chat_templates/`);
    - repository info without a revision (`api/models/ORG/NAME`, `HfApi().model_info`) is the info
      of `main`, not 401.
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


def _run_olah(config: str, hub_dir: str) -> None:
    """The child process of `Server`: olah's own command line, with `HubAnswers` in front."""
    sys.argv = ["olah-cli", "--config", config, "--log-path", os.environ.get("OLAH_LOG_PATH", ".")]
    from olah import server

    args = server.init()
    server.app.add_middleware(HubAnswers, hub_dir=hub_dir)
    server.run_server(args)


if __name__ == "__main__":
    _run_olah(*sys.argv[1:3])
