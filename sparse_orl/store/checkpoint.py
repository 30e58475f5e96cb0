"""Checkpoints (orbax) of the stacked run states.

Orbax writes each step into a temporary folder and renames it when complete,
so a killed run never leaves a checkpoint that looks finished. If the newest
checkpoint cannot be read anyway (a damaged disk, a hand-edited file), restore
falls back to the previous one with a warning, moving the bad one aside.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import jax
import orbax.checkpoint as ocp
from absl import logging
import errno
import re
import logging as pylogging
import sys
import threading



def checkpoint_steps(workdir: str) -> List[int]:
    """Steps of the checkpoints in ``<workdir>/checkpoints``, ascending."""
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


class CheckpointError(RuntimeError):
    pass


_SAVE_FAILED = threading.Event()  # set by the first failed save of this process


def _closed_loop(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"


class _AbandonedWrites(pylogging.Filter):
    """After a failed save, asyncio's "Task/Future exception was never retrieved" records of orbax's
    abandoned writes (logged when the task is collected, long after the save): the failure they carry
    was already raised as one line by ``save``. Before any failure, every record passes."""

    def filter(self, record: pylogging.LogRecord) -> bool:
        first = str(record.msg).split("\n", 1)[0]  # asyncio adds "future: <Task ...>" lines below it
        return not (_SAVE_FAILED.is_set() and first.endswith("exception was never retrieved"))


def _silence_orbax_aftermath() -> None:
    """Drop the noise that orbax's writer leaves after a failed save, and nothing else (idempotent).

    When a write fails (disk full, a file too large, a read-only file system), orbax closes the event
    loop of the save while tensorstore's threads still finish the other writes; each one's completion
    callback then hits the closed loop and is reported through ``sys.unraisablehook`` as a full
    ``RuntimeError: Event loop is closed`` traceback (dozens for one checkpoint, some after ``save``
    has returned). Those, and only those, are dropped; any other unraisable exception goes to the hook
    that was there before. The failure itself is :class:`CheckpointError`, one line.
    """
    asyncio_log = pylogging.getLogger("asyncio")
    if not any(isinstance(f, _AbandonedWrites) for f in asyncio_log.filters):
        asyncio_log.addFilter(_AbandonedWrites())
    if getattr(sys.unraisablehook, "drops_closed_loop_noise", False):
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        if _closed_loop(unraisable.exc_value):
            return
        previous(unraisable)

    hook.drops_closed_loop_noise = True
    sys.unraisablehook = hook


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
        _silence_orbax_aftermath()
        self._mngr = _manager(self.directory, max_to_keep)

    def steps(self) -> List[int]:
        return sorted(self._mngr.all_steps())

    def save(self, step: int, state: Any, meta: Dict) -> None:
        meta = dict(meta, layout=layout(state))
        self._save(step, state, meta)

    def _save(self, step: int, state: Any, meta: Dict) -> None:
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
            _SAVE_FAILED.set()
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
                self._check_layout(step, abstract_state)
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

    def _check_layout(self, step: int, abstract_state: Any) -> None:
        """Refuse (``ValueError``) a readable checkpoint written for another state layout (another format or
        network shape): it is not damaged, so it must not be moved aside and training must not start over."""
        try:
            meta = dict(self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
        except Exception:  # noqa: BLE001 - an unreadable meta: the full restore below decides
            return
        if "layout" in meta and meta["layout"] != layout(abstract_state):
            raise ValueError(f"the checkpoint of step {step} in {self.directory} holds another state layout than this "
                             "job builds (another --sparse_format, or another library version's state); resume it "
                             "with the command that wrote it, or use a new --workdir")

    def _move_aside(self, step: int) -> str:
        src = os.path.join(self.directory, str(step))
        dst = os.path.join(self.directory + ".corrupt", f"{step}-{time.strftime('%Y%m%dT%H%M%S')}")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)
        return dst

    def close(self):
        self._mngr.close()


def layout(tree: Any) -> str:
    """A fingerprint of a state's structure, leaf shapes and dtypes (not its values)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    text = str(treedef) + "|" + ";".join(f"{tuple(x.shape)}{x.dtype}" for x in leaves)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) describing ``tree``, as orbax's restore target."""
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), tree
    )
