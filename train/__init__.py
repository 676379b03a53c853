"""Training and evaluation of causal LMs on this project's corpora: `zoo-train` and `zoo-eval` (see train/cli.py)."""
