"""Ours vs plain PyTorch (and d3rlpy) on the same training steps, side by side and interleaved.

Two parts (``--parts``):

**dense** (``--algos``, default bcq,bc): ours is ``--our_runs`` (default 5) dense runs in one program
(``make_train_chunk``). PyTorch: the BCQ step of sfujim/BCQ written plainly (``TorchBCQ`` below; BC is
BEAR's cloning variant: the critic target evaluates unperturbed VAE samples; bc_vae: its VAE update
alone), same sizes (actor / critic 400-300, VAE 750-750, latent 2·act), batch 100, 10 repeated
next-state samples, Adam 1e-3, Polyak 0.005, PyTorch's default init. TD3+BC and IQL
(``--algos=td3bc,iql``): the authors' steps in plain PyTorch (``_torch_td3bc_iql``), 256-256, batch
256, and d3rlpy's ``TD3PlusBCConfig`` / ``IQLConfig``. d3rlpy's BCQ (same sizes,
``n_action_samples=10``) runs as a further worker when a python with d3rlpy is found.

**masked** (``--sparsities``, default 0.9,0.95,0.98): the sparse training step of VAE-only BC
(VAE 750-750, batch 100, Adam 1e-3) at each sparsity, one run per contender:

* ``ours compact``: the library's compact format (``PruneConfig("erk_random")`` masks, then
  ``trainer.compact.plan_layers(..., "compact", batch)`` + ``to_compact``: every pruned kernel as
  its kept values + indices on the CPU kernels);
* ``ours masked``: the same masks multiplied into dense kernels;
* ``torch masked``: the paper's route in plain PyTorch: the dense VAE with random 0/1 masks of the
  same per-layer kept counts, multiplied into the weights after every Adam step
  (``--mask_grads``: into the gradients before it as well); the cost does not depend on which
  weights are kept.

PyTorch runs in a separate venv (``torch==2.13.0``, CPU) as persistent worker processes:

* ``1p x 2t``: one process with 2 threads;
* ``2p x 1t``: two processes with 1 thread each, started together; the aggregate is the sum of
  their rates (two runs).

Each repeat times every contender in turn for about ``--chunk_s`` seconds (the masked part reverses
the order every other repeat). Reported: run-steps/s (steps of every run per second, median over
repeats) and ours / PyTorch's best; the masked part's target is ours compact >= 4x PyTorch masked at
95% sparsity.

    python bench/vs_pytorch.py                                    # both parts
    python bench/vs_pytorch.py --parts=masked --out=vs_pytorch_masked.json
    python bench/vs_pytorch.py --quick
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the PyTorch worker too: it runs from /tmp, in a venv without JAX

import _common as C  # noqa: E402
from bench._options import parse  # noqa: E402
from sparse_orl.fields import option  # noqa: E402

TORCH_CANDIDATES = (".bench/torch/bin/python", ".bench/d3rlpy/bin/python")  # relative to the repository root
D3RLPY_CANDIDATES = (".bench/d3rlpy/bin/python",)
VAE_LAYERS = ("e1", "e2", "mean", "log_std", "d1", "d2", "d3")  # the VAE's Linear layers, in --mask_density order
MASKED_TARGET = (0.95, 4.0)  # ours compact >= 4x PyTorch masked (best) at 95%


@dataclasses.dataclass(frozen=True)
class Options:
    parts: Tuple[str, ...] = option(("dense", "masked"), "Parts to run: dense (--algos) and masked (--sparsities).",
                                    choices=("dense", "masked"))
    algos: Tuple[str, ...] = option(("bcq", "bc"), "Dense part: algorithms (td3bc / iql: the authors' 256-256 and "
                                    "batch 256); --quick: bcq unless given.", choices=tuple(C.ALGOS))
    sparsities: Tuple[float, ...] = option((0.9, 0.95, 0.98), "Masked part: sparsities of VAE-only BC.",
                                           low=0, high=1, high_open=True)
    env: str = option("halfcheetah", "Environment shapes.", choices=tuple(C.ENVS))
    our_runs: int = option(5, "Dense part: runs in our one program.", low=1)
    sparse_steps: int = option(100, "Masked part: steps per call of our compiled chunk.", low=1)
    mask_grads: bool = option(False, "Masked part, PyTorch: also multiply the masks into the gradients before "
                              "every Adam step (default: into the weights after it only).")
    chunk_s: float = option(8.0, "Seconds per timed piece.", low=0, low_open=True)
    repeats: int = option(3, "Timed pieces per contender (interleaved); the median is reported.", low=1)
    warmup: int = option(10, "Warmup steps of each PyTorch / d3rlpy worker.", low=0)
    batch: int = option(100, "Batch of bcq / bc / bc_vae (td3bc and iql use 256).", low=1)
    data_size: int = option(0, "Synthetic transitions (0: 1M, the dataset's size).", low=0)
    d3rlpy_data_size: int = option(100_000, "d3rlpy's synthetic dataset.", low=1000)
    compute_dtype: str = option("float32", "Dense part: our compute dtype.", choices=("float32", "bfloat16"))
    torch_python: str = option("", "Python of a venv with torch==2.13.0 (default: search "
                               + ", ".join(TORCH_CANDIDATES) + ").")
    d3rlpy_python: str = option("", "Python of a venv with d3rlpy (default: search " + ", ".join(D3RLPY_CANDIDATES)
                                + "); 'none' skips it.")
    cpu_devices: str = option("1", "Our side: split the CPU into this many single-threaded JAX devices, runs sharded "
                              "over them ('auto': one per usable core; sparse_orl.trainer.devices).")
    peak_n: int = option(2048, "Dense part: size of the n^3 matmul timed for the peak.", low=1)
    quick: bool = option(False, "Smoke run: 2 s pieces, 1 repeat, 20k transitions; dense part bcq only.")
    out: str = option("", "Also write the results to this JSON file.")
    worker: str = option("", "Internal: run as a PyTorch / d3rlpy worker.", choices=("", "torch", "d3rlpy"))
    algo: str = option("bcq", "Internal: the worker's algorithm.", choices=tuple(C.ALGOS))
    threads: int = option(2, "Internal: the worker's threads.", low=1)
    seed: int = option(0, "Internal: the worker's seed.", low=0)
    mask_density: Tuple[float, ...] = option((), "Internal: the worker's kept fraction of each VAE layer ("
                                             + ", ".join(VAE_LAYERS) + "); empty: dense.", low=0, high=1)


# =========================== the PyTorch side (runs in the torch venv) ===========================
def _torch_agent(obs_dim, act_dim, max_action, algo, latent_dim=None, mask_density=(), mask_grads=False):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    latent_dim = latent_dim or 2 * act_dim

    class Actor(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2, self.l3 = nn.Linear(obs_dim + act_dim, 400), nn.Linear(400, 300), nn.Linear(300, act_dim)

        def forward(self, state, action):
            a = F.relu(self.l1(torch.cat([state, action], 1)))
            a = F.relu(self.l2(a))
            a = 0.05 * max_action * torch.tanh(self.l3(a))
            return (a + action).clamp(-max_action, max_action)

    class Critic(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2, self.l3 = nn.Linear(obs_dim + act_dim, 400), nn.Linear(400, 300), nn.Linear(300, 1)
            self.l4, self.l5, self.l6 = nn.Linear(obs_dim + act_dim, 400), nn.Linear(400, 300), nn.Linear(300, 1)

        def forward(self, state, action):
            sa = torch.cat([state, action], 1)
            q1 = self.l3(F.relu(self.l2(F.relu(self.l1(sa)))))
            q2 = self.l6(F.relu(self.l5(F.relu(self.l4(sa)))))
            return q1, q2

        def q1(self, state, action):
            sa = torch.cat([state, action], 1)
            return self.l3(F.relu(self.l2(F.relu(self.l1(sa)))))

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.e1, self.e2 = nn.Linear(obs_dim + act_dim, 750), nn.Linear(750, 750)
            self.mean, self.log_std = nn.Linear(750, latent_dim), nn.Linear(750, latent_dim)
            self.d1, self.d2, self.d3 = nn.Linear(obs_dim + latent_dim, 750), nn.Linear(750, 750), nn.Linear(750, act_dim)

        def forward(self, state, action):
            z = F.relu(self.e1(torch.cat([state, action], 1)))
            z = F.relu(self.e2(z))
            mean = self.mean(z)
            log_std = self.log_std(z).clamp(-4, 15)
            std = torch.exp(log_std)
            z = mean + std * torch.randn_like(std)
            return self.decode(state, z), mean, std

        def decode(self, state, z=None):
            if z is None:
                z = torch.randn((state.shape[0], latent_dim)).clamp(-0.5, 0.5)
            a = F.relu(self.d1(torch.cat([state, z], 1)))
            a = F.relu(self.d2(a))
            return max_action * torch.tanh(self.d3(a))

    class BCQ:
        """sfujim/BCQ ``BCQ.train``, one iteration; ``cloning``: BEAR's BC variant."""

        def __init__(self, cloning, discount=0.99, tau=0.005, lmbda=0.75):
            import copy

            self.actor = Actor()
            self.actor_target = copy.deepcopy(self.actor)
            self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=1e-3)
            self.critic = Critic()
            self.critic_target = copy.deepcopy(self.critic)
            self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=1e-3)
            self.vae = VAE()
            self.vae_optimizer = torch.optim.Adam(self.vae.parameters())
            self.cloning, self.discount, self.tau, self.lmbda = cloning, discount, tau, lmbda

        def train(self, state, action, next_state, reward, not_done):
            recon, mean, std = self.vae(state, action)
            recon_loss = F.mse_loss(recon, action)
            kl_loss = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
            vae_loss = recon_loss + 0.5 * kl_loss
            self.vae_optimizer.zero_grad()
            vae_loss.backward()
            self.vae_optimizer.step()

            with torch.no_grad():
                next_state = torch.repeat_interleave(next_state, 10, 0)
                next_action = self.vae.decode(next_state)
                if not self.cloning:
                    next_action = self.actor_target(next_state, next_action)
                target_q1, target_q2 = self.critic_target(next_state, next_action)
                target_q = self.lmbda * torch.min(target_q1, target_q2) + (1.0 - self.lmbda) * torch.max(target_q1, target_q2)
                target_q = target_q.reshape(state.shape[0], -1).max(1)[0].reshape(-1, 1)
                target_q = reward + not_done * self.discount * target_q

            current_q1, current_q2 = self.critic(state, action)
            critic_loss = F.mse_loss(current_q1, target_q) + F.mse_loss(current_q2, target_q)
            self.critic_optimizer.zero_grad()
            critic_loss.backward()
            self.critic_optimizer.step()

            sampled_actions = self.vae.decode(state)
            perturbed_actions = self.actor(state, sampled_actions)
            actor_loss = -self.critic.q1(state, perturbed_actions).mean()
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()

            for param, target_param in zip(self.critic.parameters(), self.critic_target.parameters()):
                target_param.data.copy_(self.tau * param.data + (1 - self.tau) * target_param.data)
            for param, target_param in zip(self.actor.parameters(), self.actor_target.parameters()):
                target_param.data.copy_(self.tau * param.data + (1 - self.tau) * target_param.data)

    class VAEOnly:
        """VAE-only BC: ``BCQ.train``'s VAE update alone. With ``mask_density`` (one kept fraction per
        Linear, :data:`VAE_LAYERS` order) the paper's route to a sparse network: random 0/1 masks of
        exactly round(density · size) ones, multiplied into the weights after every Adam step so pruned
        weights stay zero (``mask_grads``: into the gradients before the step as well)."""

        def __init__(self):
            self.vae = VAE()
            self.vae_optimizer = torch.optim.Adam(self.vae.parameters())
            self.masks = []
            if mask_density:
                if len(mask_density) != len(VAE_LAYERS):
                    raise SystemExit(f"--mask_density needs {len(VAE_LAYERS)} values ({', '.join(VAE_LAYERS)})")
                for name, density in zip(VAE_LAYERS, mask_density):
                    w = getattr(self.vae, name).weight
                    n = w.numel()
                    if round(density * n) >= n:
                        continue  # a dense layer: no mask
                    m = torch.zeros(n)
                    m[torch.randperm(n)[:round(density * n)]] = 1.0
                    m = m.view_as(w)
                    with torch.no_grad():
                        w.mul_(m)
                    self.masks.append((w, m))

        def train(self, state, action, next_state, reward, not_done):
            recon, mean, std = self.vae(state, action)
            recon_loss = F.mse_loss(recon, action)
            kl_loss = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
            vae_loss = recon_loss + 0.5 * kl_loss
            self.vae_optimizer.zero_grad()
            vae_loss.backward()
            if mask_grads:
                for w, m in self.masks:
                    w.grad.mul_(m)
            self.vae_optimizer.step()
            with torch.no_grad():
                for w, m in self.masks:
                    w.mul_(m)

    if algo == "bc_vae":
        return VAEOnly()
    if mask_density:
        raise SystemExit("--mask_density: only for --algo=bc_vae")
    return BCQ(cloning=(algo == "bc"))


