"""Atomic file writes (a reader never sees a half-written result file), JSON / JSON-lines reading,
and flattening of param trees to "a/b/kernel" paths. numpy and the standard library only."""
from __future__ import annotations

import io
import json
import os
import tempfile
from typing import Any, Dict, Iterable

import numpy as np


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, then rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def read_json(path: str, what: str = "file") -> Any:
    """Load JSON, raising ``ValueError`` naming ``path`` if it is not valid JSON."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} {path} is corrupt or truncated (invalid JSON: {e})") from None


def atomic_write_npz(path: str, arrays: Dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def write_jsonl(path: str, rows: Iterable[Dict]) -> None:
    """Atomically replace ``path`` with ``rows``, one JSON object per line."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def append_jsonl(path: str, rows: Iterable[Dict]) -> None:
    """Append complete lines; a torn last line is dropped by :func:`read_jsonl`."""
    with open(path, "a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str) -> list:
    """Rows of a JSON-lines file; an incomplete or corrupt line (a killed writer) is skipped."""
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


# ---- param trees ---------------------------------------------------------------------------
def flatten(tree: Any, prefix: str = "") -> Dict[str, np.ndarray]:
    """{"a/b/kernel": leaf} in insertion order (a lone array maps to "")."""
    out: Dict[str, np.ndarray] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            k = str(k)
            if "/" in k or not k:
                raise ValueError(f"param tree keys must be non-empty and contain no '/': {k!r}")
            out.update(flatten(v, f"{prefix}/{k}" if prefix else k))
    else:
        out[prefix] = np.asarray(tree)
    return out


def unflatten(flat: Dict[str, Any]) -> Dict:
    """The nested dict of :func:`flatten`'s {"a/b/kernel": leaf}."""
    root: Dict = {}
    for key, value in flat.items():
        node = root
        parts = key.split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return root
