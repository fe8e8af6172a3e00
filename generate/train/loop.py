"""One training loop for every stage: cosine LR with warm-up, resumable checkpoints, a log file.

A killed run resumes from ``WORK/<stage>.ckpt.pt`` (atomic writes, so the file is always whole);
every logged line goes to ``WORK/log.txt`` as well as the progress bar.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from t2iscope import fileio


def log_line(work: Path, text: str) -> None:
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "log.txt", "a", encoding="utf-8") as fh:
        fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")


def cosine(step: int, steps: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def run(
    name: str,
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    steps: int,
    step_fn: Callable[[int], dict[str, float]],
    work: Path,
    every: int = 250,
) -> float:
    """Run ``step_fn`` for ``steps`` steps (resuming if a checkpoint exists); return wall seconds."""
    ckpt = work / f"{name}.ckpt.pt"
    start = 0
    base_lrs = [g["lr"] for g in optimizer.param_groups]  # before a checkpoint's scheduled lr replaces it
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        for key, module in modules.items():
            module.load_state_dict(state["modules"][key])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        log_line(work, f"{name}: resumed at step {start}")
    warmup = max(1, min(100, steps // 10))
    t0 = time.perf_counter()
    bar = tqdm(range(start, steps), desc=name, unit="step", initial=start, total=steps)
    for step in bar:
        for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = lr * cosine(step, steps, warmup)
        logs = step_fn(step)
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
        if (step + 1) % every == 0 or step + 1 == steps:
            with fileio.atomic_path(ckpt) as tmp:
                torch.save(
                    {
                        "step": step + 1,
                        "modules": {k: m.state_dict() for k, m in modules.items()},
                        "optimizer": optimizer.state_dict(),
                    },
                    tmp,
                )
            stats = " ".join(f"{k}={v:.4f}" for k, v in logs.items())
            log_line(work, f"{name}: step {step + 1}/{steps} {stats} ({time.perf_counter() - t0:.0f}s)")
    for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
        group["lr"] = lr
    return time.perf_counter() - t0
