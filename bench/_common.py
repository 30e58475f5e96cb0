"""Shared helpers of the benchmarks: env shapes, the hand FLOP count, synthetic data, peak, tables.

Imports nothing beyond the standard library at module level: the PyTorch worker of ``vs_pytorch.py``
runs in a venv without JAX and imports only :data:`ENVS` and :func:`step_flops`, and ``inference.py
--blas_threads`` must set the BLAS thread variables before numpy loads.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from typing import Dict, List, Sequence, Tuple

# (obs_dim, act_dim, max_action, D4RL/Minari medium dataset size)
ENVS: Dict[str, Tuple[int, int, float, int]] = {
    "hopper": (11, 3, 1.0, 1_000_000),
    "halfcheetah": (17, 6, 1.0, 1_000_000),
}
# benchmark name -> (registered algorithm, config fields beyond the sizes)
ALGOS: Dict[str, Tuple[str, Dict]] = {
    "bcq": ("bcq", {}),
    "bc": ("bc", {}),
    "bc_vae": ("bc", {"vae_only": True}),
    "td3bc": ("td3bc", {}),
    "iql": ("iql", {}),
}
# algorithms that keep their own (the authors') network sizes and batch in the benchmarks
OWN_SIZES = {"td3bc": ((256, 256), 256), "iql": ((256, 256), 256)}

ACTOR_HIDDEN = (400, 300)
CRITIC_HIDDEN = (400, 300)
VAE_HIDDEN = (750, 750)


def batch_of(algo: str, default: int) -> int:
    """The benchmark batch of ``algo``: the authors' 256 for TD3+BC / IQL, else ``default``."""
    return OWN_SIZES[algo][1] if algo in OWN_SIZES else default


# ---- the hand FLOP count -----------------------------------------------------------------
def _mlp_layers(d_in: int, hidden: Sequence[int], d_out: int) -> List[Tuple[int, int]]:
    dims = [d_in, *hidden, d_out]
    return list(zip(dims[:-1], dims[1:]))


def _fwd(rows: int, layers) -> int:
    """Forward matmul FLOPs of layers [(k, n)] on ``rows`` rows: sum 2·m·k·n."""
    return sum(2 * rows * k * n for k, n in layers)


def _wgrad(rows: int, layers) -> int:
    """Weight gradients dW = xᵀ·dy: one matmul of the same size per layer."""
    return _fwd(rows, layers)


def _igrad(rows: int, layers, first_cols: int = 0) -> int:
    """Input gradients dx = dy·Wᵀ of every layer but the first; of the first only for
    its ``first_cols`` input columns that need a gradient (0: the input is data)."""
    (_, n0), rest = layers[0], layers[1:]
    return 2 * rows * first_cols * n0 + sum(2 * rows * k * n for k, n in rest)