def _torch_td3bc_iql(obs_dim, act_dim, max_action, algo):
    """The authors' steps written plainly in PyTorch: sfujim/TD3_BC ``TD3_BC.train`` and IQL
    (ikostrikov/implicit_q_learning ``learner.update``: value, actor, critic, target), 256-256, Adam 3e-4."""
    import copy

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def mlp(d_in, d_out):
        return nn.Sequential(nn.Linear(d_in, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, d_out))

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.q1, self.q2 = mlp(obs_dim + act_dim, 1), mlp(obs_dim + act_dim, 1)

        def forward(self, s, a):
            sa = torch.cat([s, a], 1)
            return self.q1(sa), self.q2(sa)

    class TD3BC:
        def __init__(self):
            self.actor = mlp(obs_dim, act_dim)
            self.actor_target = copy.deepcopy(self.actor)
            self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=3e-4)
            self.critic = Twin()
            self.critic_target = copy.deepcopy(self.critic)
            self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=3e-4)
            self.it = 0

        def pi(self, net, s):
            return max_action * torch.tanh(net(s))

        def train(self, s, a, s2, r, nd):
            self.it += 1
            with torch.no_grad():
                noise = (torch.randn_like(a) * 0.2).clamp(-0.5, 0.5)
                a2 = (self.pi(self.actor_target, s2) + noise).clamp(-max_action, max_action)
                t1, t2 = self.critic_target(s2, a2)
                y = r + nd * 0.99 * torch.min(t1, t2)
            q1, q2 = self.critic(s, a)
            loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
            self.critic_opt.zero_grad()
            loss.backward()
            self.critic_opt.step()
            if self.it % 2 == 0:
                pi = self.pi(self.actor, s)
                q = self.critic.q1(torch.cat([s, pi], 1))
                lmbda = 2.5 / q.abs().mean().detach()
                actor_loss = -lmbda * q.mean() + F.mse_loss(pi, a)
                self.actor_opt.zero_grad()
                actor_loss.backward()
                self.actor_opt.step()
                with torch.no_grad():
                    for net, tgt in ((self.critic, self.critic_target), (self.actor, self.actor_target)):
                        for p, tp in zip(net.parameters(), tgt.parameters()):
                            tp.mul_(0.995).add_(0.005 * p)

    class IQL:
        def __init__(self):
            self.value = mlp(obs_dim, 1)
            self.value_opt = torch.optim.Adam(self.value.parameters(), lr=3e-4)
            self.actor = mlp(obs_dim, act_dim)
            self.log_std = nn.Parameter(torch.zeros(act_dim))
            self.actor_opt = torch.optim.Adam(list(self.actor.parameters()) + [self.log_std], lr=3e-4)
            self.critic = Twin()
            self.critic_target = copy.deepcopy(self.critic)
            self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=3e-4)

        def train(self, s, a, s2, r, nd):
            with torch.no_grad():
                t1, t2 = self.critic_target(s, a)
                q = torch.min(t1, t2)
            u = q - self.value(s)
            v_loss = (torch.abs(0.7 - (u < 0).float()) * u ** 2).mean()
            self.value_opt.zero_grad()
            v_loss.backward()
            self.value_opt.step()
            with torch.no_grad():
                w = torch.exp(3.0 * (q - self.value(s))).clamp(max=100.0)
            mean = torch.tanh(self.actor(s))
            dist = torch.distributions.Normal(mean, self.log_std.clamp(-5, 2).exp())
            actor_loss = -(w * dist.log_prob(a).sum(-1, keepdim=True)).mean()
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            with torch.no_grad():
                y = r + 0.99 * nd * self.value(s2)
            q1, q2 = self.critic(s, a)
            c_loss = ((q1 - y) ** 2 + (q2 - y) ** 2).mean()
            self.critic_opt.zero_grad()
            c_loss.backward()
            self.critic_opt.step()
            with torch.no_grad():
                for p, tp in zip(self.critic.parameters(), self.critic_target.parameters()):
                    tp.mul_(0.995).add_(0.005 * p)

    return TD3BC() if algo == "td3bc" else IQL()


