"""README's "Add an algorithm" example (examples/mlp_bc.py) trains, prunes, resumes and exports like a built-in."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))


def test_the_example_algorithm_trains_pruned_and_exports(tmp_path):
    import mlp_bc  # noqa: F401  (registers mlp_bc)
    import h5py

    import sparse_orl
    from sparse_orl import deploy
    from sparse_orl.store.final import load_final

    rng = np.random.default_rng(0)
    n = 300
    path = str(tmp_path / "hopper_toy.hdf5")
    with h5py.File(path, "w") as f:
        f["observations"] = rng.normal(size=(n, 11)).astype(np.float32)
        f["next_observations"] = rng.normal(size=(n, 11)).astype(np.float32)
        f["actions"] = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
        f["rewards"] = rng.normal(size=n).astype(np.float32)
        f["terminals"] = np.zeros(n, bool)
        f["timeouts"] = (np.arange(n) % 50) == 49
    res = sparse_orl.train(dataset=path, algo="mlp_bc", policy_hidden=[16, 16], pruner=["dense", "erk_random"],
                           sparsity=0.8, seeds=[0], steps=30, batch_size=32, eval_episodes=0, checkpoint_every=30,
                           eval_every=30, report=False, tensorboard=False, workdir=tmp_path / "w", log=None,
                           sparse_format="masked")
    assert res.complete
    _, runs = load_final(res.workdir)
    sparse = next(r for r in runs if r["pruner"] == "erk_random")
    kernels = [(sparse["params"]["policy"][k]["kernel"], sparse["masks"]["policy"][k]["kernel"])
               for k in ("l1", "l2", "l3")]
    assert all(np.all(k[m == 0] == 0) for k, m in kernels)  # pruned weights still exactly 0
    assert sum(int(m.sum()) for _, m in kernels) == round(0.2 * sum(m.size for _, m in kernels))
    res.export(tmp_path / "p.sorl", pruner="erk_random", seed=0)
    policy = deploy.Policy.load(str(tmp_path / "p.sorl"))
    assert policy.act(np.zeros(11, np.float32)).shape == (3,)