def step_flops(algo: str, obs_dim: int, act_dim: int, batch: int = 100, n_samples: int = 10,
               latent_dim: int = 0, actor_hidden=ACTOR_HIDDEN, critic_hidden=CRITIC_HIDDEN,
               vae_hidden=VAE_HIDDEN) -> Dict[str, int]:
    """Dense matmul FLOPs of one gradient step of ``algo`` ("bcq", "bc", "bc_vae"), by part.

    Counts only what the algorithm needs (every matmul 2·m·k·n; elementwise ops,
    Adam and Polyak are not counted):

    * ``vae``: encoder + decoder forward on B rows; backward: weight gradients of
      every layer, input gradients of every layer but the encoder's first (its
      input is data) and, of the decoder's first, only the latent columns.
    * ``target``: forward only on n·B repeated next states: decoder, target actor
      (BCQ only; BC evaluates unperturbed samples), target Q1 and Q2.
    * ``critic``: Q1, Q2 forward on B rows; weight gradients of every layer, input
      gradients of every layer but the first.
    * ``actor``: decoder forward on B rows (its output is a constant: no decoder
      backward); actor forward + weight gradients + input gradients but the first
      layer's; Q1 forward on B rows and input gradients only (no Q1 weight
      gradients), down to the action columns of its first layer.

    ``avoidable`` is what plain PyTorch code (sfujim/BCQ) also computes: the
    decoder backward in the actor update and Q1's weight gradients there.
    """
    if algo in OWN_SIZES:
        return _td3bc_iql_flops(algo, obs_dim, act_dim, batch, OWN_SIZES[algo][0])
    lat = latent_dim or 2 * act_dim
    B, NB = batch, n_samples * batch
    enc = _mlp_layers(obs_dim + act_dim, vae_hidden, 2 * lat)  # mean and log_std heads as one
    dec = _mlp_layers(obs_dim + lat, vae_hidden, act_dim)
    actor = _mlp_layers(obs_dim + act_dim, actor_hidden, act_dim)
    q = _mlp_layers(obs_dim + act_dim, critic_hidden, 1)
    out = {}
    out["vae"] = (_fwd(B, enc) + _fwd(B, dec) + _wgrad(B, enc) + _wgrad(B, dec)
                  + _igrad(B, enc, 0) + _igrad(B, dec, lat))
    if algo != "bc_vae":
        out["target"] = _fwd(NB, dec) + 2 * _fwd(NB, q) + (_fwd(NB, actor) if algo == "bcq" else 0)
        out["critic"] = 2 * (_fwd(B, q) + _wgrad(B, q) + _igrad(B, q, 0))
        out["actor"] = (_fwd(B, dec) + _fwd(B, actor) + _wgrad(B, actor) + _igrad(B, actor, 0)
                        + _fwd(B, q) + _igrad(B, q, act_dim))
        avoidable = _wgrad(B, dec) + _igrad(B, dec, 0) + _wgrad(B, q)
    else:
        avoidable = 0
    out["total"] = sum(out.values())
    out["avoidable_in_plain_pytorch"] = avoidable
    return out


def _td3bc_iql_flops(algo: str, obs_dim: int, act_dim: int, batch: int, hidden) -> Dict[str, int]:
    """Dense matmul FLOPs of one TD3+BC or IQL step (same rules as :func:`step_flops`).

    TD3+BC (policy delay 2, so the actor part counts half): ``target`` = target actor + target Q1, Q2
    forward on B next states; ``critic`` = Q1, Q2 forward + weight + input gradients (but the first
    layer's); ``actor`` = (actor forward + weight and input gradients + Q1 forward + input gradients
    down to the action columns) / 2.
    IQL: ``value`` = target Q1, Q2 forward on B, V forward + weight + input gradients; ``actor`` = V
    forward on B (the updated V) + actor forward + weight and input gradients (the state-independent
    log_std has no matmul); ``critic`` = V(s') forward + Q1, Q2 forward + weight + input gradients.
    """
    B = batch
    actor = _mlp_layers(obs_dim, hidden, act_dim)
    q = _mlp_layers(obs_dim + act_dim, hidden, 1)
    v = _mlp_layers(obs_dim, hidden, 1)
    crit = 2 * (_fwd(B, q) + _wgrad(B, q) + _igrad(B, q, 0))
    out = {}
    if algo == "td3bc":
        out["target"] = _fwd(B, actor) + 2 * _fwd(B, q)
        out["critic"] = crit
        out["actor"] = (_fwd(B, actor) + _wgrad(B, actor) + _igrad(B, actor, 0) + _fwd(B, q)
                        + _igrad(B, q, act_dim)) // 2
    else:
        out["value"] = 2 * _fwd(B, q) + _fwd(B, v) + _wgrad(B, v) + _igrad(B, v, 0)
        out["actor"] = _fwd(B, v) + _fwd(B, actor) + _wgrad(B, actor) + _igrad(B, actor, 0)
        out["critic"] = _fwd(B, v) + crit
    out["total"] = sum(out.values())
    out["avoidable_in_plain_pytorch"] = 0
    return out


# ---- timing ----------------------------------------------------------------------------------
def median(xs):
    return statistics.median(xs) if xs else float("nan")


