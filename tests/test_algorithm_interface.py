"""A new algorithm needs only its module and one registry line: a toy BC, end to end.

The toy lives in this file (its "module") and is registered here (its "registry line");
nothing else in the library is told about it. It then trains pruned through
``run_experiment``, exports, and acts in the numpy-only deploy loader exactly as ``act``.
"""
import dataclasses
from typing import ClassVar, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import equivalence
from conftest import final_runs, metrics_rows
from sparse_orl import deploy, export
from sparse_orl.algos import ALGORITHMS, AlgoConfig, Algorithm, NetworkSpec, register_algorithm
from sparse_orl.algos.networks import MLP
from sparse_orl.config import ExperimentConfig, PruneConfig
from sparse_orl.fields import option
from sparse_orl.job import run_experiment


@dataclasses.dataclass(frozen=True)
class ToyConfig(AlgoConfig):
    algo: ClassVar[str] = "toy_bc"
    hidden: Tuple[int, ...] = option((16, 16), "Policy hidden sizes.", low=1)
    lr: float = option(3e-3, "Adam learning rate.", low=0, low_open=True)


@dataclasses.dataclass(frozen=True)
class ToyBC(Algorithm):
    """Deterministic behaviour cloning: a = max_action·tanh(f(s)), MSE to the dataset's action."""

    network_specs: ClassVar[Tuple[NetworkSpec, ...]] = (NetworkSpec("policy", "hidden", acts=("",)),)
    metric_names: ClassVar[Tuple[str, ...]] = ("bc_loss",)

    @property
    def net(self):
        return MLP(self.config.hidden, self.act_dim)

    def init_params(self, key):
        return {"policy": self.net.init(key, jnp.zeros((1, self.obs_dim)))["params"]}

    def loss(self, p, batch):
        a = self.max_action * jnp.tanh(self.net.apply({"params": p}, batch.obs))
        return jnp.mean(jnp.square(a - batch.action))

    def scoring_problems(self, params, batch, key):
        return {"policy": (self.loss, params["policy"], batch)}

    def optimizers(self):
        return {"policy": optax.adam(self.config.lr)}

    def train_step(self, state, batch, key):
        batch = self.normalize_batch((state.obs_mean, state.obs_std), batch)
        p, o, loss = self.update("policy", self.loss, state.params["policy"], state.opt_state["policy"], batch)
        return state.replace(params={"policy": p}, opt_state={"policy": o}, step=state.step + 1), {"bc_loss": loss}

    def acting_program(self):
        return {"ops": [{"op": "mlp", "net": "policy", "layer": "l", "in": ["obs"], "out": "h"},
                        {"op": "tanh", "x": "h", "scale": self.max_action, "out": "action"}],
                "output": "action"}


@pytest.fixture
def toy_registered():
    register_algorithm(ToyConfig, ToyBC)
    yield
    ALGORITHMS.pop("toy_bc")


@pytest.mark.slow
def test_new_algorithm_trains_pruned_exports_and_deploys(toy_registered, tmp_path):
    data = equivalence.make_dataset(str(tmp_path / "hopper_toy.hdf5"))
    cfg = ExperimentConfig(dataset=data, workdir=str(tmp_path / "wd"), agent=ToyConfig(normalize_obs=True),
                           prunes=(PruneConfig("dense"), PruneConfig("snip", score_batch=32), PruneConfig("erk_random")),
                           seeds=(0,), sparsities=(0.8,), steps=60, batch_size=16, eval_every=30, eval_episodes=0,
                           checkpoint_every=30)
    summary = run_experiment(cfg, log=lambda _m: None)
    assert summary.complete and summary.algo_label == "toy_bc"
    assert [(r.pruner, r.sparsity) for r in summary.runs] == [("dense", 0.0), ("snip", 0.8), ("erk_random", 0.8)]
    assert {"bc_loss"} <= set(metrics_rows(tmp_path / "wd")[-1])
    agent_cfg, runs = final_runs(tmp_path / "wd")
    algo = ToyBC(ToyConfig.from_dict(agent_cfg), agent_cfg["obs_dim"], agent_cfg["act_dim"], agent_cfg["max_action"])
    assert algo.networks == algo.acting_networks == ("policy",)
    for r in runs[1:]:
        rep = r["masks"]["policy"]
        kept = sum(int(np.count_nonzero(v["kernel"])) for v in rep.values())
        total = sum(v["kernel"].size for v in rep.values())
        assert kept == total - round(0.8 * total)
        for name, layer in r["params"]["policy"].items():
            assert np.all(layer["kernel"][rep[name]["kernel"] == 0] == 0.0)
    out = str(tmp_path / "toy.soc")
    export.export_run(str(tmp_path / "wd"), 1, out)
    obs = np.random.default_rng(0).normal(size=(5, 11)).astype(np.float32)
    # act is derived from the acting program; the numpy loader interprets the same program
    want = np.asarray(algo.act(runs[1]["params"], runs[1]["obs_mean"], runs[1]["obs_std"], obs, jax.random.PRNGKey(0)))
    flax_act = algo.max_action * jnp.tanh(algo.net.apply(
        {"params": runs[1]["params"]["policy"]}, algo.normalize(runs[1]["obs_mean"], runs[1]["obs_std"], obs)))
    np.testing.assert_allclose(want, np.asarray(flax_act), rtol=1e-5, atol=1e-6)
    for sparse in (False, True):
        np.testing.assert_allclose(deploy.Policy.load(out, sparse=sparse).act(obs), want, rtol=1e-5, atol=1e-5)
