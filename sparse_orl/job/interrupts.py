"""SIGINT / SIGTERM as a normal way for a training job to end: checkpoint, say how to resume, exit 130 / 143.

Slurm and preemptible Cloud TPUs stop a job with SIGTERM; a person with Ctrl-C (SIGINT).
Inside :class:`StopSignals` the first signal only sets :attr:`StopSignals.signum`: the
training loop finishes its current chunk (a few seconds), writes a checkpoint at that
step and raises :class:`Interrupted`. A second signal stops the process at once
(``os._exit``), after one line saying which checkpoint a rerun resumes from.

The previous handlers are restored on exit. Outside the main thread (where Python
cannot install handlers) the context does nothing.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Training stopped by a signal after writing a checkpoint at ``step``."""

    def __init__(self, step: int, signum: int, workdir: str):
        self.step, self.signum, self.workdir = step, signum, workdir
        super().__init__(f"interrupted at step {step} ({signal.Signals(signum).name}); "
                         "run the same command to resume")

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process a signal ended: 130 (INT), 143 (TERM)."""
        return 128 + self.signum


class StopSignals:
    """Context manager: the first SIGINT/SIGTERM is recorded, the second ends the process at once."""

    def __init__(self):
        self.signum: Optional[int] = None
        self.last_checkpoint: Optional[int] = None  # what a rerun resumes from, told on a hard stop
        self._old = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}

    def _handle(self, signum, _frame) -> None:
        if self.signum is None:
            self.signum = signum
            print(f"\n{signal.Signals(signum).name}: finishing the current chunk, then checkpointing "
                  "(signal again to stop at once)", file=sys.stderr, flush=True)
            return
        where = (f"a rerun resumes from the checkpoint at step {self.last_checkpoint}"
                 if self.last_checkpoint is not None else "no checkpoint yet: a rerun starts over")
        print(f"\nstopped at once by a second signal; {where}", file=sys.stderr, flush=True)
        os._exit(128 + signum)

    @property
    def requested(self) -> bool:
        return self.signum is not None
