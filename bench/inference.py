"""act(obs) latency: dense vs the compact 95%-sparse network, batch 1 and batch 256.

HalfCheetah shapes (obs 17, act 6, latent 12; actor / critic 400-300, VAE
750-750). The agent is initialized by the library with random exact-count masks
at ``--sparsity`` (``PruneConfig("random")``), written with
``export.save_compact`` and loaded with ``deploy.Policy.load`` as:

* ``numpy dense``   ``backend="numpy", sparse=False`` (dense matmuls over the zeros)
* ``numpy sparse``  ``backend="numpy", sparse=True``  (dead units compacted away at load, then per layer
  the faster of dense BLAS / scipy CSR / numpy gather, timed at load; ``Policy.kernel_summary()``)
* ``jax dense``     ``backend="jax"`` (the policy's forward under ``jax.jit``)
* ``flax act``      the library's own ``jax.jit(agent.act)`` (draws its latents from a key)

Paths: ``bc`` (one VAE decode), ``bcq`` (decoder, actor, Q1 over 10 samples,
argmax), and the BCQ pieces alone on the 10 candidate rows of one observation
(``bcq.decoder``, ``bcq.actor``, ``bcq.q1``). Latents are drawn once, outside the
timed call (except for ``flax act``). Latency: median over many calls after a
warmup.

    python bench/inference.py
    python bench/inference.py --quick --out inf.json
"""
from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from typing import Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import _common as C  # noqa: E402
from bench._options import parse  # noqa: E402
from sparse_orl.fields import option  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Options:
    env: str = option("halfcheetah", "Environment shapes.", choices=tuple(C.ENVS))
    sparsity: float = option(0.95, "Sparsity of the random exact-count masks.", low=0, high=1, high_open=True)
    batches: Tuple[int, ...] = option((1, 256), "Batch sizes of act(obs).", low=1)
    warmup: int = option(20, "Untimed calls before each cell.", low=0)
    min_calls: int = option(200, "Timed calls per cell (at least).", low=1)
    min_time: float = option(1.0, "Seconds of timed calls per cell (at least).", low=0)
    max_time: float = option(15.0, "Stop a cell after this many seconds even below --min_calls (at least 3 calls).",
                             low=0, low_open=True)
    blas_threads: int = option(0, "Set OPENBLAS/OMP/MKL_NUM_THREADS before numpy loads (0: leave the environment as "
                               "is).", low=0)
    narrow: bool = option(True, "Also the narrow dense network with as many kernel weights as the sparse one "
                          "(sparse_orl.job.narrow): its file size and latency beside the sparse file's.")
    quick: bool = option(False, "Smoke run: >= 30 calls / 0.1 s per cell, at most 1 s.")
    out: str = option("", "Also write the results to this JSON file.")


def parse_args(argv=None) -> Options:
    o = parse(Options, sys.argv[1:] if argv is None else argv)
    if o.quick:
        o = dataclasses.replace(o, warmup=5, min_calls=30, min_time=0.1, max_time=1.0)
    return o

def latency(fn, warmup, min_calls, min_time, max_time=float("inf")):
    """Median / p10 / p90 microseconds of one call of ``fn`` (its result is materialized)."""
    import numpy as np

    t0 = time.perf_counter()
    for i in range(warmup):
        fn()
        if i >= 1 and time.perf_counter() - t0 > max_time / 4:
            break
    ts = []
    t0 = time.perf_counter()
    while True:
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
        el = time.perf_counter() - t0
        if (len(ts) >= min_calls and el >= min_time) or (len(ts) >= 3 and el >= max_time):
            break
    ts = np.asarray(ts)
    return {"median_us": float(np.median(ts) * 1e6), "p10_us": float(np.percentile(ts, 10) * 1e6),
            "p90_us": float(np.percentile(ts, 90) * 1e6), "calls": len(ts)}


