"""The model-agnostic pruning API: prune_at_init, the pruner registry, masked optax optimizers."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparse_orl import pruning
from sparse_orl.algos.networks import MLP

BUILTIN = ("snip", "grasp", "random", "magnitude", "erk_random")


# ---- a model with every kind of leaf ---------------------------------------------------
class MixedNet(nn.Module):
    """Embed (tokens) and Conv (image) features -> LayerNorm -> Dense -> Dense."""

    @nn.compact
    def __call__(self, tokens, image):
        e = nn.Embed(11, 4)(tokens).reshape(tokens.shape[0], -1)
        c = nn.relu(nn.Conv(3, (3, 3))(image)).reshape(image.shape[0], -1)
        h = nn.LayerNorm()(jnp.concatenate([e, c], axis=-1))
        h = nn.relu(nn.Dense(16)(h))  # Dense_0 (named in creation order)
        return nn.Dense(2)(h)


class EmbedNet(nn.Module):
    """Embed -> LayerNorm -> a Dense chain (SynFlow can infer its path)."""

    @nn.compact
    def __call__(self, tokens):
        h = nn.LayerNorm()(nn.Embed(11, 4)(tokens).reshape(tokens.shape[0], -1))
        h = nn.relu(nn.Dense(8)(h))
        return nn.Dense(2)(h)


def _regression(model, inputs, seed=0):
    """(loss_fn, params, batch) of an MSE regression of random targets from ``inputs``."""
    k_init, k_y = jax.random.split(jax.random.PRNGKey(seed))
    params = model.init(k_init, *inputs)["params"]
    y = jax.random.normal(k_y, (inputs[0].shape[0], 2))

    def loss_fn(p, batch):
        *x, target = batch
        return jnp.mean(jnp.square(model.apply({"params": p}, *x) - target))

    return loss_fn, params, (*inputs, y)


def mixed_problem(seed=0):
    k1, k2 = jax.random.split(jax.random.PRNGKey(100 + seed))
    tokens = jax.random.randint(k1, (6, 3), 0, 11)
    image = jax.random.normal(k2, (6, 4, 4, 2))
    return _regression(MixedNet(), (tokens, image), seed)


def embed_problem(seed=0):
    tokens = jax.random.randint(jax.random.PRNGKey(200 + seed), (6, 3), 0, 11)
    return _regression(EmbedNet(), (tokens,), seed)


def mlp_problem(hidden=(6, 5), seed=0):
    """{"net": MLP params}: the layout of the library's actor and critic."""
    k_init, k_x, k_y = jax.random.split(jax.random.PRNGKey(seed), 3)
    net = MLP(hidden=hidden, out=2)
    x = jax.random.normal(k_x, (16, 3))
    y = jax.random.normal(k_y, (16, 2))
    params = {"net": net.init(k_init, x)["params"]}

    def loss_fn(p, batch):
        return jnp.mean(jnp.square(net.apply({"params": p["net"]}, batch[0]) - batch[1]))

    return loss_fn, params, (x, y)


def _leaves(tree):
    return jax.tree_util.tree_flatten_with_path(tree)[0]


def _name(kp):
    return jax.tree_util.keystr(kp)


def _kept_and_total(masks, params, prunable):
    kept = total = 0
    for (kp, m), p in zip(_leaves(masks), jax.tree_util.tree_leaves(params)):
        if prunable(kp, p):
            kept += int(np.count_nonzero(np.asarray(m)))
            total += int(np.size(m))
    return kept, total


