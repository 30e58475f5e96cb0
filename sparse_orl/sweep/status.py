"""Where a sweep program stands on disk: done, partial, pending or corrupt (standard library only)."""
from __future__ import annotations

import os
from typing import List

from sparse_orl.io_utils import read_json


def checkpoint_steps(workdir: str) -> List[int]:
    """Steps of the checkpoints in ``<workdir>/checkpoints``, ascending."""
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


def program_status(program) -> str:
    """"done", "partial" (started: checkpoints or an incomplete summary), "pending", or "corrupt".

    ``program``: a :class:`sparse_orl.sweep.Program` (anything with a ``workdir``).
    """
    path = os.path.join(program.workdir, "summary.json")
    if os.path.exists(path):
        try:
            summary = read_json(path, "summary")
        except ValueError:
            return "corrupt"
        if summary.get("complete"):
            return "done"
        return "partial"
    return "partial" if checkpoint_steps(program.workdir) else "pending"
