"""The compact sparse linear layer (sparse_orl.kernels): FFI kernels against dense references.

Oracles: the masked dense product x @ (w * m) and its jax.grad, and the segment-sum reference
(``reference_matmul``). Every instruction set the CPU runs is checked, since the kernels pick
one at run time. Subprocesses cover what needs a fresh process: the fallback without the
library and shard_map over several CPU devices.
"""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from sparse_orl import kernels as K
from sparse_orl.kernels import ops

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_library = pytest.mark.skipif(not K.available(), reason=f"kernels unavailable: {K.unavailable_reason()}")
ISAS = K.supported_isas() or ("auto",)
RTOL, ATOL = 2e-5, 2e-5


def random_layer(rng, n_in, n_out, density, empty_rows=(), empty_cols=()):
    """A flax-shaped kernel (in, out) and 0/1 mask, with whole output/input units pruned."""
    w = rng.standard_normal((n_in, n_out)).astype(np.float32)
    m = (rng.random((n_in, n_out)) < density).astype(np.float32)
    m[list(empty_cols), :] = 0  # input units with no kept weight
    m[:, list(empty_rows)] = 0  # output units with no kept weight
    return w, m


def dense_grads(w, m, x, dy):
    """y, dx and the kernel gradient of y = x @ (w*m) for the cotangent dy."""
    y, vjp = jax.vjp(lambda w, x: x @ (w * m), w, x)
    dw, dx = vjp(dy)
    return y, dx, dw


def kept_grads(index, dw):
    """The dense kernel gradient gathered at the compact entries (0 at padding)."""
    row_ptr = np.asarray(index.row_ptr)
    kept = int(row_ptr[-1])
    rows = np.repeat(np.arange(len(row_ptr) - 1), np.diff(row_ptr))
    out = np.zeros(index.k_max, np.float32)
    out[:kept] = np.asarray(dw)[np.asarray(index.col_idx)[:kept], rows]
    return out


def compact_grads(layer, x, dy, isa):
    y, vjp = jax.vjp(lambda v, x: K.sparse_matmul(x, v, layer.index, isa=isa), layer.values, x)
    dv, dx = vjp(dy)
    return y, dx, dv


def close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


# --- layout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,density,pad", [((7, 5), 0.4, 0), ((30, 17), 0.1, 9), ((8, 8), 1.0, 3), ((6, 4), 0.0, 2)])
def test_round_trip_is_exact(shape, density, pad):
    rng = np.random.default_rng(0)
    w, m = random_layer(rng, *shape, density, empty_rows=[0], empty_cols=[1])
    layer = K.from_dense(w, m, k_max=int(m.sum()) + pad)
    assert layer.index.shape == shape and layer.index.k_max == int(m.sum()) + pad
    np.testing.assert_array_equal(np.asarray(K.to_dense(*layer)), w * m)
    np.testing.assert_array_equal(np.asarray(K.mask_of(layer.index)), m)
    # Padding entries: value 0, index 0, beyond row_ptr[out].
    kept = int(m.sum())
    assert int(layer.index.row_ptr[-1]) == int(layer.index.t_ptr[-1]) == kept
    assert not np.asarray(layer.values[kept:]).any()
    # The transposed order points at the same weights.
    perm = np.asarray(layer.index.t_perm[:kept])
    assert sorted(perm.tolist()) == list(range(kept))
    np.testing.assert_array_equal(np.asarray(layer.index.col_idx)[perm], np.repeat(np.arange(shape[0]), m.sum(1).astype(int)))


def test_from_dense_traced_matches_host_and_rejects_overflow():
    rng = np.random.default_rng(1)
    w, m = random_layer(rng, 12, 9, 0.3)
    host = K.from_dense(w, m, k_max=40)
    traced = jax.jit(lambda w, m: K.from_dense(w, m, k_max=40))(w, m)
    for a, b in zip(jax.tree.leaves(host), jax.tree.leaves(traced)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # vmapped over runs whose masks keep different counts
    w2, m2 = random_layer(rng, 12, 9, 0.1)
    stacked = jax.vmap(lambda w, m: K.from_dense(w, m, k_max=40))(np.stack([w, w2]), np.stack([m, m2]))
    for r, (wr, mr) in enumerate([(w, m), (w2, m2)]):
        for a, b in zip(jax.tree.leaves(K.from_dense(wr, mr, k_max=40)), jax.tree.leaves(stacked)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b[r]))
    with pytest.raises(ValueError):
        K.from_dense(w, m, k_max=int(m.sum()) - 1)
    with pytest.raises(ValueError):
        jax.jit(lambda w, m: K.from_dense(w, m))(w, m)  # a traced mask needs k_max


