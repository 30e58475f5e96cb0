"""sparse_orl: pruning at initialization for offline RL in JAX.

``sparse_orl.train(dataset=..., algo=..., pruner=..., sparsity=[...], seeds=[...], steps=...)``
runs one job from Python and ``sparse_orl.train_sweep(workdir=..., algos=[...], datasets=[...], ...)`` a
sweep (see :mod:`sparse_orl.api`); the submodules are imported lazily.
"""
__version__ = "0.1.0"


def train(workdir=None, log=print, **options):
    """One training job from Python; see :func:`sparse_orl.api.train`."""
    from sparse_orl.api import train as _train

    return _train(workdir=workdir, log=log, **options)


def train_sweep(workdir, log=print, dry_run=False, num_shards=1, shard_index=0, **options):
    """A sweep from Python; see :func:`sparse_orl.api.train_sweep`. (Not ``sparse_orl.sweep``: that is
    the subpackage.)"""
    from sparse_orl.api import train_sweep as _sweep

    return _sweep(workdir, log=log, dry_run=dry_run, num_shards=num_shards, shard_index=shard_index, **options)
