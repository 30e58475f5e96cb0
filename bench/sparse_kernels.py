"""Layer-level cost of the compact sparse layer against the masked dense and a narrow dense layer.

One sample is ``--inner`` training passes (forward, input gradient, weight gradient) of one
layer inside one jitted ``fori_loop``, each pass taking a tiny SGD step on the weights and the
input so nothing is hoisted or dead. Three variants per (shape, density), timed round-robin
(``--reps`` interleaved rounds, median):

* ``compact``: ``sparse_orl.kernels.sparse_matmul`` on the K kept weights (the FFI kernels);
* ``masked``: ``x @ (kernel * mask)`` and its ``jax.grad`` (what the library trains today);
* ``narrow``: a dense layer whose width is scaled by √density per side (≈ the same weight count).

Each mode runs in its own worker process, since thread settings must precede ``import jax``:
``pinned`` = one core (sched_setaffinity) with XLA single-threaded
(``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``, as each of the
library's CPU devices runs), ``unpinned`` = XLA's defaults on every core::

    python bench/sparse_kernels.py                          # every shape and density
    python bench/sparse_kernels.py --shapes 750x750x100 --densities 0.05 --out bench.json
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._options import parse  # noqa: E402
from sparse_orl.fields import option  # noqa: E402

SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
VARIANTS = ("compact", "masked", "narrow")


@dataclasses.dataclass(frozen=True)
class Options:
    shapes: Tuple[str, ...] = option(("750x750x100", "400x300x100", "300x400x100", "400x300x1000", "300x400x1000",
                                      "256x256x256"), "Layers, each IN x OUT x BATCH.")
    densities: Tuple[float, ...] = option((0.1, 0.05, 0.02), "Kept fractions.", low=0, high=1, low_open=True)
    modes: Tuple[str, ...] = option(("pinned", "unpinned"), "Thread modes (see the module docstring).",
                                    choices=("pinned", "unpinned"))
    core: int = option(1, "The core of the pinned mode.", low=0)
    reps: int = option(15, "Interleaved rounds (the median is reported).", low=1)
    inner: int = option(10, "Training passes per timed sample.", low=1)
    seed: int = option(0, "Seed of weights, masks and data.", low=0)
    out: str = option("", "Also write the results to this JSON file.")
    worker: str = option("", "Internal: run one mode and print JSON.", choices=("", "pinned", "unpinned"))


def parse_shapes(shapes: Sequence[str]) -> List[tuple]:
    out = []
    for s in shapes:
        dims = s.lower().split("x")
        if len(dims) != 3 or not all(d.isdigit() and int(d) > 0 for d in dims):
            sys.exit(f"error: --shapes: {s!r} is not IN x OUT x BATCH (e.g. 750x750x100)")
        out.append(tuple(int(d) for d in dims))
    return out

def layer_variants(n_in: int, n_out: int, batch: int, density: float, seed: int):
    """{variant: (jitted sample function, its arguments)} for one layer shape and density."""
    import jax
    import numpy as np

    from sparse_orl import kernels

    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, (n_in, n_out)).astype(np.float32) / np.sqrt(n_in)
    mask = (rng.random((n_in, n_out)) < density).astype(np.float32)
    x = rng.standard_normal((batch, n_in)).astype(np.float32)
    dy = rng.standard_normal((batch, n_out)).astype(np.float32)
    compact = kernels.from_dense(w, mask)
    scale = float(np.sqrt(density))
    nw_in, nw_out = max(1, round(n_in * scale)), max(1, round(n_out * scale))
    x_narrow = np.ascontiguousarray(x[:, :nw_in])
    dy_narrow = np.ascontiguousarray(dy[:, :nw_out])
    w_narrow = np.ascontiguousarray(w[:nw_in, :nw_out])

    def sample(layer, dy):
        def one(_, carry):  # forward + both gradients, then a tiny SGD step on weights and input
            w, x = carry
            _, vjp = jax.vjp(layer, w, x)
            dw, dx = vjp(dy)
            return w - 1e-6 * dw, x - 1e-6 * dx

        return jax.jit(lambda w, x, n: jax.lax.fori_loop(0, n, one, (w, x)))

    index = compact.index
    return {
        "compact": (sample(lambda v, x: kernels.sparse_matmul(x, v, index), dy), (compact.values, x)),
        "masked": (sample(lambda w, x: x @ (w * mask), dy), (w, x)),
        "narrow": (sample(lambda w, x: x @ w, dy_narrow), (w_narrow, x_narrow)),
    }, {"kept": int(mask.sum()), "narrow_shape": [nw_in, nw_out]}


def time_interleaved(fns: Dict[str, tuple], inner: int, reps: int) -> Dict[str, float]:
    """Median seconds per training pass of each variant, timed round-robin."""
    import jax

    for fn, args in fns.values():  # compile and warm up
        jax.block_until_ready(fn(*args, inner))
    samples: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, (fn, args) in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*args, inner))
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(s) for name, s in samples.items()}


def run_worker(opts: Options) -> List[dict]:
    """Times every shape and density in this process (its mode is set up by the parent)."""
    rows = []
    for n_in, n_out, batch in parse_shapes(opts.shapes):
        for density in opts.densities:
            fns, info = layer_variants(n_in, n_out, batch, density, opts.seed)
            times = time_interleaved(fns, opts.inner, opts.reps)
            rows.append({"mode": opts.worker, "n_in": n_in, "n_out": n_out, "batch": batch, "density": density,
                         **info, **{f"{v}_ms": 1e3 * times[v] for v in VARIANTS}})
    return rows


def spawn_worker(opts: Options, mode: str) -> List[dict]:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "multi_thread_eigen" not in f and "intra_op" not in f]
    if mode == "pinned":
        flags.append(SINGLE_THREAD_XLA)
    env["XLA_FLAGS"] = " ".join(flags)
    argv = [sys.executable, os.path.abspath(__file__)]
    for f in dataclasses.fields(Options):
        if f.name not in ("worker", "out"):
            value = getattr(opts, f.name)
            argv.append(f"--{f.name}={','.join(map(str, value)) if isinstance(value, tuple) else value}")
    argv.append(f"--worker={mode}")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{mode} worker failed:\n{proc.stdout}{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    info = {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return info


def table(rows: List[dict], modes: Sequence[str]) -> str:
    """One line per layer and density; per mode: times (ms) and masked/compact, narrow/compact."""
    by_key = {(r["n_in"], r["n_out"], r["batch"], r["density"], r["mode"]): r for r in rows}
    head = f"{'layer':>16} {'dens':>5} {'kept':>6}"
    for m in modes:
        head += f" | {m + ' compact':>16} {'masked':>7} {'narrow':>7} {'×masked':>8} {'×narrow':>8}"
    lines = [head, "-" * len(head)]
    for key in dict.fromkeys(k[:4] for k in by_key):
        n_in, n_out, batch, density = key
        first = by_key[key + (modes[0],)]
        line = f"{f'{n_in}x{n_out} b{batch}':>16} {density:>5.2f} {first['kept']:>6}"
        for m in modes:
            r = by_key[key + (m,)]
            line += (f" | {r['compact_ms']:>16.3f} {r['masked_ms']:>7.3f} {r['narrow_ms']:>7.3f}"
                     f" {r['masked_ms'] / r['compact_ms']:>8.2f} {r['narrow_ms'] / r['compact_ms']:>8.2f}")
        lines.append(line)
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    opts = parse(Options, argv)
    parse_shapes(opts.shapes)  # a bad shape fails here, before any worker starts
    if opts.worker:
        if opts.worker == "pinned":
            os.sched_setaffinity(0, {opts.core})
        from sparse_orl import kernels

        if not kernels.available():
            sys.exit(f"kernels unavailable: {kernels.unavailable_reason()}")
        print(json.dumps(run_worker(opts)))
        return
    modes = list(opts.modes)
    started = machine()
    rows = [r for mode in modes for r in spawn_worker(opts, mode)]
    print(f"{started.get('cpu', '')}, {started['cpus']} cpus, load {started['loadavg']}; ms per forward+backward pass, "
          "×masked = masked/compact, ×narrow = narrow/compact")
    print(table(rows, modes))
    if opts.out:
        from sparse_orl import kernels

        with open(opts.out, "w") as f:
            json.dump({"machine": started, "isa": kernels.best_isa(), "options": dataclasses.asdict(opts),
                       "results": rows}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
