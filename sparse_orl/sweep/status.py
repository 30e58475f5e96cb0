"""Where a sweep program stands on disk: done, partial, pending or corrupt (standard library and the summary schema)."""
from __future__ import annotations


from sparse_orl.store.checkpoint import checkpoint_steps
from sparse_orl.store.summary import read_summary


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
