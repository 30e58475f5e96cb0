"""Exclusive file locks between jobs that share a workdir (``launch.sweep`` shards, later ``launch.train``).

A :class:`FileLock` is an ``fcntl.flock`` on a lock file. The kernel releases it
when the holding process dies (SIGKILL included), so a lock is never stale: a
lock file left behind by a dead job is simply taken by the next job, which
overwrites the holder info inside (pid, host, time; shown by :meth:`FileLock.holder`).
``flock`` works across processes of one machine and on shared file systems
that support it (NFSv4, Lustre with ``flock``); standard library only.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from typing import Optional


class FileLock:
    """An exclusive ``fcntl.flock`` on a file; the kernel releases it when the process dies."""

    def __init__(self, path: str):
        self.path = path
        self._fd: Optional[int] = None

    def acquire(self, block: bool = False) -> bool:
        """Take the lock; without ``block``, False at once if another process holds it."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            same = False
        if not same:  # the file was removed (a refused start's cleanup) between open and flock: that lock
            fcntl.flock(fd, fcntl.LOCK_UN)  # guards nothing; take the one on the file at the path now
            os.close(fd)
            return self.acquire(block)
        self._fd = fd
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        return True

    def holder(self) -> str:
        """Who holds (or last held) the lock, from the lock file: "pid P on HOST since TIME"."""
        try:
            with open(self.path, "r", encoding="utf-8") as f:
                info = json.loads(f.read() or "{}")
            return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
        except (OSError, ValueError):
            return "another job"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def workdir_lock(workdir: str, name: str) -> FileLock:
    """The lock ``<workdir>/.<name>.lock`` guarding a workdir's shared files (e.g. ``sweep.json``)."""
    return FileLock(os.path.join(workdir, f".{name}.lock"))


def program_lock(sweep_workdir: str, name: str) -> FileLock:
    """The lock of program ``name`` (call ``acquire()``; False means another job holds it)."""
    return FileLock(os.path.join(sweep_workdir, "locks", name + ".lock"))