# --- forward and gradients against the masked dense product ----------------------------------


CASES = [  # (in, out, batch, density, padding)
    (37, 23, 13, 0.2, 7),
    (40, 33, 100, 0.1, 0),
    (64, 48, 300, 0.05, 5),
    (16, 16, 16, 0.5, 1),
    (19, 21, 1, 0.3, 2),
    (9, 31, 5, 0.3, 0),
    (5, 7, 2, 0.6, 3),
    (33, 17, 8, 0.2, 0),
]


# Every case on the best instruction set; the others on a few cases with all batch widths.
ISA_CASES = [(ISAS[-1], case) for case in CASES] + [(isa, CASES[i]) for isa in ISAS[:-1] for i in (1, 4, 6, 7)]


@needs_library
@pytest.mark.parametrize("isa,case", ISA_CASES)
def test_kernels_match_masked_dense(isa, case):
    n_in, n_out, batch, density, pad = case
    rng = np.random.default_rng(n_in * 1000 + batch)
    w, m = random_layer(rng, n_in, n_out, density, empty_rows=[1, 4], empty_cols=[0, 3])
    layer = K.from_dense(w, m, k_max=int(m.sum()) + pad)
    x = rng.standard_normal((batch, n_in)).astype(np.float32)
    dy = rng.standard_normal((batch, n_out)).astype(np.float32)
    y_ref, dx_ref, dw_ref = dense_grads(w, m, x, dy)
    y, dx, dv = compact_grads(layer, x, dy, isa)
    close(y, y_ref)
    close(dx, dx_ref)
    close(dv, kept_grads(layer.index, dw_ref))
    assert not np.asarray(dv[int(m.sum()):]).any(), "padding entries must get exactly 0"


@needs_library
def test_feature_major_copies_are_padded_transposes():
    rng = np.random.default_rng(10)
    w, m = random_layer(rng, 12, 7, 0.5)
    layer = K.from_dense(w, m)
    x = rng.standard_normal((21, 12)).astype(np.float32)  # padded to 32 lanes
    dy = rng.standard_normal((21, 7)).astype(np.float32)
    _, xt = ops.ffi_forward(layer.values, layer.index, x)
    _, dyt = ops.ffi_input_grad(layer.values, layer.index, dy)
    for copy, a in ((xt, x), (dyt, dy)):
        assert copy.shape == (a.shape[1], ops.padded_batch(21)) == (a.shape[1], 32)
        np.testing.assert_array_equal(np.asarray(copy[:, :21]), a.T)
        assert not np.asarray(copy[:, 21:]).any()


@needs_library
@pytest.mark.parametrize("pad", [0, 4])
def test_all_pruned_layer(pad):
    rng = np.random.default_rng(2)
    w, m = random_layer(rng, 10, 6, 0.0)
    layer = K.from_dense(w, m, k_max=pad)
    x = rng.standard_normal((3, 10)).astype(np.float32)
    y, dx, dv = compact_grads(layer, x, np.ones((3, 6), np.float32), "auto")
    assert y.shape == (3, 6) and not np.asarray(y).any() and not np.asarray(dx).any()
    assert dv.shape == (pad,) and not np.asarray(dv).any()


@needs_library
def test_leading_axes_of_x_are_kept():
    rng = np.random.default_rng(3)
    w, m = random_layer(rng, 11, 7, 0.4)
    layer = K.from_dense(w, m)
    x = rng.standard_normal((4, 3, 11)).astype(np.float32)
    close(K.sparse_matmul(x, *layer), x @ (w * m))


