"""Acting programs on jax arrays: the one source of every algorithm's ``act``.

An algorithm describes how it acts as data (``Algorithm.acting_program``): named values flow
through a list of ops, from ``obs`` (normalized) and the program's noise (standard normal draws
of ``noise[name]["shape"]`` per observation, clipped to ``±clip``) to ``output``:

* ``mlp``: the ReLU MLP of the layers ``<net>/<layer>1, 2, ...`` on the concatenated inputs
  (``squeeze``: drop a last axis of size 1);
* ``tanh`` (times ``scale``), ``add``, ``clip`` (``lo``, ``hi``);
* ``repeat``: ``x[..., None, :]`` broadcast to ``n`` copies;
* ``argmax_select``: the row of ``values`` (..., n, d) where ``score`` (..., n) is largest.

:func:`run_program` interprets it here, inside jit and vmap; ``sparse_orl.deploy`` interprets
the same program in numpy from an exported file. A test checks that the two agree.
"""
from __future__ import annotations

from typing import Any, Dict, List

import jax
import jax.numpy as jnp

from sparse_orl.algos.networks import mlp_apply

OPS = ("mlp", "tanh", "add", "clip", "repeat", "argmax_select")


def _subtree(params, path: str):
    node = params
    for part in path.split("/"):
        node = node[part]
    return node


def mlp_layers(params, net: str, letter: str) -> List[Dict[str, Any]]:
    """The layers ``<net>/<letter>1, 2, ...`` of ``params`` in numeric order."""
    node = _subtree(params, net)
    names = sorted((k for k in node if k.startswith(letter) and k[len(letter):].isdigit()),
                   key=lambda k: int(k[len(letter):]))
    if not names:
        raise ValueError(f"params have no layers {net}/{letter}1...")
    return [node[k] for k in names]


def run_program(program: Dict[str, Any], params, values: Dict[str, Any], compute_dtype=jnp.float32):
    """The program's output for ``values`` (``obs`` normalized, noise already clipped)."""
    env = dict(values)
    for op in program["ops"]:
        kind = op["op"]
        if kind == "mlp":
            x = jnp.concatenate([env[k] for k in op["in"]], axis=-1)
            y = mlp_apply(mlp_layers(params, op["net"], op["layer"]), x, compute_dtype)
            out = y[..., 0] if op.get("squeeze") else y
        elif kind == "tanh":
            out = float(op.get("scale", 1.0)) * jnp.tanh(env[op["x"]])
        elif kind == "add":
            out = env[op["x"]] + env[op["y"]]
        elif kind == "clip":
            out = jnp.clip(env[op["x"]], float(op["lo"]), float(op["hi"]))
        elif kind == "repeat":
            x = env[op["x"]]
            out = jnp.broadcast_to(x[..., None, :], x.shape[:-1] + (int(op["n"]), x.shape[-1]))
        elif kind == "argmax_select":
            best = jnp.argmax(env[op["score"]], axis=-1)
            out = jnp.take_along_axis(env[op["values"]], best[..., None, None], axis=-2)[..., 0, :]
        else:
            raise ValueError(f"unknown op {kind!r} in an acting program (known: {', '.join(OPS)})")
        env[op["out"]] = out
    return env[program["output"]]


def act(program: Dict[str, Any], params, obs, key: jax.Array, compute_dtype=jnp.float32):
    """Actions for normalized ``obs`` (..., obs_dim): the noise drawn from ``key`` (one noise: ``key``
    itself; several: ``split(key, n)`` in the program's order), then :func:`run_program`."""
    noise = program.get("noise", {})
    # without noise the key is never read (a deterministic policy may be given key=None)
    keys = [key] if len(noise) <= 1 else list(jax.random.split(key, len(noise)))
    values = {"obs": obs}
    for k, (name, spec) in zip(keys, noise.items()):
        shape = obs.shape[:-1] + tuple(int(d) for d in spec["shape"])
        values[name] = jnp.clip(jax.random.normal(k, shape), -spec["clip"], spec["clip"])
    return run_program(program, params, values, compute_dtype)
