"""The algorithm interface: what every offline-RL algorithm gives the rest of the library.

An algorithm is a frozen dataclass built from its own frozen config and the dataset's
shapes (``Algorithm(config, obs_dim, act_dim, max_action)``). Everything outside its
module (pruning at init, the vmapped scan loop, checkpoints, evaluation, export,
deploy, reports, the launchers) talks to it through these members only:

===============================  ==========================================================
``config``                       its own frozen config (a subclass of :class:`AlgoConfig`)
``network_specs``                its networks, declared once (:class:`NetworkSpec`): names,
                                 order, twins sharing a mask, Polyak targets, acting paths
``init_params(key)``             dense initial params ``{network: pytree}``
``scoring_problems(p, b, k)``    ``{network: (loss_fn, params, batch)}``: each scored
                                 network's own loss at init (pruning.prune_at_init's input)
``network_paths(n, p)``          kernel paths input -> output of a network (SynFlow)
``rerank_problems(p, b, k, c)``  optional second losses that re-rank part of a network
``optimizers()``                 ``{network: optax.GradientTransformation}`` (unmasked)
``train_step(state, b, k)``      ``(TrainState, Transitions, key) -> (TrainState, metrics)``
``metric_names``                 the keys of ``metrics``
``acting_program()``             the acting rule as data: :meth:`act` interprets it on jax
                                 arrays, ``sparse_orl.deploy`` on numpy arrays
``preprocess(t)``                the dataset transform it trains on (reward scaling, ...)
===============================  ==========================================================

Derived from the specs, never written again: ``networks`` (the scored networks),
``target_networks``, ``acting_networks``, :meth:`scored_view`, :meth:`expand_masks`
(a twin's second head takes the first head's mask), :meth:`polyak` and
:meth:`init_twin`.

Masks are data: they live in each network's optimizer state (``pruning.masked``), so
gradients, every optimizer moment and the params stay exactly 0 at pruned positions,
and Polyak targets (1 − τ)·t + τ·p of masked params are exact zeros by construction.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from sparse_orl import pruning
from sparse_orl.algos import acting, compact_params
from sparse_orl.data.transitions import Transitions
from sparse_orl.fields import check_fields, field_values, option, specs

Params = Dict[str, Any]
INIT_SCHEMES = ("torch", "flax", "orthogonal")
TWIN_HEADS = ("q1", "q2")


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
        """{network: mask pytree}, read from the masked optimizers' states (a compact kernel's: the 0/1
        validity of its values; :meth:`dense_masks` gives dense-shaped masks in every format)."""
        return {k: v.masks for k, v in self.opt_state.items()}

    def dense_masks(self) -> Params:
        """{network: dense 0/1 masks shaped like :meth:`dense_params`}."""
        return {k: compact_params.dense_masks(self.params[k], v.masks) for k, v in self.opt_state.items()}

    def dense_params(self) -> Params:
        """The params with every compact kernel as its dense kernel (zeros at pruned positions)."""
        return compact_params.densify(self.params)


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """One network of an algorithm, declared once.

    ``name``: its key in the params. ``hidden_field``: the config field holding its hidden
    widths (the narrow control and ``--width_multiplier`` scale them). ``twin``: params are
    ``{"q1", "q2"}`` of one architecture; Q1 is scored and Q2 takes its mask. ``target``: it
    has a Polyak target. ``acts``: the param paths under it that acting reads (``("",)``: all
    of it; ``("q1",)``: one head). ``title``: its name in figures and tables.
    """

    name: str
    hidden_field: str
    twin: bool = False
    target: bool = False
    acts: Tuple[str, ...] = ()
    title: str = ""

    @property
    def label(self) -> str:
        return self.title or (f"{self.name} (Q1+Q2)" if self.twin else self.name)


def twin_init(module, keys: Tuple[jax.Array, jax.Array], *inputs) -> Params:
    """``{"q1", "q2"}``: two independent inits of ``module``, from ``keys[0]`` and ``keys[1]``."""
    return {h: module.init(k, *inputs)["params"] for h, k in zip(TWIN_HEADS, keys)}


def polyak(targets: Params, params: Params, tau: float) -> Params:
    """(1 − τ)·t + τ·p for every weight of ``targets`` (the matching subtrees of ``params``); a compact
    kernel's values move, its fixed indices stay."""
    new = {k: params[k] for k in targets}
    t_values, rebuild = compact_params.split(targets)
    p_values, _ = compact_params.split(new)
    return rebuild(jax.tree_util.tree_map(lambda t, p: (1.0 - tau) * t + tau * p, t_values, p_values))


