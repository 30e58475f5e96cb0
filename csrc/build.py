"""Compiles the sparse linear FFI kernels into one shared library.

Used by ``setup.py`` at install time and runnable by hand::

    python csrc/build.py [OUTPUT.so]     # default: sparse_orl/kernels/_sparse_linear.so

The build is portable: no ``-march=native``. The kernel bodies are compiled once per instruction
set (generic, AVX2+FMA, AVX-512 on x86-64; generic only elsewhere) with that set's flags, and
the FFI handlers pick one at run time from the CPU's features. XLA's FFI headers come from
``jaxlib/include`` of the environment being installed into (the jaxlib that will load the
kernels), else of the importable jaxlib (pip's isolated build environment); jaxlib is located
without importing it.

Only the standard library is used, so this runs inside pip's isolated build environment.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY_NAME = "_sparse_linear.so"
DEFAULT_OUTPUT = os.path.join(HERE, os.pardir, "sparse_orl", "kernels", LIBRARY_NAME)

BASE_FLAGS = ["-O3", "-std=c++17", "-fPIC", "-fvisibility=hidden", "-ffp-contract=fast",
              "-fno-math-errno", "-Wall"]
# (source, extra flags); the x86 variants are selected at run time by CPU features.
X86_VARIANTS = [("sparse_linear_avx2.cc", ["-mavx2", "-mfma"]),
                ("sparse_linear_avx512.cc", ["-mavx512f", "-mavx2", "-mfma"])]
COMMON_SOURCES = ["sparse_linear.cc", "sparse_linear_generic.cc"]
HEADERS = ["sparse_linear_kernels.h", "sparse_linear_impl.inc"]


class BuildError(RuntimeError):
    """The kernels could not be built (no compiler, no FFI headers, or a compile error)."""


def sources() -> list[str]:
    """Every file of the build, relative to the repository root (for sdists and rebuild checks)."""
    names = COMMON_SOURCES + [s for s, _ in X86_VARIANTS] + HEADERS + ["build.py"]
    return [os.path.join("csrc", n) for n in names]


def _header_roots() -> list[str]:
    """Directories that may hold a ``jaxlib`` package, in order of preference."""
    roots = []
    # The environment being installed into: its jaxlib is the one that loads the kernels. Under
    # pip's build isolation it is not importable, but the interpreter's prefix still points at it.
    for prefix in dict.fromkeys([sys.prefix, sys.exec_prefix]):
        paths = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})
        roots += [paths["platlib"], paths["purelib"]]
    spec = importlib.util.find_spec("jaxlib")  # the build environment's (pip build isolation)
    if spec is not None and spec.submodule_search_locations:
        roots += [os.path.dirname(p) for p in spec.submodule_search_locations]
    return list(dict.fromkeys(roots))


def ffi_include_dir() -> str:
    """A directory holding ``xla/ffi/api/ffi.h``: $SPARSE_ORL_FFI_INCLUDE, else ``jaxlib/include``
    of the target environment's jaxlib, else of the importable one."""
    candidates = [os.environ["SPARSE_ORL_FFI_INCLUDE"]] if os.environ.get("SPARSE_ORL_FFI_INCLUDE") else []
    candidates += [os.path.join(root, "jaxlib", "include") for root in _header_roots()]
    for inc in candidates:
        if os.path.isfile(os.path.join(inc, "xla", "ffi", "api", "ffi.h")):
            return inc
    raise BuildError("XLA's FFI headers were not found (need jaxlib >= 0.4.31 installed, or SPARSE_ORL_FFI_INCLUDE)")


def find_compiler() -> list[str]:
    """The C++ compiler command: $CXX, else c++, g++ or clang++ on PATH."""
    if os.environ.get("CXX"):
        cmd = shlex.split(os.environ["CXX"])
        if shutil.which(cmd[0]):
            return cmd
        raise BuildError(f"CXX={os.environ['CXX']!r} is not an executable")
    for name in ("c++", "g++", "clang++"):
        if shutil.which(name):
            return [name]
    raise BuildError("no C++ compiler found (set CXX)")


def _is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def _run(cmd: list[str], verbose: bool) -> None:
    if verbose:
        print(" ".join(shlex.quote(c) for c in cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"command failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")


def build_library(output: str = DEFAULT_OUTPUT, *, build_temp: str | None = None,
                  verbose: bool = False) -> str:
    """Compiles and links the kernels into ``output``; returns its absolute path.

    Raises :class:`BuildError` when the compiler or the headers are missing or a step fails.
    The library is written to a temporary name first and renamed, so a process that already
    loaded the old file keeps a consistent mapping.
    """
    cxx = find_compiler()
    include = ffi_include_dir()
    output = os.path.abspath(output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    variants = [(s, []) for s in COMMON_SOURCES]
    if _is_x86_64():
        variants += X86_VARIANTS
    with tempfile.TemporaryDirectory(dir=build_temp) as tmp:
        objects = [os.path.join(tmp, os.path.splitext(src)[0] + ".o") for src, _ in variants]
        cmds = [cxx + BASE_FLAGS + flags + ["-I", HERE, "-isystem", include, "-c",
                                            os.path.join(HERE, src), "-o", obj]
                for (src, flags), obj in zip(variants, objects)]
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda c: _run(c, verbose), cmds))
        staged = os.path.join(tmp, LIBRARY_NAME)
        _run(cxx + ["-shared", "-o", staged] + objects, verbose)
        shutil.move(staged, output + ".tmp")
        os.replace(output + ".tmp", output)
    # the FFI API version of the headers: a jaxlib older than these cannot run the handlers
    with open(os.path.splitext(output)[0] + ".json", "w") as f:
        json.dump({"ffi_api": ffi_api_version(include)}, f)
    return output


def ffi_api_version(include: str) -> list:
    """[major, minor] of the XLA FFI C API declared by the headers under ``include``."""
    with open(os.path.join(include, "xla", "ffi", "api", "c_api.h"), encoding="utf-8") as f:
        text = f.read()
    return [int(re.search(rf"#define XLA_FFI_API_{part}\s+(\d+)", text).group(1)) for part in ("MAJOR", "MINOR")]


def main(argv: list[str]) -> int:
    output = argv[1] if len(argv) > 1 else DEFAULT_OUTPUT
    try:
        path = build_library(output, verbose=True)
    except BuildError as err:
        print(f"sparse_orl kernels not built: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
