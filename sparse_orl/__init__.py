"""sparse_orl: pruning at initialization for offline RL in JAX.

``sparse_orl.train(dataset=..., algo=..., pruner=[...], sparsity=[...], seeds=[...], steps=...)`` runs one
job from Python, ``sparse_orl.train_sweep(workdir=..., algos=[...], datasets=[...], ...)`` a sweep, and
``sparse_orl.Result.load(workdir)`` reads a finished one (:mod:`sparse_orl.api`). The submodules are
imported when used: ``import sparse_orl`` stays light (``sparse_orl.deploy`` needs numpy only).
"""
__version__ = "0.2.0"

_API = ("train", "train_sweep", "Result", "SweepResult")


def __getattr__(name):
    if name in _API:  # the API imports jax and the trainer: only when it is asked for
        from sparse_orl import api

        return getattr(api, name)
    if name == "deploy":
        import importlib

        return importlib.import_module("sparse_orl.deploy")
    raise AttributeError(f"module 'sparse_orl' has no attribute {name!r}")


__all__ = list(_API) + ["deploy"]