def build(env, algo, sparsity, folder, narrow=False):
    """(agent, params, meta) of a library-initialized, randomly pruned agent, and its compact file.

    ``narrow``: instead, the dense network of the same depth whose kernels hold as many weights
    as the ``sparsity``-sparse one keeps (``sparse_orl.job.narrow.narrow_config``), unpruned."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sparse_orl import export
    from sparse_orl.algos import make_algorithm, make_config
    from sparse_orl.config import PruneConfig
    from sparse_orl.trainer.initialize import init_state
    from sparse_orl.data.transitions import Transitions
    from sparse_orl.store.atomic import flatten

    obs_dim, act_dim, max_action, _ = C.ENVS[env]
    cfg = make_config(algo, **({"vae_only": True} if algo == "bc" else {}), actor_hidden=C.ACTOR_HIDDEN,
                      critic_hidden=C.CRITIC_HIDDEN, vae_hidden=C.VAE_HIDDEN)
    if narrow:
        from sparse_orl.job.narrow import narrow_config

        cfg, _ = narrow_config(cfg, obs_dim, act_dim, max_action, sparsity)
    agent = make_algorithm(cfg, obs_dim, act_dim, max_action)
    n = 16
    data = Transitions(jnp.zeros((n, obs_dim)), jnp.zeros((n, act_dim)), jnp.zeros(n), jnp.zeros((n, obs_dim)),
                       jnp.zeros(n))
    state = init_state(agent, jax.random.PRNGKey(0), data, PruneConfig("none" if narrow else "random"),
                       0.0 if narrow else sparsity)
    params = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32), state.params)
    masks = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32), state.masks)
    keep = agent.acting_networks
    sub_p, sub_m = {}, {}
    for path in keep:
        sp, sm, dp, dm = params, masks, sub_p, sub_m
        parts = path.split("/")
        for part in parts[:-1]:
            sp, sm, dp, dm = sp[part], sm[part], dp.setdefault(part, {}), dm.setdefault(part, {})
        leaf_p, leaf_m = sp[parts[-1]], sm[parts[-1]]
        if parts[-1] == "vae":  # acting needs the decoder only
            leaf_p = {k: v for k, v in leaf_p.items() if k.startswith("d")}
            leaf_m = {k: leaf_m[k] for k in leaf_p}
        dp[parts[-1]], dm[parts[-1]] = leaf_p, leaf_m
    meta = {"kind": "sparse_orl.policy",
            "config": cfg.to_dict() | {"obs_dim": obs_dim, "act_dim": act_dim, "max_action": max_action,
                                       "env_id": env}, "acting": agent.acting_program(),
            "obs_mean": np.zeros(obs_dim, np.float32), "obs_std": np.ones(obs_dim, np.float32)}
    path = os.path.join(folder, f"{algo}{'_narrow' if narrow else ''}.soc")
    nbytes = export.save_compact(path, sub_p, sub_m, meta)
    dense_bytes = export.dense_nbytes(sub_p)
    kept = sum(int(m.sum()) for k, m in flatten(sub_m).items() if k.endswith("kernel"))
    total = sum(m.size for k, m in flatten(sub_m).items() if k.endswith("kernel"))
    widths = {spec.name: list(getattr(cfg, spec.hidden_field)) for spec in agent.network_specs}
    return agent, params, state, path, {"file_bytes": nbytes, "dense_bytes": dense_bytes, "kernel_weights": kept,
                                        "kernel_sparsity": 1 - kept / total, "widths": widths}


def main(argv=None):
    args = parse_args(argv)
    if args.blas_threads:
        for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[v] = str(args.blas_threads)
    import jax
    import numpy as np

    from sparse_orl.deploy import Policy

    warn = C.load_warning()
    if warn:
        print(warn)
    print(f"machine: {C.machine_info()}")
    blas_env = {v: os.environ.get(v, "") for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"numpy {np.__version__}, jax {jax.__version__}, BLAS thread env {blas_env}")
    obs_dim = C.ENVS[args.env][0]
    rows, files = [], {}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for algo, narrow in [(a, nw) for a in ("bc", "bcq") for nw in ((False, True) if args.narrow else (False,))]:
            agent, params, state, path, finfo = build(args.env, algo, args.sparsity, tmp, narrow)
            label = f"{algo} narrow" if narrow else algo
            files[label] = finfo
            print(f"{label}: compact file {finfo['file_bytes']} B vs dense float32 {finfo['dense_bytes']} B "
                  f"({finfo['kernel_weights']:,} kernel weights, kernel sparsity {finfo['kernel_sparsity']:.4f}, "
                  f"widths {finfo['widths']})")
            pols = {"numpy dense": Policy.load(path, "numpy", sparse=False),
                    "numpy sparse": Policy.load(path, "numpy", sparse=True),
                    "jax dense": Policy.load(path, "jax", sparse=False)}
            flax_act = jax.jit(agent.act)
            key = jax.random.PRNGKey(1)
            for b in args.batches:
                obs = rng.standard_normal((b, obs_dim) if b > 1 else (obs_dim,)).astype(np.float32)
                cells = {}
                for name, pol in pols.items():
                    z = rng.standard_normal(pol.latent_shape(obs.shape[:-1])).astype(np.float32)
                    cells[(label, name)] = (lambda pol=pol, z=z: pol.act(obs, z=z))
                cells[(label, "flax act")] = lambda: np.asarray(
                    flax_act(state.params, state.obs_mean, state.obs_std, obs, key))
                if algo == "bcq" and not narrow:
                    n = agent.config.num_act_samples
                    s_rep = np.broadcast_to(obs[..., None, :], obs.shape[:-1] + (n, obs_dim)).astype(np.float32)
                    zz = np.clip(rng.standard_normal(s_rep.shape[:-1] + (agent.latent_dim,)), -.5, .5).astype(np.float32)
                    aa = rng.uniform(-1, 1, s_rep.shape[:-1] + (agent.act_dim,)).astype(np.float32)
                    sz, sa = np.concatenate([s_rep, zz], -1), np.concatenate([s_rep, aa], -1)
                    for name, pol in pols.items():  # each raw MLP on its concatenated input
                        wrap = jax.jit if pol.backend == "jax" else (lambda f: f)
                        dec, per, q1 = (wrap(pol.network(*n)) for n in (("vae", "d"), ("actor/net", "l"),
                                                                        ("critic/q1/net", "l")))
                        cells[("bcq.decoder", name)] = lambda dec=dec: np.asarray(dec(sz))
                        cells[("bcq.actor", name)] = lambda per=per: np.asarray(per(sa))
                        cells[("bcq.q1", name)] = lambda q1=q1: np.asarray(q1(sa))
                for (path_name, name), fn in cells.items():
                    r = latency(fn, args.warmup, args.min_calls, args.min_time, args.max_time)
                    rows.append({"path": path_name, "batch": b, "impl": name, **r})
                    print(f"  {path_name:12s} batch {b:4d} {name:13s} {r['median_us']:10.1f} us", flush=True)
    # speedups of sparse over dense numpy (and over the best dense)
    by = {(r["path"], r["batch"], r["impl"]): r for r in rows}
    for r in rows:
        d = by.get((r["path"], r["batch"], "numpy dense"))
        r["speedup_vs_numpy_dense"] = d["median_us"] / r["median_us"] if d else None
        dense = [by[(r["path"], r["batch"], k)]["median_us"] for k in ("numpy dense", "jax dense", "flax act")
                 if (r["path"], r["batch"], k) in by]
        r["speedup_vs_best_dense"] = min(dense) / r["median_us"] if dense else None
    print()
    print(f"act latency, {args.env} shapes, {args.sparsity:.0%} sparse (random exact masks), median of >= "
          f"{args.min_calls} calls" + ("   [" + warn + "]" if warn else ""))
    print(C.table(rows, [("path", "path", ""), ("batch", "batch", "d"), ("impl", "impl", ""),
                         ("median_us", "median us", ".1f"), ("p10_us", "p10", ".1f"), ("p90_us", "p90", ".1f"),
                         ("speedup_vs_numpy_dense", "x vs numpy dense", ".2f"),
                         ("speedup_vs_best_dense", "x vs best dense", ".2f")]))
    C.write_json(args.out, {"benchmark": "inference", "args": dataclasses.asdict(args), "machine": C.machine_info(),
                            "load_warning": warn, "blas_env": blas_env, "files": files, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
