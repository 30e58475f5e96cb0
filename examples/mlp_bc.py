"""A new algorithm in one module: deterministic behaviour cloning with one MLP (README, "Add an algorithm").

Import this module (it registers ``mlp_bc``), then every launcher and ``sparse_orl.train`` take it:
``sparse_orl.train(algo="mlp_bc", policy_hidden=[64, 64], pruner=["dense", "erk_random"], ...)``.
"""
from __future__ import annotations  # needed: an option's kind is read from its annotation

import dataclasses
from typing import ClassVar, Tuple

import jax.numpy as jnp
import optax

from sparse_orl.algos import AlgoConfig, Algorithm, NetworkSpec, register_algorithm
from sparse_orl.algos.networks import MLP  # ReLU MLP, layers named l1, l2, ...
from sparse_orl.fields import option


@dataclasses.dataclass(frozen=True)
class MlpBCConfig(AlgoConfig):
    algo: ClassVar[str] = "mlp_bc"
    policy_hidden: Tuple[int, ...] = option((256, 256), "Policy hidden sizes.", low=1)
    lr: float = option(3e-4, "Adam learning rate.", low=0, low_open=True)  # shared --lr: its help lists every default


@dataclasses.dataclass(frozen=True)
class MlpBC(Algorithm):
    config: MlpBCConfig
    # its one network, declared once: params key, the config field of its widths, what acting reads
    network_specs: ClassVar[Tuple[NetworkSpec, ...]] = (NetworkSpec("policy", "policy_hidden", acts=("",)),)
    metric_names: ClassVar[Tuple[str, ...]] = ("bc_loss",)

    @property
    def net(self):
        c = self.config
        return MLP(c.policy_hidden, self.act_dim, c.init_scheme, c.dtype)

    def init_params(self, key):
        return {"policy": self.net.init(key, jnp.zeros((1, self.obs_dim)))["params"]}

    def loss(self, p, b):  # b = (obs, action)
        return jnp.mean(jnp.square(self.max_action * jnp.tanh(self.net.apply({"params": p}, b[0])) - b[1]))

    def scoring_problems(self, params, batch, key):
        return {"policy": (self.loss, params["policy"], (batch.obs, batch.action))}

    def optimizers(self):
        return {"policy": optax.adam(self.config.lr)}

    def train_step(self, state, batch, key):
        b = self.normalize_batch((state.obs_mean, state.obs_std), batch)
        p, o, loss = self.update("policy", self.loss, state.params["policy"], state.opt_state["policy"],
                                 (b.obs, b.action))
        return state.replace(params={"policy": p}, opt_state={"policy": o}, step=state.step + 1), {"bc_loss": loss}

    def acting_program(self):  # act() interprets it in JAX, sparse_orl.deploy in numpy
        return {"ops": [{"op": "mlp", "net": "policy", "layer": "l", "in": ["obs"], "out": "h"},
                        {"op": "tanh", "x": "h", "scale": self.max_action, "out": "action"}],
                "output": "action"}


register_algorithm(MlpBCConfig, MlpBC, overwrite=True)
