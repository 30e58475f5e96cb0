"""Checkpoints (orbax) of the stacked run states.

Orbax writes each step into a temporary folder and renames it when complete,
so a killed run never leaves a checkpoint that looks finished. If the newest
checkpoint cannot be read anyway (a damaged disk, a hand-edited file), restore
falls back to the previous one with a warning, moving the bad one aside.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Tuple

import jax
import orbax.checkpoint as ocp
from absl import logging
import errno
import re
import logging as pylogging



def checkpoint_steps(workdir: str) -> List[int]:
    """Steps of the checkpoints in ``<workdir>/checkpoints``, ascending."""
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


class CheckpointError(RuntimeError):
    pass


class _quiet_orbax:
    """While saving: orbax's worker threads log each write failure with a traceback at ERROR level
    (dozens of lines for one full disk). The failure itself is re-raised as one line by ``save``."""

    NAMES = ("absl", "asyncio")

    def __enter__(self):

        self._old = {n: pylogging.getLogger(n).level for n in self.NAMES}
        for n in self.NAMES:
            pylogging.getLogger(n).setLevel(pylogging.CRITICAL)

    def __exit__(self, *exc):

        for n, level in self._old.items():
            pylogging.getLogger(n).setLevel(level)


def _cause(e: BaseException) -> str:
    """The reason of an I/O failure in a few words: "No space left on device (errno 28)", ..."""

    text = str(e)
    m = re.search(r"os_error_code='?(\d+)", text) or re.search(r"\[Errno (\d+)\]", text)
    code = int(m.group(1)) if m else getattr(e, "errno", None)
    if code:
        return f"{os.strerror(code)} (errno {code}, {errno.errorcode.get(code, '?')})"
    first = text.splitlines()[0] if text else type(e).__name__
    return first if len(first) <= 300 else first[:300] + "..."


def _manager(directory: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options,
                                 item_names=("state", "meta"))


class Checkpointer:
    """Save / restore ``(run_states, meta)`` at integer steps under ``directory``."""

    def __init__(self, directory: str, max_to_keep: int = 2):
        self.directory = os.path.abspath(directory)
        self._max_to_keep = max_to_keep
        self._mngr = _manager(self.directory, max_to_keep)

    def steps(self) -> List[int]:
        return sorted(self._mngr.all_steps())

    def save(self, step: int, state: Any, meta: Dict) -> None:
        """Write the checkpoint of ``step``, or raise :class:`CheckpointError` in one line (disk full,
        read-only file system, ...); the previous checkpoint is left intact either way."""
        try:
            with _quiet_orbax():
                self._mngr.save(
                    int(step),
                    args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
                    force=True,
                )
                self._mngr.wait_until_finished()
        except Exception as e:  # noqa: BLE001  (orbax/tensorstore raise ValueError, OSError, RuntimeError)
            raise CheckpointError(f"checkpoint of step {step} not written in {self.directory}: {_cause(e)}; the "
                                  "previous checkpoint is intact: fix the cause and run the same command to "
                                  "resume") from None

    def restore_latest(self, abstract_state: Any) -> Optional[Tuple[int, Any, Dict]]:
        """Newest readable checkpoint as ``(step, state, meta)``, or None if there is none.

        An unreadable checkpoint is moved aside to ``<directory>.corrupt/<step>-<time>`` (with a
        warning naming both), so that training from the previous one can write that step again
        and the run always finishes; nothing is deleted.
        """
        moved = False
        try:
            for step in reversed(self.steps()):
                try:
                    out = self._mngr.restore(
                        step,
                        args=ocp.args.Composite(
                            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
                        ),
                    )
                    return step, out["state"], dict(out["meta"])
                except Exception as e:  # noqa: BLE001 - any unreadable checkpoint falls back
                    if jax.process_count() > 1:  # several processes share the folder: leave it in place
                        logging.warning("checkpoint %s/%d is unreadable (%s); trying the previous one",
                                        self.directory, step, type(e).__name__)
                        continue
                    aside = self._move_aside(step)
                    moved = True
                    logging.warning("checkpoint %s/%d is unreadable (%s: %s); moved it to %s and trying the "
                                    "previous one", self.directory, step, type(e).__name__,
                                    str(e).splitlines()[0][:200] if str(e) else "", aside)
            return None
        finally:
            if moved:  # the manager caches the steps it found
                self._mngr.close()
                self._mngr = _manager(self.directory, self._max_to_keep)

    def _move_aside(self, step: int) -> str:
        src = os.path.join(self.directory, str(step))
        dst = os.path.join(self.directory + ".corrupt", f"{step}-{time.strftime('%Y%m%dT%H%M%S')}")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)
        return dst

    def close(self):
        self._mngr.close()


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) describing ``tree``, as orbax's restore target."""
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), tree
    )
