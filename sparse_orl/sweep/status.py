"""Where a sweep program stands on disk: done, partial, pending or corrupt (standard library and the summary schema)."""
from __future__ import annotations

import os
from typing import List

from sparse_orl.store import checkpoint
from sparse_orl.store.summary import read_summary


def checkpoint_steps(workdir: str) -> List[int]:
    """Steps of a sweep program's checkpoints, ascending: in its workdir, and in its own programs' when its
    job trains as several (``programs/dense``, ``programs/main``, ``programs/narrow-<level>``)."""
    steps = set(checkpoint.checkpoint_steps(workdir))
    programs = os.path.join(workdir, "programs")
    if os.path.isdir(programs):
        for name in sorted(os.listdir(programs)):
            steps.update(checkpoint.checkpoint_steps(os.path.join(programs, name)))
    return sorted(steps)


def program_status(program) -> str:
    """"done", "partial" (started: checkpoints or an incomplete summary), "pending", or "corrupt".

    ``program``: a :class:`sparse_orl.sweep.Program` (anything with a ``workdir``).
    """
    try:
        summary = read_summary(program.workdir)
    except ValueError:
        return "corrupt"
    if summary is not None:
        return "done" if summary.complete else "partial"
    return "partial" if checkpoint_steps(program.workdir) else "pending"