def time_interleaved(progs: Dict, repeats: int) -> Dict[str, List[float]]:
    """{name: [seconds of each timed chunk]}: ``progs[name].time_chunk()`` in turn, the order
    reversed every other repeat so no variant always runs first (or after the same one)."""
    times = {k: [] for k in progs}
    for r in range(repeats):
        for k in (list(progs) if r % 2 == 0 else list(progs)[::-1]):
            times[k].append(progs[k].time_chunk())
    return times


def matmul_peak_gflops(n: int = 2048, repeats: int = 5, dtype: str = "float32") -> Dict:
    """fp32 (or bf16 with f32 accumulation) n³ matmul rate of a jitted XLA dot, best and median.

    With several local devices (e.g. ``--cpu_devices=2``: the CPU split into single-threaded
    devices) every device multiplies its own pair at once and the rate is their sum, so the
    peak is the whole machine's either way.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import PartitionSpec as P

    d = jax.local_device_count()
    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(ka, (d, n, n), jnp.float32)
    b = jax.random.normal(kb, (d, n, n), jnp.float32)
    if dtype == "bfloat16":
        a, b = a.astype(jnp.bfloat16), b.astype(jnp.bfloat16)
        dot = lambda x, y: jax.lax.dot(x[0], y[0], preferred_element_type=jnp.float32)[None]  # noqa: E731
    else:
        dot = lambda x, y: jnp.dot(x[0], y[0])[None]  # noqa: E731
    if d > 1:
        mesh = jax.sharding.Mesh(np.asarray(jax.local_devices()), ("d",))
        sh = jax.sharding.NamedSharding(mesh, P("d"))
        a, b = jax.device_put(a, sh), jax.device_put(b, sh)
        f = jax.jit(jax.shard_map(dot, mesh=mesh, in_specs=(P("d"), P("d")), out_specs=P("d")))
    else:
        f = jax.jit(dot)
    jax.block_until_ready(f(a, b))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(a, b))
        times.append(time.perf_counter() - t)
    flop = 2 * n ** 3 * d
    return {"n": n, "dtype": dtype, "devices": d, "gflops_best": flop / min(times) / 1e9,
            "gflops_median": flop / median(times) / 1e9, "times_s": times}


def apply_cpu_devices(value: str) -> int:
    """``--cpu_devices`` of a bench script (before JAX starts): 1, N, or "auto" (one per usable core)."""
    from sparse_orl.trainer.devices import split_cpu, usable_cores

    n = usable_cores() if value == "auto" else int(value)
    split_cpu(n)
    return n


def machine_info() -> Dict:
    info = {"platform": platform.platform(), "python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            txt = f.read()
        for line in txt.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next((l for l in txt.splitlines() if l.startswith("flags")), "")
        info["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
                        if f" {f}" in flags]
    except OSError:
        pass
    try:
        info["loadavg"] = os.getloadavg()
    except OSError:
        pass
    info["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    return info


def jax_info() -> Dict:
    import jax

    return {"jax": jax.__version__, "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()]}


# ---- output --------------------------------------------------------------------------------
def table(rows: List[Dict], cols: Sequence[Tuple[str, str, str]]) -> str:
    """Plain-text table; ``cols`` are (key, header, format)."""
    cells = [[h for _, h, _ in cols]]
    for r in rows:
        line = []
        for key, _, fmt in cols:
            v = r.get(key)
            line.append("-" if v is None else (format(v, fmt) if fmt else str(v)))
        cells.append(line)
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    out = []
    for j, c in enumerate(cells):
        out.append("  ".join(s.rjust(w) for s, w in zip(c, widths)))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def write_json(path: str, obj) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, default=float)
    print(f"wrote {path}")


def load_warning() -> str:
    try:
        l1 = os.getloadavg()[0]
    except OSError:
        return ""
    n = os.cpu_count() or 1
    if l1 > 0.5:
        return (f"WARNING: 1-min load average {l1:.2f} on {n} cores before starting: other work is "
                f"running, timings are contaminated")
    return ""