@needs_library
def test_reference_and_fallback_match_the_kernels():
    rng = np.random.default_rng(4)
    w, m = random_layer(rng, 50, 40, 0.1, empty_rows=[2])
    layer = K.from_dense(w, m, k_max=int(m.sum()) + 3)
    x = rng.standard_normal((21, 50)).astype(np.float32)

    def grads(fn):
        return jax.value_and_grad(lambda v, x: jnp.sum(jnp.tanh(fn(x, v, layer.index))), argnums=(0, 1))(layer.values, x)

    want = grads(K.sparse_matmul)
    for fn in (K.reference_matmul, K.dense_matmul):
        for a, b in zip(jax.tree.leaves(grads(fn)), jax.tree.leaves(want)):
            close(a, b)


@needs_library
def test_finite_differences_on_a_tiny_layer():
    rng = np.random.default_rng(5)
    w, m = random_layer(rng, 4, 3, 0.6)
    layer = K.from_dense(w, m, k_max=int(m.sum()) + 1)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    loss = lambda v, x: jnp.sum(jnp.sin(K.sparse_matmul(x, v, layer.index)))  # noqa: E731
    check_grads(loss, (layer.values, x), order=1, modes=["rev"], eps=1e-2, atol=2e-2, rtol=2e-2)


# --- transformations --------------------------------------------------------------------------


def stacked_runs(rng, runs, n_in, n_out, densities, k_max):
    """Layers of several runs with different masks and kept counts, padded to one k_max."""
    layers = []
    for d in densities[:runs]:
        w, m = random_layer(rng, n_in, n_out, d)
        layers.append((w, m, K.from_dense(w, m, k_max=k_max)))
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[c for _, _, c in layers])
    return layers, stacked


