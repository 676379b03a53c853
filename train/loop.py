"""The training loop, on accelerate: devices, mixed precision, DDP/FSDP, checkpoints and resume.

Optimizer step `s` is a pure function of (seed, s): its micro-batches are those of
`data.batches(seed, epoch)` at fixed positions, built by the objective (`train.objectives`, whose
ICoT removal smoothing is seeded by (seed, s)). A checkpoint (`accelerator.save_state`: model,
optimizer, scheduler, RNG states) plus the step number is therefore all a resumed run needs to end
with the same weights as an uninterrupted one; the checkpoint also keeps the training time so far,
so a resumed run's seconds are those of all its attempts. Gradient accumulation, clipping, the LR
schedule (`transformers.get_scheduler`) and the optimizer resets an objective asks for live here;
`Trainable` adds an objective's extra loss to the LM loss. Logs: JSON lines in `log.jsonl` (the
loss, its parts and the objective's own values), a tqdm bar with the loss and tokens/s, and
TensorBoard events under `runs/` when asked. Accelerate's warning that a checkpoint leaves out the
tied output embeddings (`Removed shared tensor {'model.lm_head.weight'}`, reloaded as tied) is
filtered out (`TiedWeights`); any other shared tensor is still reported.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from torch import nn
from tqdm.auto import tqdm
from transformers import get_scheduler

from train.config import RunConfig
from train.data import Encoded, batches
from train.manifest import CHECKPOINTS


class TiedWeights(logging.Filter):
    """Drops accelerate's "Removed shared tensor {...} while saving" when every tensor it names is an output
    embedding (`lm_head.weight`) tied to the input embeddings."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()  # accelerate may prefix it with "[RANK 0] "
        if "Removed shared tensor {" not in message:
            return True
        names = re.findall(r"'([^']+)'", message.split("Removed shared tensor {", 1)[1].split("}", 1)[0])
        return not names or not all(name.split(".")[-2:] == ["lm_head", "weight"] for name in names)


logging.getLogger("accelerate.utils.other").addFilter(TiedWeights())


class Trainable(nn.Module):
    """The causal LM and, for an objective with an extra loss, the module that computes it (`extra`, e.g.
    the aux heads): forward returns the loss to minimise and its detached parts for the log."""

    def __init__(self, model, extra: nn.Module | None = None, weight: float = 0.0, name: str = "extra"):
        super().__init__()
        self.model, self.extra, self.extra_weight, self.part = model, extra, weight, f"{name}_loss"
        if getattr(model, "loss_type", None) is None:  # GPT-2's class name hides it: same loss, minus a warning
            model.loss_type = "ForCausalLM"

    def forward(self, input_ids, attention_mask, labels, **extra_inputs):
        lm = self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        if self.extra is None:
            return lm, {"lm_loss": lm.detach()}
        extra = self.extra.loss(**extra_inputs)
        return lm + self.extra_weight * extra, {"lm_loss": lm.detach(), self.part: extra.detach()}


def mixed_precision(choice: str) -> str:
    """`auto` is bf16 on a GPU that has it, else full precision."""
    if choice != "auto":
        return choice
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def micro_batches(data: Encoded, c: RunConfig, step: int, per_epoch: int, world: int, rank: int, pad_id: int,
                  plans: dict) -> list[dict]:
    """The micro-batches this process computes at optimizer step `step` (a pure function of the step)."""
    epoch, within = divmod(step, per_epoch)
    if epoch not in plans:
        plans.clear()
        plans[epoch] = batches([data.length(i) for i in range(len(data))], c.batch_size, c.seed, epoch)
    plan = plans[epoch]
    return [c.objective.micro_batch(data, plan[(within * c.grad_accum + j) * world + rank], pad_id, step, per_epoch,
                                    c.seed, j * world + rank) for j in range(c.grad_accum)]