def _torch_worker(args: Options):
    """Persistent worker: build, warm up, print READY; then 'run SECONDS' -> one JSON line."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    obs_dim, act_dim, max_action, full = C.ENVS[args.env]
    n = args.data_size or full
    g = torch.Generator().manual_seed(args.seed)

    if args.worker == "torch":
        agent = (_torch_td3bc_iql(obs_dim, act_dim, max_action, args.algo) if args.algo in C.OWN_SIZES
                 else _torch_agent(obs_dim, act_dim, max_action, args.algo, mask_density=args.mask_density,
                                   mask_grads=args.mask_grads))
        S = torch.randn(n, obs_dim, generator=g)
        A = torch.rand(n, act_dim, generator=g) * 2 * max_action - max_action
        R = torch.randn(n, 1, generator=g)
        S2 = torch.randn(n, obs_dim, generator=g)
        ND = (torch.rand(n, 1, generator=g) > 0.01).float()

        def step():
            idx = torch.randint(0, n, (args.batch,))
            agent.train(S[idx], A[idx], S2[idx], R[idx], ND[idx])
    else:  # d3rlpy
        import d3rlpy
        from d3rlpy.models.encoders import VectorEncoderFactory

        rng = np.random.default_rng(args.seed)
        ep = 1000
        terminals = np.zeros(n, np.float32)
        timeouts = np.zeros(n, np.float32)
        timeouts[ep - 1::ep] = 1.0
        ds = d3rlpy.dataset.MDPDataset(
            observations=rng.standard_normal((n, obs_dim)).astype(np.float32),
            actions=rng.uniform(-max_action, max_action, (n, act_dim)).astype(np.float32),
            rewards=rng.standard_normal(n).astype(np.float32), terminals=terminals, timeouts=timeouts)
        if args.algo == "td3bc":
            algo = d3rlpy.algos.TD3PlusBCConfig(batch_size=args.batch, alpha=2.5, update_actor_interval=2,
                                                actor_learning_rate=3e-4, critic_learning_rate=3e-4
                                                ).create(device="cpu:0")
        elif args.algo == "iql":
            algo = d3rlpy.algos.IQLConfig(batch_size=args.batch, expectile=0.7, weight_temp=3.0, max_weight=100.0,
                                          actor_learning_rate=3e-4, critic_learning_rate=3e-4).create(device="cpu:0")
        else:
            algo = d3rlpy.algos.BCQConfig(
                batch_size=args.batch, actor_encoder_factory=VectorEncoderFactory([400, 300]),
                critic_encoder_factory=VectorEncoderFactory([400, 300]),
                imitator_encoder_factory=VectorEncoderFactory([750, 750]), n_action_samples=10, n_critics=2,
                tau=0.005, lam=0.75, action_flexibility=0.05, beta=0.5,
            ).create(device="cpu:0")
        algo.build_with_dataset(ds)

        def step():
            algo.update(ds.sample_transition_batch(args.batch))

    t = time.perf_counter()
    for _ in range(args.warmup):
        step()
    warm_rate = args.warmup / (time.perf_counter() - t)
    masks = len(getattr(agent, "masks", ())) if args.worker == "torch" else 0
    print(json.dumps({"ready": True, "warmup_steps_s": warm_rate, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "masked_layers": masks}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        seconds = float(cmd[1])
        steps, t0 = 0, time.perf_counter()
        while True:
            step()
            steps += 1
            el = time.perf_counter() - t0
            if el >= seconds:
                break
        print(json.dumps({"steps": steps, "elapsed": el, "steps_s": steps / el}), flush=True)


# =========================== the parent (JAX venv) ===========================
def _has(python, module):
    try:
        return subprocess.run([python, "-c", f"import {module}"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_python(given, candidates, module):
    if given:
        return os.path.abspath(given) if _has(given, module) else None
    for c in candidates:
        if os.path.exists(c) and _has(c, module):
            return os.path.abspath(c)  # the workers run in /tmp
    return None


def _rel(path):
    """A python's path as recorded in results: relative to the repository root (no machine paths)."""
    return None if path is None else os.path.relpath(path, os.path.dirname(HERE))


