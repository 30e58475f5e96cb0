"""What a workdir records about its experiment, and the check that it holds this one.

``config.json`` (written once the run can start; binding once the workdir is claimed) and the
provenance block of ``summary.json``: git commit, library versions, dataset hash, devices.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import subprocess
from typing import Dict

import jax

from sparse_orl.config.job import comparable_config
from sparse_orl.data import d4rl_reference
from sparse_orl.store.atomic import atomic_write_json, read_json
from sparse_orl.store.checkpoint import checkpoint_steps
import tempfile
from sparse_orl.store.locks import workdir_lock


DISTRIBUTIONS = {"orbax.checkpoint": "orbax-checkpoint"}


def provenance(info) -> Dict:
    def version(mod):
        try:  # the installed distribution's version: orbax.checkpoint has no __version__
            return importlib.metadata.version(DISTRIBUTIONS.get(mod, mod))
        except Exception:  # noqa: BLE001
            try:
                return getattr(importlib.import_module(mod), "__version__", None)
            except Exception:  # noqa: BLE001
                return None

    try:
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 and len(out.stdout.strip()) == 40 else None
    except Exception:  # noqa: BLE001
        commit = None
    return {
        "git_commit": commit,
        "versions": {m: version(m) for m in ("jax", "jaxlib", "flax", "optax", "numpy", "gymnasium",
                                              "mujoco", "minari", "orbax.checkpoint")}
        | {"python": platform.python_version()},
        "dataset_id": info.dataset_id,
        "dataset_sha256": info.sha256,
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # e.g. single-threaded CPU devices (--cpu_devices)
    } | ({"processes": jax.process_count()} if jax.process_count() > 1 else {})


def prepare_workdir(workdir: str) -> bool:
    """Create ``workdir`` (and its parents) and check it can be written, or ``ValueError`` in one line;
    returns whether it was created here (:func:`release_workdir` removes it again after a refusal).

    Called before any work: a path that is a file, lies under a file, or sits on a read-only or
    special file system (``/sys``) is refused by name, not with a traceback hours later.
    """
    created = not os.path.exists(workdir)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"--workdir={workdir} is a file, not a folder; give a folder path")
    try:
        os.makedirs(workdir, exist_ok=True)
        with tempfile.TemporaryFile(dir=workdir):
            pass
    except OSError as e:
        raise ValueError(f"--workdir={workdir} cannot be created or written ({e.strerror or e})") from None
    return created


def release_workdir(workdir: str, lock, created: bool) -> None:
    """Release the trainer lock; a workdir that nothing claimed keeps no trace of a refused start: its
    lock file goes, and so does the folder if this start created it and it is empty."""
    if is_claimed(workdir):
        if lock is not None:
            lock.release()
        return
    if lock is not None:  # removed while still held: a trainer that opened it meanwhile sees it gone (FileLock)
        try:
            os.remove(os.path.join(workdir, ".train.lock"))
        except OSError:
            pass
        lock.release()
    try:
        if created:
            os.rmdir(workdir)  # only when empty: a refused start wrote nothing else
    except OSError:
        pass


def is_claimed(workdir: str) -> bool:
    """Whether a job has started in ``workdir``: a checkpoint, a summary or final params exist (in it or
    in one of its programs). An unclaimed workdir's ``config.json`` (a start that failed) is replaced."""
    if any(os.path.exists(os.path.join(workdir, f)) for f in ("summary.json", os.path.join("final", "params.npz"))):
        return True
    if checkpoint_steps(workdir):
        return True
    programs = os.path.join(workdir, "programs")
    return os.path.isdir(programs) and any(is_claimed(os.path.join(programs, p)) for p in os.listdir(programs))


def check_workdir(workdir: str, config, write: bool = True) -> None:
    """Write ``config.json`` (if ``write``), or refuse if the workdir holds a different experiment.

    A workdir is held once it is claimed (:func:`is_claimed`); the refusal names every field that
    differs, in full (``agent.lr: 0.001 -> 0.0003``).
    """
    path = os.path.join(workdir, "config.json")
    new = config.to_dict()
    if os.path.exists(path) and is_claimed(workdir):
        old, cur = comparable_config(read_json(path, "workdir config")), comparable_config(new)
        if old != cur:
            details = "; ".join(differences(old, cur))
            raise ValueError(
                f"--workdir={workdir} holds a different experiment ({details}). "
                "Use a new --workdir, or re-run the original command to resume."
            )
    elif write:
        atomic_write_json(path, new)


def differences(old, new, prefix: str = ""):
    """"key: old -> new" for each leaf that differs, in full (nested dicts and equal-length lists walked)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            if old.get(k) != new.get(k):
                out += differences(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else k)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and prefix != "sparsities" \
            and all(isinstance(x, dict) for x in old + new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            if a != b:
                out += differences(a, b, f"{prefix}[{i}]")
        return out
    return [f"{prefix}: {old!r} -> {new!r}"]


def score_reference(info, env_id: str) -> Dict:
    if info.ref_min_score is not None and info.ref_max_score is not None:
        return {"min": info.ref_min_score, "max": info.ref_max_score, "source": info.score_source}
    ref = d4rl_reference(env_id)
    if ref is not None:
        return {"min": ref[0], "max": ref[1], "source": "D4RL constants"}
    return {"min": None, "max": None, "source": "none"}


def claim_workdir(workdir: str):
    """The workdir's trainer lock (``<workdir>/.train.lock``), or ``ValueError`` naming its holder.

    One workdir, one trainer: a second ``launch.train`` on it stops at once. The lock is an
    ``flock``, which the kernel drops when its holder dies, so a killed run never leaves it stale.
    """

    lock = workdir_lock(workdir, "train")
    if not lock.acquire():
        raise ValueError(f"--workdir={workdir} is in use by another trainer ({lock.holder()}); wait for it "
                         "to finish, or use another --workdir")
    return lock