def _assert_same(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for (kp, x), y in zip(_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=_name(kp))


@pytest.fixture
def registry_cleanup():
    """Names registered by a test are removed afterwards (the registry is process-wide)."""
    before = set(pruning.PRUNERS)
    yield
    for name in set(pruning.PRUNERS) - before:
        del pruning.PRUNERS[name]


# ---- which leaves are prunable -----------------------------------------------------------
def test_default_prunable_selects_kernels_only():
    _, params, _ = mixed_problem()
    chosen = sorted(_name(kp) for kp, x in _leaves(params) if pruning.default_prunable(kp, x))
    assert chosen == ["['Conv_0']['kernel']", "['Dense_0']['kernel']", "['Dense_1']['kernel']"]
    # attribute and sequence keys are understood too
    assert pruning.default_prunable((jax.tree_util.GetAttrKey("kernel"),), np.zeros((2, 2)))
    assert not pruning.default_prunable((jax.tree_util.SequenceKey(0),), np.zeros((2, 2)))
    assert not pruning.default_prunable((jax.tree_util.DictKey("kernel"),), np.zeros((2,)))


@pytest.mark.parametrize("method", BUILTIN)
def test_exact_counts_over_kernels_and_ones_elsewhere(method):
    loss_fn, params, batch = mixed_problem()
    for s in (0.5, 0.9):
        masks = pruning.prune_at_init({"net": (loss_fn, params, batch)}, method, s, jax.random.PRNGKey(3))["net"]
        kept, total = _kept_and_total(masks, params, pruning.default_prunable)
        assert kept == total - round(s * total), (method, s)
        for kp, m in _leaves(masks):
            assert m.dtype == jnp.float32
            assert set(np.unique(np.asarray(m))) <= {0.0, 1.0}
            if not _name(kp).endswith("['kernel']"):  # embedding, biases, LayerNorm scale
                assert np.all(np.asarray(m) == 1.0), _name(kp)


def test_custom_prunable_includes_the_embedding():
    loss_fn, params, batch = mixed_problem()

    def with_embedding(path, leaf):
        return pruning.default_prunable(path, leaf) or getattr(path[-1], "key", None) == "embedding"

    masks = pruning.prune_at_init({"net": (loss_fn, params, batch)}, "magnitude", 0.8, jax.random.PRNGKey(0),
                                  prunable=with_embedding)["net"]
    kept, total = _kept_and_total(masks, params, with_embedding)
    assert kept == total - round(0.8 * total)
    emb = np.asarray(masks["Embed_0"]["embedding"])
    assert 0 < np.count_nonzero(emb) < emb.size
    # magnitude is one global ranking: every kept weight outranks every pruned one
    sel = [(np.abs(np.asarray(p)), np.asarray(m)) for (kp, p), m in
           zip(_leaves(params), jax.tree_util.tree_leaves(masks)) if with_embedding(kp, p)]
    a = np.concatenate([x.ravel() for x, _ in sel])
    m = np.concatenate([y.ravel() for _, y in sel])
    assert a[m == 1].min() >= a[m == 0].max()


def test_dense_and_none_are_all_ones():
    loss_fn, params, batch = mixed_problem()
    for method in ("none", "dense"):
        masks = pruning.prune_at_init({"net": (loss_fn, params, batch)}, method, 0.9, jax.random.PRNGKey(0))
        _assert_same(masks["net"], jax.tree_util.tree_map(jnp.ones_like, params))


# ---- SynFlow ---------------------------------------------------------------------------------
def test_synflow_infers_the_mlp_path_in_layer_order():
    _, params, _ = mlp_problem(hidden=(4,) * 10)  # l1 .. l11: sorted keys would put l10 after l1
    assert pruning.chain_paths(params, prunable=pruning.default_prunable) == \
        pruning.mlp_paths(params["net"], ("net",))


@pytest.mark.parametrize("rounds", [1, 4])
def test_synflow_on_a_dense_chain_equals_synflow_scores(rounds):
    loss_fn, params, batch = mlp_problem()
    paths = pruning.mlp_paths(params["net"], ("net",))
    got = pruning.prune_at_init({"net": (loss_fn, params, batch)}, "synflow", 0.9, jax.random.PRNGKey(0),
                                rounds=rounds)["net"]
    ref = pruning.iterative_masks(
        lambda m: pruning.synflow_scores(pruning.apply_masks(params, m), paths),
        lambda s, t, prev: pruning.allocate_masks(pruning.exclude_pruned(s, prev), t),
        pruning.ones_like_masks(params), 0.9, rounds)
    _assert_same(got, ref)


def test_synflow_infers_a_path_past_an_unpruned_embedding():
    loss_fn, params, batch = embed_problem()
    masks = pruning.prune_at_init({"net": (loss_fn, params, batch)}, "synflow", 0.75, jax.random.PRNGKey(0),
                                  rounds=3)["net"]
    kept, total = _kept_and_total(masks, params, pruning.default_prunable)
    assert kept == total - round(0.75 * total)
    assert np.all(np.asarray(masks["Embed_0"]["embedding"]) == 1.0)


def test_synflow_names_the_leaf_that_breaks_the_chain():
    loss_fn, params, batch = mixed_problem()
    with pytest.raises(ValueError, match=r"network 'net'.*\['Conv_0'\]\['kernel'\].*paths="):
        pruning.prune_at_init({"net": (loss_fn, params, batch)}, "synflow", 0.5, jax.random.PRNGKey(0))
    loss_fn, params, batch = embed_problem()
    with_embedding = lambda p, x: pruning.default_prunable(p, x) or getattr(p[-1], "key", "") == "embedding"
    with pytest.raises(ValueError, match=r"\['Dense_0'\]\['kernel'\].*\['Embed_0'\]\['embedding'\].*paths="):
        pruning.prune_at_init({"net": (loss_fn, params, batch)}, "synflow", 0.5, jax.random.PRNGKey(0),
                              prunable=with_embedding)


class TwoHeads(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(8, name="trunk")(x))
        return nn.Dense(1, name="mean")(h) + nn.Dense(1, name="log_std")(h)


def test_synflow_with_explicit_paths_for_parallel_heads():
    x = jax.random.normal(jax.random.PRNGKey(5), (6, 3))
    loss_fn, params, batch = _regression(TwoHeads(), (x,))
    problems = {"net": (loss_fn, params, batch)}
    with pytest.raises(ValueError, match=r"\['log_std'\]\['kernel'\]"):
        pruning.prune_at_init(problems, "synflow", 0.5, jax.random.PRNGKey(0))
    paths = (pruning.sequential_paths(["trunk"], ("mean", "log_std")),)
    got = pruning.prune_at_init(problems, "synflow", 0.5, jax.random.PRNGKey(0), rounds=1,
                                paths={"net": paths})["net"]
    ref = pruning.masks_from_scores(pruning.synflow_scores(params, paths), 0.5)
    _assert_same(got, ref)


# ---- traced sparsity and keys ------------------------------------------------------------
@pytest.mark.parametrize("method,options", [("snip", {}), pytest.param("erk_random", {}, marks=pytest.mark.slow),
                                            pytest.param("grasp", {"rounds": 2}, marks=pytest.mark.slow),
                                            ("synflow", {"rounds": 3})])
def test_vmap_over_sparsity_matches_concrete_values(method, options):
    problem = mlp_problem() if method == "synflow" else mixed_problem()
    problems = {"b": problem, "a": mlp_problem(seed=1)}
    levels = (0.3, 0.8, 0.95)
    key = jax.random.PRNGKey(9)
    run = lambda s: pruning.prune_at_init(problems, method, s, key, **options)
    batched = jax.jit(jax.vmap(run))(jnp.array(levels))
    for i, s in enumerate(levels):
        _assert_same(jax.tree_util.tree_map(lambda x: x[i], batched), run(s))


def test_networks_get_fold_in_keys_in_sorted_order():
    problems = {"z": mlp_problem(seed=0), "a": mlp_problem(seed=1)}
    key = jax.random.PRNGKey(4)
    masks = pruning.prune_at_init(problems, "random", 0.6, key)
    assert list(masks) == ["a", "z"]
    for i, name in enumerate(["a", "z"]):
        ref = pruning.masks_from_scores(pruning.random_scores(jax.random.fold_in(key, i), problems[name][1]), 0.6)
        _assert_same(masks[name], ref)
    keys = jax.random.split(key, 2)  # vmap over keys: one mask per run
    batched = jax.vmap(lambda k: pruning.prune_at_init(problems, "random", 0.6, k))(keys)
    for i in range(2):
        _assert_same(jax.tree_util.tree_map(lambda x: x[i], batched),
                     pruning.prune_at_init(problems, "random", 0.6, keys[i]))


# ---- registry ----------------------------------------------------------------------------
def test_user_scorer_by_name(registry_cleanup):
    pruning.register_pruner("neg_magnitude", lambda loss_fn, p, b, k: jax.tree_util.tree_map(lambda x: -jnp.abs(x), p))
    loss_fn, params, batch = mixed_problem()
    masks = pruning.prune_at_init({"net": (loss_fn, params, batch)}, "neg_magnitude", 0.7, jax.random.PRNGKey(0))["net"]
    kept, total = _kept_and_total(masks, params, pruning.default_prunable)
    assert kept == total - round(0.7 * total)
    sel = [(np.abs(np.asarray(p)).ravel(), np.asarray(m).ravel()) for (kp, p), m in
           zip(_leaves(params), jax.tree_util.tree_leaves(masks)) if pruning.default_prunable(kp, p)]
    a, m = np.concatenate([x for x, _ in sel]), np.concatenate([y for _, y in sel])
    assert a[m == 1].max() <= a[m == 0].min()  # the smallest weights are kept


def test_user_gradient_scorer_iterates(registry_cleanup):
    grad_norm = lambda loss_fn, p, b, k: jax.tree_util.tree_map(jnp.abs, jax.grad(loss_fn)(p, b))
    pruning.register_pruner("grad_norm", grad_norm, defaults={"allocation": "uniform"}, batch=16, rounds=1)
    loss_fn, params, batch = mlp_problem()
    masks = pruning.prune_at_init({"net": (loss_fn, params, batch)}, "grad_norm", 0.8, jax.random.PRNGKey(0),
                                  rounds=3)["net"]
    for layer in ("l1", "l2", "l3"):  # uniform allocation: every layer near 20% density
        m = np.asarray(masks["net"][layer]["kernel"])
        assert abs(m.mean() - 0.2) < 0.1
    kept, total = _kept_and_total(masks, params, pruning.default_prunable)
    assert kept == total - round(0.8 * total)
    with pytest.raises(ValueError, match="implies allocation='uniform'"):
        pruning.prune_at_init({"net": (loss_fn, params, batch)}, "grad_norm", 0.8, jax.random.PRNGKey(0),
                              allocation="global")


def test_registry_errors(registry_cleanup):
    scorer = lambda loss_fn, p, b, k: p
    pruning.register_pruner("mine", scorer)
    with pytest.raises(ValueError, match="already registered"):
        pruning.register_pruner("mine", scorer)
    pruning.register_pruner("mine", scorer, overwrite=True)
    for bad in ("my-pruner", "a b", "", "dense", "none"):
        with pytest.raises(ValueError):
            pruning.register_pruner(bad, scorer)
    with pytest.raises(ValueError, match="defaults"):
        pruning.register_pruner("other", scorer, defaults={"sparsity": 0.5})
    for what in ("batch", "rounds"):
        with pytest.raises(ValueError, match=rf"{what} of 'other' must be None or an integer >= 1"):
            pruning.register_pruner("other", scorer, **{what: 0})
    with pytest.raises(ValueError, match="unknown pruning method 'snipp'") as err:
        pruning.resolve_pruner("snipp")
    for name in ("none", "dense", "snip", "grasp", "random", "magnitude", "synflow", "erk_random", "mine"):
        assert name in str(err.value)
    assert "--" not in str(err.value)
    assert pruning.resolve_pruner("none")[0] == "dense"


def test_driver_validates_its_inputs():
    loss_fn, params, batch = mlp_problem()
    problems = {"net": (loss_fn, params, batch)}
    key = jax.random.PRNGKey(0)
    for s in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="sparsity"):
            pruning.prune_at_init(problems, "snip", s, key)
    with pytest.raises(ValueError, match="rounds must be an integer >= 1, got 0"):
        pruning.prune_at_init(problems, "snip", 0.5, key, rounds=0)
    with pytest.raises(ValueError, match="method 'random' is one-shot: it takes rounds=1, got 2"):
        pruning.prune_at_init(problems, "random", 0.5, key, rounds=2)
    with pytest.raises(ValueError, match="non-empty"):
        pruning.prune_at_init({}, "snip", 0.5, key)
    with pytest.raises(ValueError, match=r"problems\['net'\] must be a \(loss_fn, params, batch\)"):
        pruning.prune_at_init({"net": (loss_fn, params)}, "snip", 0.5, key)
    with pytest.raises(ValueError, match="unknown pruning method"):
        pruning.prune_at_init(problems, "nope", 0.5, key)
    with pytest.raises(ValueError, match="implies allocation='erk'"):
        pruning.prune_at_init(problems, "erk_random", 0.5, key, allocation="uniform")
    _assert_same(pruning.prune_at_init(problems, "erk_random", 0.5, key, allocation="erk"),
                 pruning.prune_at_init(problems, "random", 0.5, key, allocation="erk"))
    with pytest.raises(ValueError, match="allocation must be one of"):
        pruning.prune_at_init(problems, "snip", 0.5, key, allocation="layerwise")
    with pytest.raises(ValueError, match="paths names networks"):
        pruning.prune_at_init(problems, "synflow", 0.5, key, paths={"other": ()})


