"""Many runs in one compiled program: initial states (masks at init), the runs axis over devices,
``vmap`` / ``lax.map`` over runs and a ``lax.scan`` / ``fori_loop`` over steps."""
import sys
import types

from sparse_orl.train.runs import RunState, init_runs, make_act_fn, make_train_chunk, resolve_runs_loop, take_runs

__all__ = ["RunState", "init_runs", "make_act_fn", "make_train_chunk", "resolve_runs_loop", "take_runs"]


class _CallableModule(types.ModuleType):
    """``sparse_orl.train(...)`` is the Python API (:func:`sparse_orl.api.train`), but once this package is
    imported (every job imports it) the attribute ``sparse_orl.train`` is this module: calling it calls the API."""

    def __call__(self, *args, **kwargs):
        from sparse_orl.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
