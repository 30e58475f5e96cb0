"""The algorithm interface: what every offline-RL algorithm gives the rest of the library.

An algorithm is a frozen dataclass built from its own frozen config and the dataset's
shapes (``Algorithm(config, obs_dim, act_dim, max_action)``). Everything outside its
module (pruning at init, the vmapped scan loop, checkpoints, evaluation, export,
deploy, reports, the launchers) talks to it through these members only:

===============================  ==========================================================
``config``                       its own frozen config (a subclass of :class:`AlgoConfig`)
``init_params(key)``             dense initial params ``{network: pytree}``
``scoring_problems(p, b, k)``    ``{network: (loss_fn, params, batch)}``: each scored
                                 network's own loss at init (pruning.prune_at_init's input)
``expand_masks(p, m)``           masks of the scored networks -> masks shaped like params
                                 (masks shared between networks, e.g. Q2 takes Q1's)
``synflow_paths(p)``             SynFlow's kernel paths per scored network (None: inferred)
``rerank_problems(p, b, k, c)``  optional second losses that re-rank part of a network
``optimizers()``                 ``{network: optax.GradientTransformation}`` (unmasked)
``target_networks``              networks with Polyak targets
``train_step(state, b, k)``      ``(TrainState, Transitions, key) -> (TrainState, metrics)``
``metric_names``                 the keys of ``metrics``
``act(params, mean, std, o, k)`` actions for observations ``o`` (..., obs_dim)
``acting_networks``              the param paths that acting reads (what export keeps)
``acting_program()``             the acting rule as data, interpreted by numpy-only deploy
``preprocess(t)``                the dataset transform it trains on (reward scaling, ...)
===============================  ==========================================================

Masks are data: they live in each network's optimizer state (``pruning.masked``), so
gradients, every optimizer moment and the params stay exactly 0 at pruned positions,
and Polyak targets (1 − τ)·t + τ·p of masked params are exact zeros by construction.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from sparse_orl import pruning
from sparse_orl.data.transitions import Transitions

Params = Dict[str, Any]
INIT_SCHEMES = ("torch", "flax", "orthogonal")


@struct.dataclass
class TrainState:
    """One run's training state; the masks are in ``opt_state`` (see :attr:`masks`)."""

    params: Params
    target_params: Params
    opt_state: Dict[str, Any]  # {network: pruning.MaskedState}
    obs_mean: jax.Array  # (obs_dim,) observation normalization (0 / 1 when off)
    obs_std: jax.Array
    step: jax.Array  # int32 gradient steps taken; the same for every run of a program (the loop
    # hands train_step the shared, unbatched step under vmap, so a lax.cond on it stays a branch)

    @property
    def masks(self) -> Params:
        """{network: mask pytree}, read from the masked optimizers' states."""
        return {k: v.masks for k, v in self.opt_state.items()}


def field(default, help: str, flag: Optional[str] = None, **kw):
    """A config field that ``launch/`` exposes as the flag ``--<flag or name>`` with ``help``."""
    md = {"help": help}
    if flag:
        md["flag"] = flag
    if isinstance(default, (list, dict, set)):
        raise TypeError("config defaults must be immutable")
    return dataclasses.field(default=default, metadata=md, **kw)


def _check_sizes(name: str, sizes, allow_empty: bool = False) -> None:
    if not allow_empty and len(sizes) == 0:
        raise ValueError(f"{name} is empty: give at least one hidden layer size")
    bad = [s for s in sizes if not isinstance(s, int) or isinstance(s, bool) or s < 1]
    if bad:
        raise ValueError(f"{name} must be positive integers, got {list(sizes)}")


def _check_finite(cfg, names) -> None:
    """Each named field a finite number (flags such as --lr=nan are refused before any work)."""
    for name in names:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or abs(v) == float("inf"):
            raise ValueError(f"--{name} must be a finite number, got {v!r}")


def twin_critic_masks(masks: Params) -> Params:
    """Scored masks with the critic's (Q1's) mask copied to both heads of a twin critic."""
    full = dict(masks)
    if "critic" in full:
        full["critic"] = {"q1": full["critic"], "q2": full["critic"]}
    return full