# ---- rerank ----------------------------------------------------------------------------------
def _two_part_problem():
    """A tiny encoder/decoder: {"e1", "d1", "d2"} Dense layers; two losses on the same params."""
    ks = jax.random.split(jax.random.PRNGKey(11), 6)
    params = {"e1": {"kernel": jax.random.normal(ks[0], (3, 4)), "bias": jnp.zeros(4)},
              "d1": {"kernel": jax.random.normal(ks[1], (5, 6)), "bias": jnp.zeros(6)},
              "d2": {"kernel": jax.random.normal(ks[2], (6, 2)), "bias": jnp.zeros(2)}}

    def decode(p, x):
        return jnp.tanh(x @ p["d1"]["kernel"] + p["d1"]["bias"]) @ p["d2"]["kernel"] + p["d2"]["bias"]

    def train_loss(p, b):  # the decoder reads the encoder's code and the input
        z = jnp.tanh(b[0] @ p["e1"]["kernel"] + p["e1"]["bias"])
        return jnp.mean(jnp.square(decode(p, jnp.concatenate([z, b[0][:, :1]], -1)) - b[1]))

    def acting_loss(p, b):  # the decoder alone, from a prior sample
        return jnp.mean(jnp.square(decode(p, b[0]) - b[1]))

    train_batch = (jax.random.normal(ks[3], (8, 3)), jax.random.normal(ks[4], (8, 2)))
    acting_batch = (jax.random.normal(ks[5], (8, 5)), train_batch[1])
    return (train_loss, params, train_batch), (acting_loss, params, acting_batch)


