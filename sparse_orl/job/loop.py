"""The host loop around the compiled chunk: train a chunk, then let small hooks act on it.

One chunk of about ``chunk_s`` seconds is one host sync (never one per step). After each,
the loop says what the step is for (:class:`Tick`: a metric row, an evaluation, a checkpoint,
a progress line, a stop), and the hooks act in a fixed order (:mod:`sparse_orl.job.hooks`):
evaluate, write metric rows, checkpoint, print progress, stop on a signal.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Dict, Optional, Sequence

import jax.numpy as jnp

from sparse_orl.job.progress import ChunkSizer
from sparse_orl.trainer.sharding import to_host


@dataclasses.dataclass
class Tick:
    """One chunk just trained: where the loop stands and what is due at this step."""

    step: int
    steps: int  # the run's length
    n: int  # steps in this chunk
    seconds: float
    first: bool  # the first chunk (it also compiled)
    metrics: Dict[str, Any]  # per-run chunk means (host numpy), "nan_step" included
    states: Any  # the run states after the chunk (device)
    at_row: bool = False  # a metric row for every run (every eval_every steps and at the end)
    at_eval: bool = False
    at_ckpt: bool = False
    line_due: bool = False  # a progress line
    interrupted: bool = False  # a stop signal came: checkpoint, then stop
    eval_rows: Dict[int, Dict] = dataclasses.field(default_factory=dict)  # filled by the evaluation hook
    score_text: str = ""

    @property
    def done(self) -> bool:
        return self.step >= self.steps


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


def host_loop(chunk: Callable, states, data, start: int, steps: int, eval_every: int, checkpoint_every: int,
              eval_episodes: int, sizer: ChunkSizer, hooks: Sequence[Callable[[Tick], None]],
              line_due: Callable[[Tick], bool], stop_requested: Callable[[], bool],
              stop_at: Optional[int] = None):
    """Train from ``start`` to ``steps`` in chunks that end on every checkpoint and evaluation step;
    after each chunk call every hook on its :class:`Tick`. Returns (states, step)."""
    step, first = start, True
    while step < steps:
        ends = [steps, _next_multiple(step, checkpoint_every), _next_multiple(step, eval_every)]
        if stop_at is not None and stop_at > step:
            ends.append(stop_at)
        n = sizer.next(min(ends) - step)
        t0 = time.time()
        states, metrics = chunk(states, data, jnp.int32(n))
        metrics = to_host(metrics)
        dt = time.time() - t0
        step += n
        sizer.observe(n, dt, compiled=first)
        tick = Tick(step, steps, n, dt, first, metrics, states)
        tick.at_row = step % eval_every == 0 or step == steps
        tick.at_eval = bool(eval_episodes) and tick.at_row
        tick.at_ckpt = step % checkpoint_every == 0 or step == steps
        tick.interrupted = stop_requested() and step < steps  # at the end: finish
        tick.line_due = line_due(tick)
        for hook in hooks:
            hook(tick)
        first = False
        if stop_at is not None and stop_at <= step < steps:
            break
    return states, step
