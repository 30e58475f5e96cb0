"""BCQ's networks in ``flax.linen``: perturbation actor, Q-network, VAE.

Architectures follow Fujimoto et al. (2019) as used by the BEAR repository
(facts file, section 2). Every layer is :class:`Dense`, whose default
initialization is PyTorch's ``nn.Linear`` default, U(±1/√fan_in) for kernel and
bias, because pruning-at-init scores depend on the initial weights.

Param trees are plain nested dicts: ``{"l1": {"kernel", "bias"}, ...}``. Kernels
(ndim 2) are the prunable leaves; biases are never pruned.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl.algos.compact_params import is_compact
from sparse_orl.kernels import sparse_matmul

Array = jax.Array


def householder_q(a: Array) -> Array:
    """Q of the QR decomposition a = QR (a: (m, n), m >= n), signed so that diag(R) > 0.

    Householder reflections in plain ``lax`` loops: no LAPACK call, so it vmaps into batched
    array ops and runs inside any device program. A QR with diag(R) > 0 is unique for a
    full-rank ``a``, so this equals ``Q · sign(diag R)`` of any other QR routine up to rounding.
    """
    m, n = a.shape
    rows = jnp.arange(m)

    def reduce(j, carry):
        r, vs = carry
        x = jnp.where(rows >= j, r[:, j], 0.0)
        norm = jnp.sqrt(jnp.sum(x * x))
        alpha = jnp.where(x[j] > 0, -norm, norm)  # the sign that avoids cancellation
        v = x.at[j].add(-alpha)
        vn = jnp.sqrt(jnp.sum(v * v))
        v = jnp.where(vn > 0, v / jnp.where(vn > 0, vn, 1.0), 0.0)
        return r - 2.0 * jnp.outer(v, v @ r), vs.at[j].set(v)

    r, vs = jax.lax.fori_loop(0, n, reduce, (a, jnp.zeros((n, m), a.dtype)))

    def expand(i, q):  # Q = H_0 H_1 ... H_{n-1} I[:, :n], applied from the last reflection
        v = vs[n - 1 - i]
        return q - 2.0 * jnp.outer(v, v @ q)

    q = jax.lax.fori_loop(0, n, expand, jnp.eye(m, n, dtype=a.dtype))
    d = jnp.diagonal(r)
    return q * jnp.where(d < 0, -1.0, 1.0)


def orthogonal_init(scale: float):
    """Orthogonal kernels of scale ``scale`` (Saxe et al. 2014), as ``flax.linen.initializers.orthogonal``:
    Q of the QR of a standard-normal (fan_in, features) matrix (transposed when wider than tall),
    columns signed by diag(R), times ``scale``.

    The QR is :func:`householder_q`, not LAPACK's: a vmapped XLA QR is one batched LAPACK call,
    which hung for minutes on this project's loaded 2-core CPU, and a host-callback QR deadlocked
    a program split over CPU devices .
    """

    def init(key, shape, dtype=jnp.float32):
        if len(shape) != 2:
            raise ValueError(f"orthogonal_init needs a 2-D kernel shape, got {shape}")
        rows, cols = shape
        mat = (cols, rows) if rows < cols else (rows, cols)
        q = householder_q(jax.random.normal(key, mat, jnp.float32))
        return (scale * (q.T if rows < cols else q)).astype(dtype)

    return init


def torch_uniform_init(fan_in: int):
    """U(-1/√fan_in, 1/√fan_in), PyTorch's default for Linear weights and biases."""
    bound = 1.0 / jnp.sqrt(jnp.float32(fan_in))

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class Dense(nn.Module):
    """y = x @ kernel + bias, with a choice of initialization and matmul precision.

    ``init_scheme="torch"``: kernel and bias ~ U(±1/√fan_in) (PyTorch default).
    ``init_scheme="flax"``: lecun_normal kernel, zero bias (Flax default).
    ``init_scheme="orthogonal"``: orthogonal kernel of scale √2, zero bias (IQL's authors).
    ``compute_dtype=jnp.bfloat16`` multiplies bfloat16 inputs and weights with a
    float32 accumulator and output; the master weights stay float32.
    """

    features: int
    init_scheme: str = "torch"
    compute_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        fan_in = x.shape[-1]
        if self.init_scheme == "torch":
            k_init = b_init = torch_uniform_init(fan_in)
        elif self.init_scheme == "flax":
            k_init, b_init = nn.initializers.lecun_normal(), nn.initializers.zeros_init()
        elif self.init_scheme == "orthogonal":  # IQL's authors: orthogonal kernels of scale √2, zero biases
            k_init, b_init = orthogonal_init(float(np.sqrt(2.0))), nn.initializers.zeros_init()
        else:
            raise ValueError(f"unknown init scheme {self.init_scheme!r} (expected 'torch', 'flax' or 'orthogonal')")
        if self.has_variable("params", "kernel") and is_compact(self.get_variable("params", "kernel")):
            kernel = self.get_variable("params", "kernel")  # compact format: kept values + fixed indices
        else:
            kernel = self.param("kernel", k_init, (fan_in, self.features), jnp.float32)
        bias = self.param("bias", b_init, (self.features,), jnp.float32)
        return dense(x, kernel, bias, self.compute_dtype)