@needs_library
@pytest.mark.parametrize("shared_x", [False, True])
def test_vmap_over_runs_with_different_masks(shared_x):
    rng = np.random.default_rng(6)
    layers, stacked = stacked_runs(rng, 3, 24, 18, [0.05, 0.2, 0.4], k_max=24 * 18 // 2)
    xs = rng.standard_normal((3, 10, 24)).astype(np.float32)
    dy = rng.standard_normal((3, 10, 18)).astype(np.float32)
    x_in = xs[0] if shared_x else xs

    def run(values, index, x, dy):
        y, vjp = jax.vjp(lambda v, x: K.sparse_matmul(x, v, index), values, x)
        return (y,) + vjp(dy)

    y, dv, dx = jax.jit(jax.vmap(run, in_axes=(0, 0, None if shared_x else 0, 0)))(stacked.values, stacked.index, x_in, dy)
    for r, (w, m, layer) in enumerate(layers):
        y_ref, dx_ref, dw_ref = dense_grads(w, m, xs[0] if shared_x else xs[r], dy[r])
        close(y[r], y_ref)
        close(dx[r], dx_ref)
        close(dv[r], kept_grads(layer.index, dw_ref))
        assert not np.asarray(dv[r, int(m.sum()):]).any()


@needs_library
def test_nested_vmap_broadcasts_unbatched_operands():
    rng = np.random.default_rng(7)
    layers, stacked = stacked_runs(rng, 2, 9, 6, [0.3, 0.6], k_max=40)
    x = jnp.asarray(rng.standard_normal((4, 5, 9)), jnp.float32)  # (seeds, batch, in), shared by the runs
    # Outer vmap over runs (values and index batched), inner over seeds (only x batched).
    f = jax.vmap(lambda v, idx: jax.vmap(lambda x: K.sparse_matmul(x, v, idx))(x))
    y = jax.jit(f)(stacked.values, stacked.index)
    for r, (w, m, _) in enumerate(layers):
        close(y[r], np.asarray(x) @ (w * m))


@needs_library
def test_inside_jit_scan_map_and_fori_loop():
    rng = np.random.default_rng(8)
    w, m = random_layer(rng, 20, 20, 0.2)
    layer = K.from_dense(w, m, k_max=120)
    x = rng.standard_normal((7, 20)).astype(np.float32)
    dense = lambda h: jnp.tanh(h @ (w * m))  # noqa: E731
    sparse = lambda h: jnp.tanh(K.sparse_matmul(h, *layer))  # noqa: E731

    def loops(step):
        scanned = jax.lax.scan(lambda h, _: (step(h), None), x, None, length=3)[0]
        mapped = jax.lax.map(step, jnp.stack([x, 2 * x]))
        looped = jax.lax.fori_loop(0, 3, lambda i, h: step(h), x)
        return scanned, mapped, looped

    for a, b in zip(jax.jit(lambda: loops(sparse))(), loops(dense)):
        close(a, b)
    # A gradient through a scan of layers (the training loop's shape).
    def scanned_loss(matmul):
        return lambda p: jnp.sum(jax.lax.scan(lambda h, _: (jnp.tanh(matmul(h, p)), None), x, None, length=2)[0])

    g = jax.jit(jax.grad(scanned_loss(lambda h, v: K.sparse_matmul(h, v, layer.index))))(layer.values)
    g_dense = jax.grad(scanned_loss(lambda h, w: h @ (w * m)))(jnp.asarray(w))
    close(g, kept_grads(layer.index, g_dense), rtol=1e-4, atol=1e-4)


@needs_library
def test_bad_index_is_an_error_not_a_crash():
    rng = np.random.default_rng(9)
    w, m = random_layer(rng, 6, 5, 0.5)
    layer = K.from_dense(w, m)
    bad = layer.index._replace(col_idx=layer.index.col_idx.at[0].set(6))
    with pytest.raises(Exception, match="valid sparse layer"):
        jax.block_until_ready(K.sparse_matmul(np.ones((2, 6), np.float32), layer.values, bad))


# --- fresh processes --------------------------------------------------------------------------


def run_python(code, **env_overrides):
    env = dict(os.environ, JAX_PLATFORMS="cpu", **env_overrides)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow
def test_fallback_without_the_library_warns_once_and_matches_dense():
    proc = run_python(
        """
        import warnings
        import numpy as np, jax
        import sparse_orl
        from sparse_orl import kernels as K
        assert not K.available() and "SPARSE_ORL_KERNELS" in K.unavailable_reason()
        rng = np.random.default_rng(0)
        w = rng.standard_normal((9, 4)).astype(np.float32); m = (rng.random((9, 4)) < 0.5).astype(np.float32)
        layer = K.from_dense(w, m, k_max=int(m.sum()) + 2)
        x = rng.standard_normal((3, 9)).astype(np.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = K.sparse_matmul(x, *layer)
            g = jax.grad(lambda v: K.sparse_matmul(x, v, layer.index).sum())(layer.values)
        assert len(caught) == 1 and "unavailable" in str(caught[0].message), caught
        np.testing.assert_allclose(y, x @ (w * m), rtol=1e-5, atol=1e-5)
        assert not np.asarray(g[-2:]).any()
        """,
        SPARSE_ORL_KERNELS="0",
    )
    assert proc.stderr.count("unavailable") <= 1


@pytest.mark.slow
@needs_library
def test_shard_map_over_cpu_devices():
    run_python(
        """
        import numpy as np, jax, jax.numpy as jnp
        from jax.sharding import Mesh, PartitionSpec as P
        from sparse_orl import kernels as K
        assert jax.device_count() == 2
        rng = np.random.default_rng(0)
        ws, ms, layers = [], [], []
        for r in range(4):
            w = rng.standard_normal((12, 8)).astype(np.float32); m = (rng.random((12, 8)) < 0.1 * (r + 1)).astype(np.float32)
            ws.append(w); ms.append(m); layers.append(K.from_dense(w, m, k_max=60))
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *layers)
        x = rng.standard_normal((4, 5, 12)).astype(np.float32)
        mesh = Mesh(np.array(jax.devices()), ("runs",))
        def block(values, index, x):  # this device's runs
            def one(v, idx, x):
                return jax.value_and_grad(lambda v: jnp.sum(K.sparse_matmul(x, v, idx) ** 2))(v)
            return jax.vmap(one)(values, index, x)
        for check_vma in (False, True):  # the library runs with check_vma=False
            f = jax.jit(jax.shard_map(block, mesh=mesh, in_specs=P("runs"), out_specs=P("runs"), check_vma=check_vma))
            loss, grad = f(stacked.values, stacked.index, x)
            for r in range(4):
                want = np.sum((x[r] @ (ws[r] * ms[r])) ** 2)
                np.testing.assert_allclose(loss[r], want, rtol=1e-4)
                assert not np.asarray(grad[r, int(ms[r].sum()):]).any()
        """,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
