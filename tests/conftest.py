"""Shared test fixtures: small corpora of every generator, made once per session, and one CLI helper.

`cli(main, *args)` runs a console script's `main` in this process and returns (status, stdout,
stderr); `script(module, *args)` runs one in a subprocess (for what only a real process shows:
signals, hash seeds, the absence of a traceback). The corpora are session-scoped and must be
treated as read-only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def cli(capsys):
    """cli(main, *args) -> (exit status, stdout, stderr) of a console script's main() run in-process."""

    def call(main, *args):
        capsys.readouterr()
        status = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return status, out, err

    return call


def script(module: str, *args, cwd=None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m module args...` in a subprocess, offline, with captured text output."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=environment)


def one_line_error(status: int, err: str) -> str:
    """The message of a CLI failure that kept the contract: exit 2, one line, no traceback."""
    assert status == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="session")
def corpora(tmp_path_factory) -> Path:
    """Three small corpora: `sql` (tinysql level 1), `mm` (multmath 2x2), `mcq` (mcq level 1)."""
    from mcq.cli import main as mcq_gen
    from multmath.cli import main as multmath_gen
    from tinysql.cli import main as tinysql_gen

    root = tmp_path_factory.mktemp("corpora")
    assert tinysql_gen(["--level", "1", "-n", "160", "--out", str(root / "sql")]) == 0
    assert multmath_gen(["--digits", "2x2", "-n", "800", "--num-valid", "40", "--num-test", "40",
                         "--out", str(root / "mm")]) == 0
    assert mcq_gen(["--level", "1", "-n", "160", "--out", str(root / "mcq")]) == 0
    return root


TINY_TEXTS = ["SELECT name FROM users WHERE id = 3", "1 2 * 3 4 || 5 6 #### 7 8", "CREATE TABLE t (a INTEGER)"] * 10


def saved_tiny_model(folder: Path, arch: str, shape: dict, seed: int, noise: float, digits: bool = False):
    """(model, tokenizer): a random `tiny`-preset model of family `arch` with `shape`'s overrides, its 1-d
    weights (norms, biases) moved off their initial values by `noise` so that a converter that drops one
    shows, saved into `folder` by the trainer's own save path."""
    import dataclasses

    import torch

    from train import output, presets
    from train.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(TINY_TEXTS, digits=digits, vocab_size=300, qwen2=arch == "qwen2")
    config = presets.config(dataclasses.replace(presets.PRESETS["tiny"], **shape), arch, len(tokenizer),
                            tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    model = presets.build(config, seed=seed)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(noise * torch.randn(p.shape, generator=generator))
    output.save_model(folder, model, tokenizer, model.state_dict(), 8)
    return model, tokenizer