@dataclasses.dataclass(frozen=True)
class AlgoConfig:
    """Fields every algorithm's config has. Subclasses add their own, with :func:`option`."""

    algo: ClassVar[str] = ""
    # options added after runs were recorded: dropped at their defaults when configs are compared, so
    # those runs still resume and sweeps keep their program hashes
    added_later: ClassVar[Tuple[str, ...]] = ()
    init_scheme: str = option("torch", "Weight init: torch = U(±1/sqrt(fan_in)) (PyTorch default), "
                              "flax = lecun_normal kernels, zero biases, orthogonal = orthogonal kernels of "
                              "scale sqrt(2), zero biases (IQL's authors).", flag="init", choices=INIT_SCHEMES)
    compute_dtype: str = option("float32", "Matmul input precision (bfloat16 keeps float32 accumulation "
                                "and master weights; slower than float32 on a CPU).",
                                choices=("float32", "bfloat16"))
    normalize_obs: bool = option(False, "Normalize observations with the dataset's mean / (std + 1e-3).")

    def __post_init__(self):
        check_fields(self)

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
        for k, v in field_values(self).items():
            d[k] = list(v) if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "AlgoConfig":
        """Inverse of :meth:`to_dict`; keys that are not fields (e.g. shapes) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})

    def widened(self, factor: float, networks: Tuple[str, ...], specs: Tuple[NetworkSpec, ...]) -> "AlgoConfig":
        """This config with the hidden widths of ``networks`` times ``factor`` (each round(h·f), >= 1)."""
        fields = {s.name: s.hidden_field for s in specs}
        new = {fields[n]: tuple(max(1, int(round(h * factor))) for h in getattr(self, fields[n])) for n in networks}
        return dataclasses.replace(self, **new)

    def check_prunes(self, prunes: Sequence[Any]) -> None:
        """Refuse, in one line naming the flag, an option of this config that the job's pruning methods
        (``PruneConfig``s: ``label``, ``uses_loss``, ``prune_networks``) make meaningless. Default: none."""

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

    def __post_init__(self):
        flags = {s.name: s.flag for s in specs(self.config)}
        for s in self.network_specs:  # every network has hidden layers (their widths scale: narrow, widened)
            if not getattr(self.config, s.hidden_field):
                raise ValueError(f"--{flags.get(s.hidden_field, s.hidden_field)} is empty: give at least one hidden "
                                 "layer size")

    # ---- networks, declared once --------------------------------------------------------
    @property
    def network_specs(self) -> Tuple[NetworkSpec, ...]:
        raise NotImplementedError

    @property
    def networks(self) -> Tuple[str, ...]:
        """The scored (prunable) networks, in scoring order."""
        return tuple(s.name for s in self.network_specs)

    @property
    def target_networks(self) -> Tuple[str, ...]:
        return tuple(s.name for s in self.network_specs if s.target)

    @property
    def acting_networks(self) -> Tuple[str, ...]:
        """The param paths that acting reads (what export keeps): "vae", "critic/q1", ..."""
        return tuple(f"{s.name}/{p}" if p else s.name for s in self.network_specs for p in s.acts)

    def spec(self, name: str) -> NetworkSpec:
        return next(s for s in self.network_specs if s.name == name)

    def scored_view(self, tree: Params) -> Params:
        """The scored networks' part of a params / masks tree (Q1 stands for a twin critic)."""
        return {s.name: tree[s.name]["q1"] if s.twin else tree[s.name] for s in self.network_specs}

    def expand_masks(self, params: Params, net_masks: Params) -> Params:
        """Masks shaped like ``params``: a twin's Q1 mask copied to Q2, all-ones for other subtrees."""
        out = {}
        for k in params:
            m = net_masks.get(k)
            if m is not None and k in self.networks and self.spec(k).twin:
                m = {h: m for h in TWIN_HEADS}
            out[k] = m if m is not None else pruning.ones_like_masks(params[k])
        return out

    def init_params(self, key: jax.Array) -> Params:
        raise NotImplementedError

    def scoring_problems(self, params: Params, batch: Transitions, key: jax.Array) -> Dict[str, Tuple]:
        raise NotImplementedError

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

    metric_names: ClassVar[Tuple[str, ...]] = ()

    def init_state(self, params: Params, masks: Params, obs_mean, obs_std) -> TrainState:
        """State at step 0: masked params (given), Polyak targets = params, masked optimizers (over a compact
        kernel's values, its padding masked)."""
        txs = self.optimizers()
        opt_state = {}
        for k, v in params.items():
            values, _ = compact_params.split(v)
            opt_state[k] = pruning.masked(txs[k], compact_params.values_masks(v, masks[k])).init(values)
        targets = {k: params[k] for k in self.target_networks if k in params}
        return TrainState(params, targets, opt_state, jnp.asarray(obs_mean, jnp.float32),
                          jnp.asarray(obs_std, jnp.float32), jnp.zeros((), jnp.int32))

    def update(self, name: str, loss_fn, params, opt_state, batch):
        """One masked optimizer step of network ``name`` on ``loss_fn(params, batch)`` (a compact kernel's
        values are what trains; its indices stay fixed)."""
        values, rebuild = compact_params.split(params)
        loss, grads = jax.value_and_grad(lambda v, b: loss_fn(rebuild(v), b))(values, batch)
        updates, opt_state = pruning.masked(self.optimizers()[name], None).update(grads, opt_state, values)
        return rebuild(optax.apply_updates(values, updates)), opt_state, loss

    def polyak(self, targets: Params, params: Params) -> Params:
        """The Polyak step of every target network, rate ``config.tau``."""
        return polyak(targets, params, self.config.tau)

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
    def acting_program(self) -> Dict[str, Any]:
        raise NotImplementedError

    def act(self, params: Params, obs_mean, obs_std, obs, key):
        """Actions for observations ``obs`` (..., obs_dim): :meth:`acting_program` interpreted on
        jax arrays (:func:`sparse_orl.algos.acting.run_program`), the noise drawn from ``key``."""
        return acting.act(self.acting_program(), params, self.normalize(obs_mean, obs_std, obs), key,
                          self.config.dtype)

    def diagnostics(self, params, masks, data, key, obs_mean, obs_std, num_samples: int) -> Dict[str, Any]:
        """Algorithm-specific diagnostics for ``launch.diagnose``: a dict of JSON-able values,
        with ``"notes"``: lines of text to print. None by default."""
        return {}