def dense(x: Array, kernel, bias: Array, compute_dtype: Any = jnp.float32) -> Array:
    """x @ kernel + bias; with ``compute_dtype=bfloat16`` the product takes bfloat16 inputs and a
    float32 accumulator. A compact kernel (kept values + fixed indices) multiplies with the sparse
    kernels, in float32 (:func:`sparse_orl.kernels.sparse_matmul`). The one affine map of every
    network and of the acting interpreter."""
    if is_compact(kernel):
        return sparse_matmul(x, kernel.values, kernel.index) + bias
    if compute_dtype == jnp.float32:
        y = jnp.dot(x, kernel)
    else:
        y = jax.lax.dot_general(x.astype(compute_dtype), kernel.astype(compute_dtype),
                                (((x.ndim - 1,), (0,)), ((), ())), preferred_element_type=jnp.float32)
    return y + bias


def mlp_apply(layers, x: Array, compute_dtype: Any = jnp.float32) -> Array:
    """A ReLU MLP over ``layers`` (``{"kernel", "bias"}`` dicts, input first): what :class:`MLP` computes."""
    for layer in layers[:-1]:
        x = nn.relu(dense(x, layer["kernel"], layer["bias"], compute_dtype))
    return dense(x, layers[-1]["kernel"], layers[-1]["bias"], compute_dtype)


class MLP(nn.Module):
    """ReLU MLP; layers are named l1, l2, ... so mask reports read naturally."""

    hidden: Sequence[int]
    out: int
    init_scheme: str = "torch"
    compute_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for i, h in enumerate(self.hidden):
            x = nn.relu(Dense(h, self.init_scheme, self.compute_dtype, name=f"l{i + 1}")(x))
        return Dense(self.out, self.init_scheme, self.compute_dtype, name=f"l{len(self.hidden) + 1}")(x)


class Actor(nn.Module):
    """Perturbation model ξ(s, a) = clip(a + φ·max_action·tanh(f([s, a])), ±max_action)."""

    act_dim: int
    max_action: float
    hidden: Sequence[int] = (400, 300)
    phi: float = 0.05
    init_scheme: str = "torch"
    compute_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs: Array, action: Array) -> Array:
        x = jnp.concatenate([obs, action], axis=-1)
        delta = MLP(self.hidden, self.act_dim, self.init_scheme, self.compute_dtype, name="net")(x)
        a = action + self.phi * self.max_action * jnp.tanh(delta)
        return jnp.clip(a, -self.max_action, self.max_action)


class Critic(nn.Module):
    """One Q-network Q(s, a) -> scalar; BCQ holds two independent copies."""

    hidden: Sequence[int] = (400, 300)
    init_scheme: str = "torch"
    compute_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs: Array, action: Array) -> Array:
        x = jnp.concatenate([obs, action], axis=-1)
        return MLP(self.hidden, 1, self.init_scheme, self.compute_dtype, name="net")(x)[..., 0]


class VAE(nn.Module):
    """Conditional VAE G(a | s) of BCQ.

    Encoder [s, a] -> hidden -> (mean, log_std), log_std clamped to [-4, 15];
    z = mean + exp(log_std)·ε. Decoder [s, z] -> hidden -> max_action·tanh.
    """

    act_dim: int
    latent_dim: int
    max_action: float
    hidden: Sequence[int] = (750, 750)
    init_scheme: str = "torch"
    compute_dtype: Any = jnp.float32

    def setup(self):
        dense = lambda n, name: Dense(n, self.init_scheme, self.compute_dtype, name=name)
        self.enc = [dense(h, f"e{i + 1}") for i, h in enumerate(self.hidden)]
        self.mean_head = dense(self.latent_dim, "mean")
        self.log_std_head = dense(self.latent_dim, "log_std")
        self.dec = [dense(h, f"d{i + 1}") for i, h in enumerate(self.hidden)]
        self.dec_out = dense(self.act_dim, f"d{len(self.hidden) + 1}")

    def encode(self, obs: Array, action: Array) -> Tuple[Array, Array]:
        x = jnp.concatenate([obs, action], axis=-1)
        for layer in self.enc:
            x = nn.relu(layer(x))
        mean = self.mean_head(x)
        log_std = jnp.clip(self.log_std_head(x), -4.0, 15.0)
        return mean, jnp.exp(log_std)

    def decode(self, obs: Array, z: Array) -> Array:
        x = jnp.concatenate([obs, z], axis=-1)
        for layer in self.dec:
            x = nn.relu(layer(x))
        return self.max_action * jnp.tanh(self.dec_out(x))

    def __call__(self, obs: Array, action: Array, eps: Array) -> Tuple[Array, Array, Array]:
        """Returns (reconstruction, mean, std) for the reparameterized z = mean + std·ε."""
        mean, std = self.encode(obs, action)
        z = mean + std * eps
        return self.decode(obs, z), mean, std