class Worker:
    def __init__(self, python, kind, algo, env, threads, data_size, batch, warmup, seed, mask_density=(),
                 mask_grads=False):
        env_vars = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                        PYTHONWARNINGS="ignore")
        env_vars.pop("XLA_FLAGS", None)
        cmd = [python, os.path.abspath(__file__), "--worker", kind, "--algo", algo, "--env", env,
               "--threads", str(threads), "--data_size", str(data_size), "--batch", str(batch),
               "--warmup", str(warmup), "--seed", str(seed)]
        if mask_density:
            cmd.append("--mask_density=" + ",".join(f"{d:.9g}" for d in mask_density))
        if mask_grads:
            cmd.append("--mask_grads")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                                  if kind == "d3rlpy" else None, text=True, env=env_vars, cwd="/tmp")
        self.info = self._read()

    def _read(self):
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError(f"worker exited (rc={self.p.poll()})")
            if line.startswith("{"):
                return json.loads(line)

    def start(self, seconds):
        self.p.stdin.write(f"run {seconds}\n")
        self.p.stdin.flush()

    def result(self):
        return self._read()

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
            self.p.wait(timeout=30)
        except Exception:
            self.p.kill()


def run_workers(workers, seconds):
    """Start all together, return their results (rates summed by the caller)."""
    for w in workers:
        w.start(seconds)
    return [w.result() for w in workers]


