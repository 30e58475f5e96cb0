"""Behaviour cloning on a Minari dataset in plain JAX + optax, pruned at initialization.

An ordinary training loop that knows nothing about sparse_orl: a Flax MLP
regresses the dataset's actions from its (normalized) observations with an MSE
loss and Adam. The lines between the ``# --- pruning at init (added) ---``
markers are all it takes to train a sparse network from initialization:

* ``pruning.prune_at_init`` scores the initial weights on one batch and returns
  a 0/1 mask keeping exactly n − round(s·n) of the n kernel weights;
* the initial params are multiplied by the mask;
* ``pruning.masked`` wraps the optimizer so pruned weights (and Adam's moments)
  stay exactly 0 for the whole run.

How to run it (from the repository root, in the venv of ``pip install -e .``)::

    minari download mujoco/halfcheetah/expert-v0     # once, where there is a network
    python examples/prune_your_own.py --dataset=mujoco/halfcheetah/expert-v0 --pruner=erk_random --sparsity=0.9

The dataset is read from ``MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``): point it at a folder of
Minari datasets to use another copy, e.g. ``MINARI_DATASETS_PATH=../shared/datasets python
examples/prune_your_own.py --dataset=sb3/halfcheetah/expert-v0``. A dataset that is not there stops the
script with one ``error:`` line (exit status 2) saying where it looked and how to get it; ``--download``
fetches it instead (needs a network). ``--help`` lists the other flags (steps, batch size, widths, lr, seed).
"""
import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import minari
import numpy as np
from minari.storage.datasets_root_dir import get_dataset_path
import optax

from sparse_orl import pruning


class Policy(nn.Module):
    hidden: tuple
    act_dim: int

    @nn.compact
    def __call__(self, obs):
        x = obs
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.act_dim)(x)


def load_minari(dataset_id, download=False):
    """(observations, actions) of every transition, float32, from the local copy of ``dataset_id`` (with
    ``download``, fetched first if it is not on disk). ``ValueError`` in one line when it cannot be read."""
    local = get_dataset_path(dataset_id)
    if not (local / "data").is_dir() and not download:
        raise ValueError(f"Minari dataset {dataset_id!r} is not on disk (looked in {local}; MINARI_DATASETS_PATH "
                         f"sets the folder, default ~/.minari/datasets): get it with `minari download {dataset_id}` "
                         "where there is a network, or run this script with --download (this example reads Minari "
                         "datasets only; `python -m launch.train --dataset=<file>.hdf5` takes D4RL files)")
    try:
        dataset = minari.load_dataset(dataset_id, download=download)
    except Exception as e:  # noqa: BLE001  (a failed download, a damaged copy: one line, not a traceback)
        raise ValueError(f"Minari dataset {dataset_id!r} (in {local}) cannot be read: "
                         f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    obs, act = [], []
    for episode in dataset.iterate_episodes():
        obs.append(np.asarray(episode.observations[:-1], np.float32))  # T+1 rows: the last has no action
        act.append(np.asarray(episode.actions, np.float32))
    return np.concatenate(obs), np.concatenate(act)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mujoco/halfcheetah/expert-v0")
    p.add_argument("--pruner", default="erk_random", help="a sparse_orl.pruning method name")
    p.add_argument("--sparsity", type=float, default=0.9)
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--hidden", type=lambda s: tuple(int(w) for w in s.split(",")), default=(256, 256))
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--download", action="store_true", help="download the dataset if it is not on disk")
    return p, p.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(argv)
    try:
        obs, act = load_minari(args.dataset, args.download)
    except ValueError as e:
        parser.exit(2, f"error: {e}\n")
    obs = (obs - obs.mean(0)) / (obs.std(0) + 1e-3)
    obs, act = jnp.asarray(obs), jnp.asarray(act)
    model = Policy(args.hidden, act.shape[1])
    k_init, k_score, k_prune, k_train = jax.random.split(jax.random.PRNGKey(args.seed), 4)
    params = model.init(k_init, obs[:1])["params"]

    def loss_fn(params, batch):
        o, a = batch
        return jnp.mean(jnp.square(model.apply({"params": params}, o) - a))

    def sample(key):
        idx = jax.random.randint(key, (args.batch_size,), 0, obs.shape[0])
        return obs[idx], act[idx]

    tx = optax.adam(args.lr)
    # --- pruning at init (added) ---
    masks = pruning.prune_at_init({"policy": (loss_fn, params, sample(k_score))},
                                  args.pruner, args.sparsity, k_prune)["policy"]
    params = pruning.apply_masks(params, masks)
    tx = pruning.masked(tx, masks)
    # --- end of pruning at init ---
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, sample(key))
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    log_every = max(1, args.steps // 10)
    for step, key in enumerate(jax.random.split(k_train, args.steps)):
        params, opt_state, loss = train_step(params, opt_state, key)
        if step % log_every == 0:
            print(f"step {step:6d}  batch loss {float(loss):.5f}")

    # Exact sparsity over the kernels, and pruned weights still exactly zero after training.
    kernels = [(np.asarray(m), np.asarray(p)) for (path, m), p in
               zip(jax.tree_util.tree_flatten_with_path(masks)[0], jax.tree_util.tree_leaves(params))
               if pruning.default_prunable(path, m)]
    n = sum(m.size for m, _ in kernels)
    kept = sum(int(np.count_nonzero(m)) for m, _ in kernels)
    s = 0.0 if pruning.resolve_pruner(args.pruner)[1].scorer is None else args.sparsity
    assert kept == n - round(s * n), (kept, n, s)
    nonzero_pruned = sum(int(np.count_nonzero(p[m == 0])) for m, p in kernels)
    assert nonzero_pruned == 0, nonzero_pruned
    print(f"final loss {float(loss_fn(params, (obs, act))):.5f} (whole dataset, {obs.shape[0]} transitions)")
    print(f"kept {kept} of {n} kernel weights (sparsity {1 - kept / n:.4f}); "
          f"pruned weights nonzero after training: {nonzero_pruned}")


if __name__ == "__main__":
    main()
