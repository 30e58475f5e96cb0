"""Many runs in one compiled program: initial states (masks at init), the runs axis over devices,
``vmap`` / ``lax.map`` over runs and a ``lax.scan`` / ``fori_loop`` over steps. (Not ``sparse_orl.train``:
that is the Python API's function.)"""
from sparse_orl.trainer.runs import RunState, init_runs, make_act_fn, make_train_chunk, resolve_runs_loop, take_runs

__all__ = ["RunState", "init_runs", "make_act_fn", "make_train_chunk", "resolve_runs_loop", "take_runs"]