def parse_args(argv=None) -> Options:
    argv = sys.argv[1:] if argv is None else list(argv)
    o = parse(Options, argv)
    if o.quick:
        given = {a[2:].partition("=")[0] for a in argv if a.startswith("--")}
        o = dataclasses.replace(o, algos=o.algos if "algos" in given else ("bcq",), chunk_s=2.0, repeats=1, warmup=3,
                                peak_n=1024, data_size=o.data_size or 20_000,
                                d3rlpy_data_size=min(o.d3rlpy_data_size, 20_000))
    return o


def _timed_rate(call, steps_per_call: int, seconds: float) -> float:
    """Steps/s of ``call()`` (one compiled chunk, blocking) called back to back for ``seconds``."""
    t0, calls = time.perf_counter(), 0
    while True:
        call()
        calls += 1
        el = time.perf_counter() - t0
        if el >= seconds:
            return steps_per_call * calls / el


def dense_part(o: Options, torch_py, d3_py, data, peak, devices) -> List[Dict]:
    """Ours (``--our_runs`` dense runs in one program) vs PyTorch and d3rlpy, per algorithm."""
    import jax

    from train_throughput import Program, make_bench_agent

    obs_dim, act_dim, _, _ = C.ENVS[o.env]
    results = []
    for algo in o.algos:
        batch = C.batch_of(algo, o.batch)
        flops = C.step_flops(algo, obs_dim, act_dim, batch)
        agent = make_bench_agent(o.env, algo, o.compute_dtype)
        n = o.our_runs
        # chunks of ~1 s (at 50% of peak), called back to back for ~chunk_s seconds per timed piece
        steps = max(3, int(1.0 * 0.5 * peak["gflops_best"] * 1e9 / (flops["total"] * n)))
        prog = Program(agent, data, n, steps, batch, "dense", 0.0)
        print(f"[{algo}] ours: {n} runs x {steps} steps per chunk (compile {prog.compile_s:.1f}s); starting workers",
              flush=True)
        common = dict(algo=algo, env=o.env, data_size=o.data_size, batch=batch, warmup=o.warmup)
        contenders = {
            "torch 1p x 2t": [Worker(torch_py, "torch", threads=2, seed=0, **common)],
            "torch 2p x 1t": [Worker(torch_py, "torch", threads=1, seed=s, **common) for s in (1, 2)],
        }
        if d3_py and algo in ("bcq", "td3bc", "iql"):
            try:
                contenders["d3rlpy 1p x 2t"] = [Worker(d3_py, "d3rlpy", threads=2, seed=0,
                                                       **dict(common, data_size=o.d3rlpy_data_size))]
            except RuntimeError as e:
                print(f"d3rlpy worker failed: {e}")
        times = {"ours": []}
        times.update({k: [] for k in contenders})
        for r in range(o.repeats):
            jax.block_until_ready(prog.runs)
            times["ours"].append(_timed_rate(prog.time_chunk, n * steps, o.chunk_s))
            for name, ws in contenders.items():
                time.sleep(0.3)  # let the previous contender's threads go idle
                res = run_workers(ws, o.chunk_s)
                times[name].append(sum(x["steps_s"] for x in res))
            print(f"  repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in times.items()), flush=True)
        for ws in contenders.values():
            for w in ws:
                w.close()
        med = {k: C.median(v) for k, v in times.items()}
        torch_best = max(med[k] for k in ("torch 1p x 2t", "torch 2p x 1t"))
        for k, v in times.items():
            results.append({
                "algo": algo, "env": o.env, "contender": k, "agg_steps_s": med[k], "agg_steps_s_all": v,
                "ratio_ours_over": med["ours"] / med[k],
                "useful_gflops": med[k] * flops["total"] / 1e9,
                "pct_peak": 100 * med[k] * flops["total"] / 1e9 / peak["gflops_best"],
                "runs": n if k == "ours" else (2 if "2p" in k else 1),
            })
        results.append({"algo": algo, "env": o.env, "contender": "ours / torch best",
                        "ratio_ours_over": med["ours"] / torch_best})
        prog = None  # free its device buffers before the next algorithm
    return results


def _vae_densities(masks) -> List[float]:
    """Kept fraction of each VAE kernel of one run (:data:`VAE_LAYERS` order)."""
    import numpy as np

    return [float((np.asarray(masks["vae"][name]["kernel"])[0] != 0).mean()) for name in VAE_LAYERS]


def masked_part(o: Options, torch_py, data, devices) -> List[Dict]:
    """VAE-only BC at each sparsity: ours compact and ours masked (one run each) against PyTorch with masks."""
    import jax
    import jax.numpy as jnp

    from sparse_orl import kernels
    from sparse_orl.config import PruneConfig
    from sparse_orl.trainer import compact, init_runs, make_train_chunk
    from sparse_orl.trainer.devices import usable_cores
    from train_throughput import make_bench_agent

    if not kernels.available():
        sys.exit(f"masked part: the compact kernels are unavailable ({kernels.unavailable_reason()})")
    agent = make_bench_agent(o.env, "bc_vae")
    batch, steps = o.batch, o.sparse_steps
    chunk = make_train_chunk(agent, batch, steps)  # one run, no mesh: the default device
    # our one device runs XLA's ops on every core (its Eigen pool); a device of a split CPU on one
    our_threads = usable_cores() if devices == 1 else 1
    threads = {"ours compact": our_threads, "ours masked": our_threads, "torch masked 1p x 2t": 2,
               "torch masked 2p x 1t": 1}
    results = []
    for s in o.sparsities:
        masked = init_runs(agent, PruneConfig("erk_random"), data, [0], [s])
        host = jax.device_get(masked.agent)
        plan = compact.plan_layers(host.params, host.masks, "compact", batch)
        twin = jax.tree_util.tree_map(jnp.copy, masked)  # chunks donate their states: no shared arrays
        states = {"ours compact": twin.replace(agent=compact.to_compact(agent, twin.agent, plan)), "ours masked": masked}
        densities = _vae_densities(host.masks)
        kept = sum(int((x != 0).sum()) for x in jax.tree_util.tree_leaves(
            {k: v["kernel"] for k, v in host.masks["vae"].items()}))
        print(f"[bc_vae {s:.0%}] {compact.describe(plan)}; kept kernel weights {kept:,}; "
              "compiling ours, starting PyTorch workers", flush=True)
        t0 = time.perf_counter()
        for k in states:  # compile and warm up
            states[k], m = chunk(states[k], data)
            jax.block_until_ready(m)
        print(f"  compiled ours in {time.perf_counter() - t0:.1f}s", flush=True)

        def ours(k):
            def call():
                states[k], m = chunk(states[k], data)
                jax.block_until_ready(m)
            return call

        common = dict(algo="bc_vae", env=o.env, data_size=o.data_size, batch=batch, warmup=o.warmup,
                      mask_density=densities, mask_grads=o.mask_grads)
        workers = {"torch masked 1p x 2t": [Worker(torch_py, "torch", threads=2, seed=0, **common)],
                   "torch masked 2p x 1t": [Worker(torch_py, "torch", threads=1, seed=x, **common) for x in (1, 2)]}
        masked_layers = {w.info.get("masked_layers") for ws in workers.values() for w in ws}
        names = list(states) + list(workers)
        times: Dict[str, List[float]] = {k: [] for k in names}
        for r in range(o.repeats):
            for k in (names if r % 2 == 0 else names[::-1]):
                time.sleep(0.3)  # let the previous contender's threads go idle
                if k in states:
                    times[k].append(_timed_rate(ours(k), steps, o.chunk_s))
                else:
                    times[k].append(sum(x["steps_s"] for x in run_workers(workers[k], o.chunk_s)))
            print(f"  repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in times.items()), flush=True)
        for ws in workers.values():
            for w in ws:
                w.close()
        med = {k: C.median(v) for k, v in times.items()}
        torch_best = max(med[k] for k in workers)
        for k in names:
            results.append({"algo": "bc_vae", "env": o.env, "sparsity": s, "contender": k, "run_steps_s": med[k],
                            "run_steps_s_all": times[k], "runs": 2 if "2p" in k else 1,
                            "processes": 2 if "2p" in k else 1, "threads_per_process": threads[k],
                            "compact_over_this": med["ours compact"] / med[k]})
        results.append({"algo": "bc_vae", "env": o.env, "sparsity": s, "contender": "ours compact / torch masked best",
                        "compact_over_this": med["ours compact"] / torch_best, "kept_kernel_weights": kept,
                        "layer_density": dict(zip(VAE_LAYERS, densities)), "torch_masked_layers": sorted(masked_layers),
                        "compact_plan": plan})
    return results


def masked_summary(rows: List[Dict]) -> List[str]:
    """One line per sparsity: ours compact / PyTorch masked best, and the target at 95%."""
    lines = []
    sp, target = MASKED_TARGET
    for r in rows:
        if r["contender"].startswith("ours compact /"):
            line = f"  {r['sparsity']:.0%}: ours compact / PyTorch masked (best) = {r['compact_over_this']:.2f}x"
            if abs(r["sparsity"] - sp) < 1e-9:
                ok = r["compact_over_this"] >= target
                line += f"   target >= {target:g}x at {sp:.0%}: {'met' if ok else 'NOT met'}"
            lines.append(line)
    return lines


def main(argv=None):
    o = parse_args(argv)
    if o.worker:
        return _torch_worker(o)
    warn = C.load_warning()
    if warn:
        print(warn)
    torch_py = find_python(o.torch_python, TORCH_CANDIDATES, "torch")
    if torch_py is None:
        sys.exit("no python with torch found: pass --torch_python (e.g. a venv with `pip install torch==2.13.0 numpy`)")
    d3_py = None
    if "dense" in o.parts and o.d3rlpy_python != "none":
        d3_py = find_python(o.d3rlpy_python, D3RLPY_CANDIDATES, "d3rlpy")
    print(f"torch python: {torch_py}" + (f"; d3rlpy python: {d3_py or 'not found (skipped)'}" if "dense" in o.parts
                                         else ""))
    devices = C.apply_cpu_devices(o.cpu_devices)  # before JAX starts

    from train_throughput import synthetic_data

    print(f"machine: {C.machine_info()}" + (f"; our side: CPU split into {devices} single-threaded devices"
                                            if devices > 1 else ""))
    data = synthetic_data(o.env, o.data_size)
    peak, dense_rows, masked_rows = None, [], []
    if "dense" in o.parts:
        peak = C.matmul_peak_gflops(o.peak_n)
        print(f"fp32 matmul peak ({o.peak_n}^3): {peak['gflops_best']:.1f} GFLOP/s")
        dense_rows = dense_part(o, torch_py, d3_py, data, peak, devices)
    if "masked" in o.parts:
        masked_rows = masked_part(o, torch_py, data, devices)
    load = f"   [{warn}]" if warn else ""
    if dense_rows:
        print()
        print(f"dense: fp32 matmul peak {peak['gflops_best']:.1f} GFLOP/s; our side: {o.our_runs} runs in one program"
              + (f" over {devices} CPU devices" if devices > 1 else "") + "; "
              f"ratio = ours / contender (aggregate steps/s, median of {o.repeats})" + load)
        print(C.table(dense_rows, [("algo", "algo", ""), ("env", "env", ""), ("contender", "contender", ""),
                                   ("agg_steps_s", "agg steps/s", ".1f"), ("useful_gflops", "useful GFLOP/s", ".1f"),
                                   ("pct_peak", "% peak", ".0f"), ("ratio_ours_over", "ours/this", ".2f")]))
    if masked_rows:
        print()
        print(f"masked: VAE-only BC (VAE 750-750, batch {o.batch}, Adam 1e-3), {o.env} shapes; run-steps/s, median of "
              f"{o.repeats} interleaved pieces of {o.chunk_s:g} s; ours: 1 run on "
              + (f"one JAX CPU device (XLA ops on {masked_rows[0]['threads_per_process']} threads, the compact kernels "
                 "on 1)" if devices == 1 else "device 0 of the split CPU (1 thread)")
              + "; PyTorch: masks into the weights after every step" + (" and into the gradients" if o.mask_grads
                                                                          else "") + load)
        print(C.table([r for r in masked_rows if "run_steps_s" in r], [
            ("sparsity", "sparsity", ".2f"), ("contender", "contender", ""), ("processes", "procs", "d"),
            ("threads_per_process", "threads/proc", "d"), ("runs", "runs", "d"),
            ("run_steps_s", "run-steps/s", ".1f"), ("compact_over_this", "ours compact/this", ".2f")]))
        print("\n".join(masked_summary(masked_rows)))
    C.write_json(o.out, {"benchmark": "vs_pytorch", "args": dataclasses.asdict(o), "machine": C.machine_info(),
                         "jax": C.jax_info(), "cpu_devices": devices, "load_warning": warn, "peak_fp32": peak,
                         "torch_python": _rel(torch_py), "d3rlpy_python": _rel(d3_py), "rows": dense_rows,
                         "masked_rows": masked_rows})


if __name__ == "__main__":
    main()
