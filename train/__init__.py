"""Training and evaluation of causal LMs on this project's corpora: `zoo-train` and `zoo-eval`
(`train.cli`), and from Python `train.run(train.RunConfig(data=..., out=..., preset="tiny"))`.

`RunConfig` (`train.config`) is the one definition of a run's settings; `run` (`train.trainer`)
loads torch, so it is imported on first use.
"""

from __future__ import annotations

__all__ = ["RunConfig", "run"]


def __getattr__(name: str):
    if name == "RunConfig":
        from train.config import RunConfig

        return RunConfig
    if name == "run":
        from train.trainer import run

        return run
    raise AttributeError(f"module 'train' has no attribute {name!r}")
