"""sparse_orl: pruning at initialization for offline RL in JAX.

``sparse_orl.train(dataset=..., algo=..., pruner=..., sparsity=[...], seeds=[...], steps=...)``
runs one job from Python (see :mod:`sparse_orl.api`); the submodules are imported lazily.
"""
__version__ = "0.1.0"


def train(workdir=None, log=print, **options):
    """One training job from Python; see :func:`sparse_orl.api.train`."""
    from sparse_orl.api import train as _train

    return _train(workdir=workdir, log=log, **options)