def test_rerank_matches_a_hand_built_reference():
    train, acting = _two_part_problem()
    s = 0.6
    got = pruning.prune_at_init({"vae": train}, "snip", s, jax.random.PRNGKey(0),
                                rerank={"vae": (lambda k: k.startswith("d"), acting)})["vae"]
    # reference by hand, in numpy: a global SNIP ranking fixes how many decoder weights stay,
    # then the decoder keeps that many of its best weights by the acting loss's SNIP scores.
    flat = lambda t, names: np.concatenate([np.asarray(t[n]["kernel"]).ravel() for n in names])
    names, dec = ["d1", "d2", "e1"], ["d1", "d2"]
    s_train = flat(pruning.snip_scores(*train), names)
    n = s_train.size
    keep = np.zeros(n, bool)
    keep[np.argsort(-s_train, kind="stable")[: n - round(s * n)]] = True
    n_dec = 30 + 12
    k_dec = int(keep[:n_dec].sum())
    s_act = flat(pruning.snip_scores(*acting), dec)
    keep_dec = np.zeros(n_dec, bool)
    keep_dec[np.argsort(-s_act, kind="stable")[:k_dec]] = True
    keep[:n_dec] = keep_dec
    np.testing.assert_array_equal(flat(got, names), keep.astype(np.float32))
    for name in names:
        np.testing.assert_array_equal(np.asarray(got[name]["bias"]), 1.0)
    # the re-ranking changed something (else this test would prove little)
    plain = pruning.prune_at_init({"vae": train}, "snip", s, jax.random.PRNGKey(0))["vae"]
    assert not np.array_equal(flat(plain, dec), flat(got, dec))
    np.testing.assert_array_equal(np.asarray(plain["e1"]["kernel"]), np.asarray(got["e1"]["kernel"]))