@dataclasses.dataclass(frozen=True)
class AlgoConfig:
    """Fields every algorithm's config has. Subclasses add their own, with :func:`field`."""

    algo: ClassVar[str] = ""
    init_scheme: str = field("torch", "Weight init: torch = U(±1/sqrt(fan_in)) (PyTorch default), "
                             "flax = lecun_normal kernels, zero biases, orthogonal = orthogonal kernels of "
                             "scale sqrt(2), zero biases (IQL's authors).", flag="init")
    compute_dtype: str = field("float32", "Matmul input precision (bfloat16 keeps float32 accumulation "
                               "and master weights).")
    normalize_obs: bool = field(False, "Normalize observations with the dataset's mean / (std + 1e-3).")

    def __post_init__(self):
        if self.init_scheme not in INIT_SCHEMES:
            raise ValueError(f"--init must be one of {INIT_SCHEMES}, got {self.init_scheme!r}")
        if self.compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"--compute_dtype must be one of ('float32', 'bfloat16'), got {self.compute_dtype!r}")

    # names used in results: "bc-vae" in file names, "BC (VAE only)" in titles
    @property
    def label(self) -> str:
        return self.algo

    @property
    def display_name(self) -> str:
        return self.algo.upper()

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able dict, with ``"algo"`` first (what config.json records)."""
        d = {"algo": self.algo}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "AlgoConfig":
        """Inverse of :meth:`to_dict`; keys that are not fields (e.g. shapes) are ignored."""
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name in d:
                v = d[f.name]
                kw[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**kw)

    def widened(self, factor: float, networks: Tuple[str, ...]) -> "AlgoConfig":
        """This config with the hidden widths of ``networks`` times ``factor`` (each round(h·f), >= 1);
        which field holds a network's widths is the config's ``hidden_fields``."""
        fields = getattr(self, "hidden_fields", None)
        if not fields:
            raise ValueError(f"algorithm {self.algo!r} does not say which config fields hold its widths "
                             "(hidden_fields), so --width_multiplier cannot widen it")
        new = {}
        for net in networks:
            name = fields[net]
            new[name] = tuple(max(1, int(round(h * factor))) for h in getattr(self, name))
        return dataclasses.replace(self, **new)

    def for_run(self, steps: int) -> "AlgoConfig":
        """This config for a run of ``steps`` gradient steps (e.g. a learning-rate schedule's
        length); the experiment calls it before building the algorithm. Default: unchanged."""
        return self

    @property
    def dtype(self):
        return jnp.bfloat16 if self.compute_dtype == "bfloat16" else jnp.float32


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """Base of every algorithm (see the module docstring for the interface)."""

    config: AlgoConfig
    obs_dim: int
    act_dim: int
    max_action: float

    # ---- networks, pruning at init ------------------------------------------------------
    def init_params(self, key: jax.Array) -> Params:
        raise NotImplementedError

    def scoring_problems(self, params: Params, batch: Transitions, key: jax.Array) -> Dict[str, Tuple]:
        raise NotImplementedError

    def expand_masks(self, params: Params, net_masks: Params) -> Params:
        """Masks shaped like ``params``: scored networks' masks, all-ones elsewhere."""
        return {k: net_masks[k] if k in net_masks else pruning.ones_like_masks(params[k]) for k in params}

    networks: ClassVar[Tuple[str, ...]] = ()  # the scored networks, in the order of scoring_problems

    def scored_view(self, tree: Params) -> Params:
        """The scored networks' part of a params / masks tree (e.g. Q1 of a twin critic)."""
        return {k: tree[k] for k in self.networks}

    def network_paths(self, name: str, net_params) -> Tuple[Any, ...]:
        """Kernel paths input -> output of a scored network (SynFlow, dead-unit diagnostics);
        default: the feed-forward chain of its kernels in tree order."""
        return pruning.chain_paths(net_params)

    def synflow_paths(self, params: Params) -> Optional[Dict[str, Any]]:
        return {n: self.network_paths(n, p) for n, p in self.scored_view(params).items()}

    def rerank_problems(self, params: Params, batch: Transitions, key: jax.Array, prune) -> Optional[Dict]:
        return None

    # ---- training -----------------------------------------------------------------------
    def optimizers(self) -> Dict[str, optax.GradientTransformation]:
        raise NotImplementedError

    target_networks: ClassVar[Tuple[str, ...]] = ()
    metric_names: ClassVar[Tuple[str, ...]] = ()

    def init_state(self, params: Params, masks: Params, obs_mean, obs_std) -> TrainState:
        """State at step 0: masked params (given), Polyak targets = params, masked optimizers."""
        txs = self.optimizers()
        opt_state = {k: pruning.masked(txs[k], masks[k]).init(v) for k, v in params.items()}
        targets = {k: params[k] for k in self.target_networks if k in params}
        return TrainState(params, targets, opt_state, jnp.asarray(obs_mean, jnp.float32),
                          jnp.asarray(obs_std, jnp.float32), jnp.zeros((), jnp.int32))

    def update(self, name: str, loss_fn, params, opt_state, batch):
        """One masked optimizer step of network ``name`` on ``loss_fn(params, batch)``."""
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = pruning.masked(self.optimizers()[name], None).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def train_step(self, state: TrainState, batch: Transitions, key: jax.Array):
        raise NotImplementedError

    # ---- data -----------------------------------------------------------------------------
    def normalize(self, obs_mean, obs_std, obs):
        if not self.config.normalize_obs:
            return obs
        return (obs - obs_mean) / obs_std

    def normalize_batch(self, state_or_stats, batch: Transitions) -> Transitions:
        mean, std = state_or_stats
        return batch.replace(obs=self.normalize(mean, std, batch.obs),
                             next_obs=self.normalize(mean, std, batch.next_obs))

    def preprocess(self, transitions: Transitions, info) -> Transitions:
        """The transitions this algorithm trains on (default: as loaded)."""
        return transitions

    # ---- acting ---------------------------------------------------------------------------
    acting_networks: ClassVar[Tuple[str, ...]] = ()

    def act(self, params: Params, obs_mean, obs_std, obs, key):
        raise NotImplementedError

    def acting_program(self) -> Dict[str, Any]:
        raise NotImplementedError

    def diagnostics(self, params, masks, data, key, obs_mean, obs_std, num_samples: int) -> Dict[str, Any]:
        """Algorithm-specific diagnostics for ``launch.diagnose``: a dict of JSON-able values,
        with ``"notes"``: lines of text to print. None by default."""
        return {}
