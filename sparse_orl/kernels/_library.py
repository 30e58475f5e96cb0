"""Loads the compiled kernel library once and registers its XLA FFI targets.

The library ``_sparse_linear.so`` sits next to this module (built by ``setup.py`` at install
time, or by ``python csrc/build.py``). When it is missing or cannot be loaded, :func:`available`
is False, :func:`unavailable_reason` says why, and the ops fall back to pure JAX. Setting
``SPARSE_ORL_KERNELS=0`` disables the library on purpose.
"""
from __future__ import annotations

import ctypes
import functools
import json
import os
import re
import warnings
from typing import NamedTuple, Optional

import jax

LIBRARY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sparse_linear.so")

FORWARD_TARGET = "sparse_orl_linear_fwd"
INPUT_GRAD_TARGET = "sparse_orl_linear_dx"
WEIGHT_GRAD_TARGET = "sparse_orl_linear_dw"

# Instruction-set codes of the library's "isa" attribute.
ISA_CODES = {"auto": 0, "generic": 1, "avx2": 2, "avx512": 3}
ISA_NAMES = {code: name for name, code in ISA_CODES.items()}


class _Loaded(NamedTuple):
    best_isa: int  # 0 when not loaded
    reason: Optional[str]  # why not loaded


@functools.lru_cache(maxsize=None)
def _load() -> _Loaded:
    if os.environ.get("SPARSE_ORL_KERNELS", "1").strip().lower() in ("0", "false", "off", "no"):
        return _Loaded(0, "disabled by SPARSE_ORL_KERNELS=0")
    if not os.path.isfile(LIBRARY_PATH):
        return _Loaded(0, f"{LIBRARY_PATH} is missing (reinstall with a C++ compiler: pip install -e .)")
    mismatch = _api_mismatch()
    if mismatch:
        return _Loaded(0, mismatch)
    try:
        lib = ctypes.cdll.LoadLibrary(LIBRARY_PATH)
        lib.sparse_orl_linear_best_isa.restype = ctypes.c_int32
        best = int(lib.sparse_orl_linear_best_isa())
        for target in (FORWARD_TARGET, INPUT_GRAD_TARGET, WEIGHT_GRAD_TARGET):
            jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, target)), platform="cpu")
    except (OSError, AttributeError, RuntimeError, ValueError) as err:  # a stale or foreign build
        return _Loaded(0, f"loading {LIBRARY_PATH} failed: {err}")
    return _Loaded(best, None)


def _api_mismatch() -> Optional[str]:
    """Why this jaxlib cannot run the library (it was compiled against newer FFI headers), or None.

    A handler built against a newer FFI API than the running jaxlib's is rejected only when XLA
    first calls it, breaking the CPU backend; comparing the versions here keeps the fallback."""
    sidecar = os.path.splitext(LIBRARY_PATH)[0] + ".json"
    header = os.path.join(jax.ffi.include_dir(), "xla", "ffi", "api", "c_api.h")
    try:
        with open(sidecar, encoding="utf-8") as f:
            built = tuple(json.load(f)["ffi_api"])
        with open(header, encoding="utf-8") as f:
            text = f.read()
        running = tuple(int(re.search(rf"#define XLA_FFI_API_{p}\s+(\d+)", text).group(1)) for p in ("MAJOR", "MINOR"))
    except (OSError, ValueError, KeyError, AttributeError):
        return None  # no record (an older build): trust the library
    if built[0] != running[0] or built[1] > running[1]:
        how = "newer than" if built > running else "a different major version from"
        return (f"the kernels were compiled against XLA FFI API {built[0]}.{built[1]}, {how} this jaxlib's "
                f"{running[0]}.{running[1]}; rebuild them against it: pip install --no-build-isolation -e .")
    return None


def available() -> bool:
    """Whether the compiled CPU kernels are loaded and registered (loads them on first call)."""
    return _load().reason is None


def unavailable_reason() -> Optional[str]:
    """Why the kernels are unavailable, or None when they are available."""
    return _load().reason


def best_isa() -> str:
    """The instruction set the kernels use on this CPU: 'avx512', 'avx2', 'generic', or 'none'."""
    return ISA_NAMES.get(_load().best_isa, "none") if available() else "none"


def supported_isas() -> tuple[str, ...]:
    """Every instruction set the kernels can be forced to on this CPU (for tests and benchmarks)."""
    best = _load().best_isa if available() else 0
    return tuple(ISA_NAMES[c] for c in range(1, best + 1))


@functools.lru_cache(maxsize=None)
def warn_unavailable() -> None:
    """One warning line per process, the first time the compact path falls back to pure JAX."""
    warnings.warn(f"sparse_orl.kernels: compiled kernels unavailable ({unavailable_reason()}); "
                  "using the pure-JAX fallback", RuntimeWarning, stacklevel=4)