def test_rerank_keeps_exact_counts_over_rounds():
    train, acting = _two_part_problem()
    for s in (0.5, 0.9):
        got = pruning.prune_at_init({"vae": train}, "grasp", s, jax.random.PRNGKey(0), rounds=3,
                                    allocation="erk", rerank={"vae": (lambda k: k.startswith("d"), acting)})["vae"]
        kept, total = _kept_and_total(got, train[1], pruning.default_prunable)
        assert kept == total - round(s * total)
    with pytest.raises(ValueError, match="selector picks none"):
        pruning.prune_at_init({"vae": train}, "snip", 0.5, jax.random.PRNGKey(0),
                              rerank={"vae": (lambda k: k.startswith("x"), acting)})


# ---- masked optimizers -----------------------------------------------------------------------
OPTIMIZERS = {
    "adam": lambda: optax.adam(3e-3),
    "adamw": lambda: optax.adamw(3e-3, weight_decay=0.1),
    "sgd_momentum": lambda: optax.sgd(5e-2, momentum=0.9),
    "chain_clip_adam": lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(3e-3)),
}


def _train(tx, params, loss_fn, batch, steps=300):
    opt_state = tx.init(params)

    def step(carry, _):
        p, st = carry
        loss, g = jax.value_and_grad(loss_fn)(p, batch)
        u, st = tx.update(g, st, p)
        return (optax.apply_updates(p, u), st), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), None, length=steps)
    return params, opt_state, losses


