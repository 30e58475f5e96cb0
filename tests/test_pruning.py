"""Pruning scores against finite differences / explicit Hessians, and exact masks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from sparse_orl import pruning
from sparse_orl.algos.networks import MLP


def _tiny_problem(seed=0):
    net = MLP(hidden=(5,), out=2)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    x = jax.random.normal(k2, (8, 3))
    y = jax.random.normal(k3, (8, 2))
    params = net.init(k1, x)["params"]

    def loss_fn(p, batch):
        xb, yb = batch
        return jnp.mean(jnp.square(net.apply({"params": p}, xb) - yb))

    return loss_fn, params, (x, y)


def test_snip_matches_finite_differences_of_mask():
    loss_fn, params, batch = _tiny_problem()
    scores = pruning.snip_scores(loss_fn, params, batch)
    flat_p, unravel = ravel_pytree(params)
    flat_s, _ = ravel_pytree(scores)
    h = 1e-2

    def loss_with_c(c):  # multiplicative connection mask c, SNIP's definition
        return loss_fn(unravel(flat_p * c), batch)

    loss_c = jax.jit(loss_with_c)
    fd = []
    for j in range(flat_p.size):
        e = jnp.zeros_like(flat_p).at[j].set(h)
        fd.append(abs(float(loss_c(1.0 + e)) - float(loss_c(1.0 - e))) / (2 * h))
    np.testing.assert_allclose(np.asarray(flat_s), np.asarray(fd), rtol=2e-2, atol=2e-4)


def test_grasp_hg_matches_explicit_hessian():
    loss_fn, params, batch = _tiny_problem(1)
    flat_p, unravel = ravel_pytree(params)
    f = lambda v: loss_fn(unravel(v), batch)
    hess = jax.hessian(f)(flat_p)
    g = jax.grad(f)(flat_p)
    # GraSP's g covers the weights only: zero the bias entries of the tangent
    prunable = ravel_pytree(jax.tree_util.tree_map(
        lambda x: jnp.full(x.shape, float(x.ndim >= 2)), params))[0]
    expected_hg = hess @ (g * prunable)
    hg = ravel_pytree(pruning.hessian_gradient_product(loss_fn, params, batch))[0]
    np.testing.assert_allclose(np.asarray(hg), np.asarray(expected_hg), rtol=1e-4, atol=1e-6)
    scores = ravel_pytree(pruning.grasp_scores(loss_fn, params, batch))[0]
    np.testing.assert_allclose(np.asarray(scores), np.asarray(flat_p * expected_hg), rtol=1e-4, atol=1e-6)


def test_grasp_sign_on_hand_computed_quadratic():
    # L(w) = 0.5 wᵀAw + bᵀw for a 1x3 kernel: g = Aw + b, Hg = A(Aw + b).
    A = jnp.array([[2.0, 0.0, 0.0], [0.0, -1.0, 0.5], [0.0, 0.5, 1.0]])
    b = jnp.array([0.5, -1.0, 0.0])
    w = jnp.array([[1.0, 2.0, -1.0]])
    loss_fn = lambda p, _: 0.5 * p["w"][0] @ A @ p["w"][0] + b @ p["w"][0]
    g = A @ w[0] + b  # [2.5, -3.5, 0.0]
    importance = w[0] * (A @ g)  # θ ⊙ Hg = [5.0, 7.0, 1.75]
    scores = pruning.grasp_scores(loss_fn, {"w": w}, None)["w"][0]
    np.testing.assert_allclose(np.asarray(scores), np.asarray(importance), rtol=1e-6)
    # GraSP removes the largest −θ⊙Hg, i.e. the smallest importance: w[2] goes first.
    mask = pruning.masks_from_scores({"w": scores[None]}, 1 / 3)["w"][0]
    np.testing.assert_array_equal(np.asarray(mask), [1.0, 1.0, 0.0])


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999])
def test_mask_counts_are_exact(sparsity):
    key = jax.random.PRNGKey(0)
    scores = {"a": {"kernel": jax.random.normal(key, (37, 23)), "bias": jnp.zeros(23)},
              "b": {"kernel": jax.random.normal(jax.random.fold_in(key, 1), (23, 11)), "bias": jnp.zeros(11)}}
    masks = pruning.masks_from_scores(scores, sparsity)
    n = 37 * 23 + 23 * 11
    kept = int(masks["a"]["kernel"].sum() + masks["b"]["kernel"].sum())
    assert kept == n - round(sparsity * n)
    assert float(masks["a"]["bias"].min()) == 1.0 and float(masks["b"]["bias"].min()) == 1.0
    # the kept weights are exactly the highest scores
    flat = np.concatenate([np.ravel(scores["a"]["kernel"]), np.ravel(scores["b"]["kernel"])])
    kept_flat = np.concatenate([np.ravel(masks["a"]["kernel"]), np.ravel(masks["b"]["kernel"])]) > 0
    if 0 < kept < n:
        assert flat[kept_flat].min() >= flat[~kept_flat].max()


def test_ties_keep_exact_count_in_stable_order():
    scores = {"k": jnp.zeros((4, 5))}  # all tied: a >= threshold rule would keep everything
    masks = pruning.masks_from_scores(scores, 0.5)
    flat = np.ravel(np.asarray(masks["k"]))
    assert flat.sum() == 10
    np.testing.assert_array_equal(flat, [1.0] * 10 + [0.0] * 10)
    # -0.0 and +0.0 tie too
    scores = {"k": jnp.array([[0.0, -0.0, 0.0, -0.0]])}
    np.testing.assert_array_equal(np.asarray(pruning.masks_from_scores(scores, 0.5)["k"]), [[1, 1, 0, 0]])


def test_traced_sparsity_under_vmap_matches_concrete():
    scores = {"x": jax.random.normal(jax.random.PRNGKey(3), (50, 40)), "y": jax.random.normal(jax.random.PRNGKey(4), (40, 7))}
    levels = jnp.array([0.0, 0.3, 0.9, 0.95, 0.99])
    batched = jax.jit(jax.vmap(lambda s: pruning.masks_from_scores(scores, s)))(levels)
    for i, s in enumerate([0.0, 0.3, 0.9, 0.95, 0.99]):
        single = pruning.masks_from_scores(scores, s)
        for k in scores:
            np.testing.assert_array_equal(np.asarray(batched[k][i]), np.asarray(single[k]))


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan"), "abc"])
def test_sparsity_out_of_range_raises_naming_value(bad):
    with pytest.raises(ValueError, match=r"sparsity.*" + (r"nan" if bad != bad else r"")):
        pruning.masks_from_scores({"k": jnp.ones((3, 3))}, bad)
    with pytest.raises(ValueError, match=str(bad) if bad == bad else "nan"):
        pruning.check_sparsity(bad)


def test_random_and_magnitude_scores():
    params = {"l1": {"kernel": jnp.array([[1.0, -3.0], [0.5, 2.0]]), "bias": jnp.zeros(2)}}
    mag = pruning.magnitude_scores(params)
    np.testing.assert_array_equal(np.asarray(mag["l1"]["kernel"]), [[1.0, 3.0], [0.5, 2.0]])
    m = pruning.masks_from_scores(mag, 0.5)
    np.testing.assert_array_equal(np.asarray(m["l1"]["kernel"]), [[0, 1], [0, 1]])
    r1 = pruning.random_scores(jax.random.PRNGKey(0), params)
    r2 = pruning.random_scores(jax.random.PRNGKey(1), params)
    assert not np.allclose(r1["l1"]["kernel"], r2["l1"]["kernel"])


def test_layer_report_flags_collapse(caplog):
    masks = {"l1": {"kernel": jnp.ones((3, 4)), "bias": jnp.ones(4)},
             "l2": {"kernel": jnp.zeros((4, 2)), "bias": jnp.ones(2)}}
    rep = pruning.masks_report({"actor": masks})
    assert rep["actor"]["layers"] == {"l1": {"kept": 12, "total": 12}, "l2": {"kept": 0, "total": 8}}
    assert rep["actor"]["collapsed_layers"] == ["l2"]
    assert rep["actor"]["sparsity"] == pytest.approx(8 / 20)
    assert "COLLAPSED" in pruning.format_report(rep)
