"""Multi-process training on CPU: two gloo processes (torchrun) against one process that accumulates
the same micro-batches, for DDP and for FSDP.

One process with `--grad-accum 2` and two with `--grad-accum 1` and the same `--batch-size` make the
same global batch from the same micro-batches (`train.loop.micro_batches` gives process `rank` the
micro-batches `j * world + rank`), so every logged loss and the final weights must agree.

Tolerances, and why:
- DDP: losses rel 1e-5, weights rtol 1e-5 / atol 1e-6. DDP's gradient is (g0 + g1) / 2, the
  accumulated one g0 / 2 + g1 / 2: equal in floating point too (halving is exact, and gloo sums two
  ranks with one addition), so the runs are bit-identical here; the slack is only for a backend
  that adds in another order. Had both ranks trained on the same micro-batches, every logged loss
  would differ (checked: 2.5e-4 relative at the first step, up to ~6e-3 later), and so would the
  weights; had only the main process's loss been logged, by ~5e-4.
- FSDP: losses rel 1e-4, weights rtol 1e-3 / atol 1e-5. The gradient norm (clipping is active at
  the start) is summed from per-shard partial norms, in another order than one process's: it differs
  by ~1e-5 relative, so the clipping factor and AdamW's update differ at the 1e-6 level (observed: loss
  rel < 1e-7, weights abs < 1e-6).

FSDP on CPU: accelerate 1.15 never turns a CPU run into FSDP (in `AcceleratorState.__init__` the
`ACCELERATE_USE_FSDP`/`fsdp_plugin` branch is reached only for GPU-like multi-device types, never
`MULTI_CPU`, so `accelerate launch --use_fsdp` on CPU silently runs DDP), although torch's FSDP runs on
CPU with gloo. `FSDP_LAUNCHER` promotes the CPU state to FSDP with the plugin accelerate builds from
the FSDP_* variables, so the trainer's own FSDP code paths (prepare, DTensor gradient norms, the full
state dict gathered for `save_pretrained`) run here as they do on GPUs. FSDP2 is used: FSDP1's
full state dict cannot be taken on CPU (accelerate asks for `offload_to_cpu=True`, and torch's
`FlatParamHandle.to_cpu` then frees the very storage it reads: size-0 storage error or SIGSEGV).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from conftest import script

STEPS = 10
RUN = ["--preset", "tiny", "--batch-size", "4", "--max-steps", str(STEPS), "--log-every", "1", "--no-eval",
       "--no-progress"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # torchrun gives each worker one thread; the reference gets the same

FSDP_ENV = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP"}

FSDP_LAUNCHER = '''\
"""zoo-train with accelerate's FSDP on CPU processes (see tests/test_distributed.py); prints each rank's
share of the parameters after prepare."""
import json
import sys

import torch
from accelerate import Accelerator
from accelerate.state import PartialState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

init, prepare = Accelerator.__init__, Accelerator.prepare


def fsdp_init(self, *args, **kwargs):
    init(self, *args, **kwargs)
    if self.state.distributed_type == DistributedType.MULTI_CPU:  # (an accelerate that does it itself is left alone)
        self.state.fsdp_plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* environment variables
        self.state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
        self.state.device = PartialState._shared_state["device"] = torch.device("cpu")  # not cpu:0


def reporting_prepare(self, *args, **kwargs):
    result = prepare(self, *args, **kwargs)
    params = list(result[0].parameters())
    local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in params)
    print("SHARD " + json.dumps({"rank": self.process_index, "fsdp2": self.is_fsdp2, "local": local,
                                 "full": sum(p.numel() for p in params)}), flush=True)
    return result


Accelerator.__init__, Accelerator.prepare = fsdp_init, reporting_prepare
from train.cli import train_main  # noqa: E402

sys.exit(train_main())
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, env: dict | None = None):
    """Two CPU processes under torchrun (the same as `torchrun --nproc_per_node 2 $(which zoo-train) ...`)."""
    return script("torch.distributed.run", "--nproc_per_node", "2", "--master-addr", "127.0.0.1",
                  "--master-port", free_port(), *args, env=env)


def losses(out: Path) -> list[float]:
    entries = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    assert [e["step"] for e in entries] == list(range(1, STEPS + 1))
    return [e["loss"] for e in entries]


def assert_same_run(out: Path, reference: Path, loss_rel: float, rtol: float, atol: float) -> None:
    got, want = losses(out), losses(reference)
    assert got == pytest.approx(want, rel=loss_rel), (got, want)
    a, b = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert set(b) <= set(a), sorted(set(b) - set(a))
    for name, tensor in b.items():
        torch.testing.assert_close(a[name], tensor, rtol=rtol, atol=atol, msg=lambda m: f"{name}: {m}")


@pytest.fixture(scope="module")
def single(corpora, tmp_path_factory) -> Path:
    """The reference: one process, two accumulated micro-batches of 4 per optimizer step."""
    out = tmp_path_factory.mktemp("single") / "run"
    done = script("train.cli", "--data", corpora / "sql", *RUN, "--grad-accum", "2", "--out", out, env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_ddp_matches_one_process(corpora, single, tmp_path):
    out = tmp_path / "ddp"
    done = torchrun("-m", "train.cli", "--data", corpora / "sql", *RUN, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "training_args.json").read_text())
    assert manifest["steps"] == STEPS and manifest["config"]["grad_accum"] == 1
    # two independent one-process runs would have twice the steps per epoch
    assert manifest["steps_per_epoch"] == json.loads((single / "training_args.json").read_text())["steps_per_epoch"]
    assert_same_run(out, single, loss_rel=1e-5, rtol=1e-5, atol=1e-6)


def test_fsdp_matches_one_process(corpora, single, tmp_path):
    launcher = tmp_path / "fsdp_zoo_train.py"
    launcher.write_text(FSDP_LAUNCHER)
    out = tmp_path / "fsdp"
    done = torchrun(launcher, "--data", corpora / "sql", *RUN, "--out", out, env=FSDP_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    shards = sorted((json.loads(line[len("SHARD "):]) for line in done.stdout.splitlines()
                     if line.startswith("SHARD ")), key=lambda s: s["rank"])
    assert [s["rank"] for s in shards] == [0, 1] and all(s["fsdp2"] for s in shards), done.stdout
    full = shards[0]["full"]
    assert sum(s["local"] for s in shards) == full and all(s["local"] < 0.6 * full for s in shards), shards
    assert_same_run(out, single, loss_rel=1e-4, rtol=1e-3, atol=1e-5)
    model = AutoModelForCausalLM.from_pretrained(out)
    reference = AutoModelForCausalLM.from_pretrained(single)
    ids = torch.arange(1, 17).unsqueeze(0)
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, reference(ids).logits, rtol=1e-3, atol=1e-4)