def _param_shaped(state, params):
    """Subtrees of an optimizer state with the params' structure (μ, ν, momentum traces)."""
    pdef = jax.tree_util.tree_structure(params)
    is_tree = lambda x: jax.tree_util.tree_structure(x) == pdef
    return [x for x in jax.tree_util.tree_leaves(state, is_leaf=is_tree) if is_tree(x)]


@pytest.mark.parametrize("name", [n if n == "adam" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(OPTIMIZERS)])
def test_masked_optimizer_keeps_pruned_weights_and_moments_zero(name):
    loss_fn, params, batch = mlp_problem(hidden=(16, 16))
    masks = pruning.prune_at_init({"net": (loss_fn, params, batch)}, "erk_random", 0.8, jax.random.PRNGKey(1))["net"]
    params = pruning.apply_masks(params, masks)
    tx = pruning.masked(OPTIMIZERS[name](), masks)
    new_params, state, losses = jax.jit(lambda p: _train(tx, p, loss_fn, batch))(params)
    assert isinstance(state, pruning.MaskedState)
    assert float(losses[-1]) < 0.7 * float(losses[0]), (name, losses[0], losses[-1])
    pruned = jax.tree_util.tree_map(lambda m: np.asarray(m) == 0, masks)
    for p, z in zip(jax.tree_util.tree_leaves(new_params), jax.tree_util.tree_leaves(pruned)):
        assert np.all(np.asarray(p)[z] == 0.0)
    moments = _param_shaped(state.inner, params)
    assert len(moments) >= 1
    for tree in moments:
        for x, z in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(pruned)):
            if jnp.issubdtype(x.dtype, jnp.floating):
                assert np.all(np.asarray(x)[z] == 0.0)
    # kept weights did train
    assert not np.array_equal(np.asarray(new_params["net"]["l2"]["kernel"]), np.asarray(params["net"]["l2"]["kernel"]))


