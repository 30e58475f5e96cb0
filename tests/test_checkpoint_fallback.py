"""An unreadable newest checkpoint: the job resumes from the previous checkpoint's step (not from scratch),
the bad one is moved aside to ``checkpoints.corrupt/``, and the result is the uninterrupted run's."""
import glob
import os

import h5py
import numpy as np

from sparse_orl.algos import make_config
from sparse_orl.config import ExperimentConfig, LogConfig, PruneConfig
from sparse_orl.job.run import run_experiment
from sparse_orl.store.final import load_final

QUIET = LogConfig(report=False, tensorboard=False)


def _dataset(folder, n=240):
    path = os.path.join(str(folder), "hopper_fallback.hdf5")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 11)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["next_observations"] = np.roll(obs, -1, 0)
        f["actions"] = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
        f["rewards"] = rng.normal(size=n).astype(np.float32)
        f["terminals"] = np.zeros(n, bool)
        f["timeouts"] = (np.arange(n) % 30) == 29
    return path


def _cfg(tmp_path, workdir):
    return ExperimentConfig(dataset=_dataset(tmp_path), workdir=str(tmp_path / workdir),
                            agent=make_config("bc", vae_only=True, vae_hidden=(8, 8)), prunes=(PruneConfig("random"),),
                            seeds=(0,), sparsities=(0.5,), steps=40, batch_size=16, eval_every=10, eval_episodes=0,
                            checkpoint_every=10)


def _steps(workdir):
    return sorted(int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.isdigit())


def _leaves(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_leaves(v, f"{prefix}/{k}"))
        return out
    return {prefix: np.asarray(tree)}


def test_a_corrupt_newest_checkpoint_resumes_from_the_previous_step(tmp_path):
    cfg = _cfg(tmp_path, "wd")
    run_experiment(cfg, log=lambda _m: None, stop_at=30, logs=QUIET)  # killed after the checkpoint at 30
    assert _steps(cfg.workdir) == [20, 30]
    ckpts = os.path.join(cfg.workdir, "checkpoints")
    damaged = 0
    for f in glob.glob(os.path.join(ckpts, "30", "**", "*"), recursive=True):
        if os.path.isfile(f) and os.path.getsize(f) > 0:
            with open(f, "r+b") as fh:
                fh.truncate(os.path.getsize(f) // 2)
            damaged += 1
    assert damaged
    lines = []
    summary = run_experiment(cfg, log=lines.append, logs=QUIET)
    assert summary.complete
    assert "resumed from checkpoint at step 20" in lines, lines
    moved = glob.glob(ckpts + ".corrupt/30-*")
    assert len(moved) == 1 and os.path.isdir(moved[0])  # kept aside, not deleted
    assert _steps(cfg.workdir)[-1] == 40
    # the same result as a run never interrupted
    straight = _cfg(tmp_path, "straight")
    run_experiment(straight, log=lambda _m: None, logs=QUIET)
    (a,), (b,) = load_final(cfg.workdir)[1], load_final(straight.workdir)[1]
    pa, pb = _leaves(a["params"]), _leaves(b["params"])
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_allclose(pa[k], pb[k], rtol=1e-6, atol=1e-7, err_msg=k)