def train(trainable: Trainable, data: Encoded, s: RunConfig, out: Path, pad_id: int, fingerprint: dict,
          evaluate: Callable[[nn.Module], dict] | None = None, resume_from: Path | None = None) -> dict:
    """Train with the settings `s` (resolved: `RunConfig.resolved`); returns the state dicts of the LM and of
    the objective's extra module, and a summary of the run."""
    accelerator = Accelerator(mixed_precision=mixed_precision(s.precision), cpu=not torch.cuda.is_available())
    set_seed(s.seed)
    world, rank = accelerator.num_processes, accelerator.process_index
    per_epoch = s.steps_per_epoch(len(data), world)
    if per_epoch == 0:
        raise ValueError("the training split is smaller than one optimizer step")  # RunConfig.resolved checks this
    steps = s.total_steps(len(data), world)
    objective = s.objective
    optimizer = torch.optim.AdamW(param_groups(trainable, s.weight_decay), lr=s.lr)
    scheduler = get_scheduler(s.schedule, optimizer, num_warmup_steps=s.warmup_steps, num_training_steps=steps)
    module, optimizer = accelerator.prepare(trainable, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    start, spent = 0, 0.0
    if resume_from is not None:
        accelerator.load_state(str(resume_from))
        saved = json.loads((resume_from / "trainer.json").read_text())
        start, spent = saved["step"], saved.get("seconds", 0.0)  # the earlier attempts' time counts too
    if accelerator.distributed_type == DistributedType.FSDP:
        evaluate = None  # a sharded model cannot run forward on the main process alone; the final evaluation remains
    log = Log(out, start, accelerator.is_main_process, s.tensorboard)
    plans: dict = {}
    bar = tqdm(total=steps, initial=start, desc="train", disable=not (s.progress and accelerator.is_main_process),
               dynamic_ncols=True)
    began, tokens, sums, timer = time.time() - spent, 0, defaultdict(float), time.perf_counter()
    module.train()
    for step in range(start, steps):
        if objective.resets_optimizer(step, per_epoch, data):
            optimizer.optimizer.state.clear()  # same as re-creating AdamW: fresh moments, same LR schedule
        for j, batch in enumerate(micro_batches(data, s, step, per_epoch, world, rank, pad_id, plans)):
            tokens += int(batch["attention_mask"].sum()) * world
            batch = {k: v.to(accelerator.device, non_blocking=True) for k, v in batch.items()}
            last = j == s.grad_accum - 1
            with accelerator.no_sync(module) if not last else nullcontext():
                loss, parts = module(**batch)
                accelerator.backward(loss / s.grad_accum)
            sums["loss"] += loss.detach() / s.grad_accum
            for key, value in parts.items():
                sums[key] += value / s.grad_accum
        norm = accelerator.clip_grad_norm_(module.parameters(), s.max_grad_norm)
        sums["grad_norm"] += (norm.full_tensor() if hasattr(norm, "full_tensor") else norm).detach()  # FSDP2: DTensor
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        done = step + 1
        if done % s.log_every == 0 or done == steps:
            elapsed = time.perf_counter() - timer
            sums = over_processes(accelerator, sums)
            entry = {"step": done, "epoch": round(done / per_epoch, 4), "lr": scheduler.get_last_lr()[0],
                     "tokens_per_s": round(tokens / elapsed, 1),
                     **{k: float(v) / (done - log.last_step) for k, v in sums.items()},
                     **objective.log(step, per_epoch, data)}
            log.write(entry)
            bar.set_postfix(loss=f"{entry['loss']:.4f}", tok_s=f"{entry['tokens_per_s']:.0f}")
            tokens, sums, timer = 0, defaultdict(float), time.perf_counter()
        if evaluate is not None and s.eval_every and (done % s.eval_every == 0 or done == steps):
            paused = time.perf_counter()
            if accelerator.is_main_process:
                log.write({"step": done, "eval": evaluate(accelerator.unwrap_model(module).model)})
                module.train()
            accelerator.wait_for_everyone()
            timer += time.perf_counter() - paused  # evaluation time does not count in tokens/s
        if s.save_every and done % s.save_every == 0 and done < steps:
            save_checkpoint(accelerator, out, done, fingerprint, time.time() - began)
    bar.close()
    log.close()
    accelerator.wait_for_everyone()
    state = accelerator.get_state_dict(module)
    lm_state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    extra_state = {k[len("extra."):]: v for k, v in state.items() if k.startswith("extra.")}
    return {"lm_state": lm_state, "extra_state": extra_state, "steps": steps, "steps_per_epoch": per_epoch,
            "seconds": time.time() - began, "main": accelerator.is_main_process, "processes": world,
            "mixed_precision": accelerator.mixed_precision, "device": str(accelerator.device)}


def over_processes(accelerator: Accelerator, sums: dict) -> dict:
    """The logged sums averaged over the processes: each one holds the losses of its own micro-batches only
    (the gradient norm is the same everywhere). One all-reduce, made by every process at the same steps."""
    if accelerator.num_processes == 1:
        return sums
    keys = sorted(sums)  # the same order on every process
    values = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32).to(accelerator.device) for k in keys])
    means = dict(zip(keys, accelerator.reduce(values, "mean")))
    return {k: means[k] for k in sums}


def param_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices (weights, embeddings, aux vectors); none on biases and norms."""
    decay = [p for p in module.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in module.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def save_checkpoint(accelerator: Accelerator, out: Path, step: int, fingerprint: dict, seconds: float) -> Path:
    """Save the full training state at `step` under out/checkpoints/step-N, keeping only the newest;
    `seconds` (training time so far) lets a resumed run report the time of all its attempts."""
    folder = out / CHECKPOINTS / f"step-{step:08d}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        (folder / "trainer.json").write_text(json.dumps({"step": step, "seconds": seconds, "run": fingerprint},
                                                        indent=1))
        for old in (out / CHECKPOINTS).glob("step-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return folder


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint of the run in `out` (one with its trainer.json), or None."""
    done = sorted(p.parent for p in (out / CHECKPOINTS).glob("step-*/trainer.json"))
    return done[-1] if done else None


class Log:
    """JSON lines in out/log.jsonl (entries after `start` from an earlier attempt are dropped)
    and, optionally, TensorBoard scalars in out/runs/."""

    def __init__(self, out: Path, start: int, main: bool, tensorboard: bool):
        self.path, self.main, self.last_step, self.writer = out / "log.jsonl", main, start, None
        if not main:
            return
        kept = [line for line in _lines(self.path) if json.loads(line)["step"] <= start]
        self.path.write_text("".join(line + "\n" for line in kept))
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "runs"), purge_step=start + 1)

    def write(self, entry: dict) -> None:
        if "eval" not in entry:
            self.last_step = entry["step"]
        if not self.main:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        if self.writer is not None:
            flat = {f"eval/{k}": v for k, v in entry.get("eval", {}).items() if isinstance(v, (int, float))}
            flat.update({f"train/{k}": v for k, v in entry.items() if k not in ("step", "eval")})
            for key, value in flat.items():
                self.writer.add_scalar(key, value, entry["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in _lines(out / "log.jsonl")]


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