def test_masked_adam_matches_the_library_step_bit_for_bit():
    """g ⊙ m -> adam -> p + u ⊙ m equals the library's g ⊙ m -> adam -> (p + u) ⊙ m."""
    loss_fn, params, batch = mlp_problem(hidden=(8,))
    masks = pruning.prune_at_init({"net": (loss_fn, params, batch)}, "snip", 0.7, jax.random.PRNGKey(1))["net"]
    params = pruning.apply_masks(params, masks)
    got, _, _ = jax.jit(lambda p: _train(pruning.masked(optax.adam(1e-2), masks), p, loss_fn, batch, 50))(params)
    tx = optax.adam(1e-2)

    def lib_step(carry, _):
        p, st = carry
        g = pruning.apply_masks(jax.grad(loss_fn)(p, batch), masks)
        u, st = tx.update(g, st, p)
        return (pruning.apply_masks(optax.apply_updates(p, u), masks), st), None

    (ref, _), _ = jax.jit(lambda p: jax.lax.scan(lib_step, (p, tx.init(p)), None, length=50))(params)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_array_equal(np.asarray(a) == 0, np.asarray(b) == 0)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_masked_optimizer_bool_masks_and_structure_check():
    loss_fn, params, batch = mlp_problem(hidden=(8,))
    masks = pruning.prune_at_init({"net": (loss_fn, params, batch)}, "random", 0.5, jax.random.PRNGKey(2))["net"]
    params = pruning.apply_masks(params, masks)
    as_bool = jax.tree_util.tree_map(lambda m: m > 0, masks)
    a, _, _ = _train(pruning.masked(optax.adamw(1e-2, weight_decay=0.1), masks), params, loss_fn, batch, 20)
    b, _, _ = _train(pruning.masked(optax.adamw(1e-2, weight_decay=0.1), as_bool), params, loss_fn, batch, 20)
    _assert_same(a, b)
    with pytest.raises(ValueError, match="structure"):
        pruning.masked(optax.adam(1e-3), masks["net"]).init(params)
    wrong = jax.tree_util.tree_map(lambda m: m, masks)
    wrong["net"]["l1"]["kernel"] = wrong["net"]["l1"]["kernel"][:1]
    with pytest.raises(ValueError, match=r"\['l1'\]\['kernel'\] has shape"):
        pruning.masked(optax.adam(1e-3), wrong).init(params)


def test_masked_state_is_a_pytree_holding_the_masks():
    _, params, _ = mlp_problem(hidden=(4,))
    masks = pruning.ones_like_masks(params)
    state = pruning.masked(optax.adam(1e-3), masks).init(params)
    _assert_same(state.masks, masks)
    leaves = jax.tree_util.tree_leaves(state)
    assert len(leaves) == len(jax.tree_util.tree_leaves(optax.adam(1e-3).init(params))) + len(
        jax.tree_util.tree_leaves(masks))
