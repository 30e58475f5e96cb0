"""Ours vs plain PyTorch (and d3rlpy) on the same BCQ / BC / TD3+BC / IQL steps, side by side and interleaved.

TD3+BC and IQL (``--algos=td3bc,iql``): the authors' steps in plain PyTorch (``_torch_td3bc_iql``),
256-256, batch 256, and d3rlpy's ``TD3PlusBCConfig`` / ``IQLConfig``.

Ours: ``--our_runs`` (default 5) dense runs in one program (``make_train_chunk``).
PyTorch: the BCQ step of sfujim/BCQ written plainly (``TorchBCQ`` below; BC is
BEAR's cloning variant: the critic target evaluates unperturbed VAE samples),
same sizes (actor / critic 400-300, VAE 750-750, latent 2·act), batch 100, 10
repeated next-state samples, Adam 1e-3, Polyak 0.005, PyTorch's default init,
run in a separate venv (``torch==2.13.0``, CPU) as persistent worker processes:

* ``torch 1p x 2t``: one process with 2 threads;
* ``torch 2p x 1t``: two processes with 1 thread each, started together; the
  aggregate is the sum of their rates.

d3rlpy's BCQ (same sizes, ``n_action_samples=10``) runs as a third worker when a
python with d3rlpy is found. Each repeat times, in turn: our chunk, torch 1p,
torch 2p, d3rlpy, for about ``--chunk_s`` seconds each. Reported: aggregate
steps/s (median over repeats) and ours / PyTorch's best aggregate.

    python bench/vs_pytorch.py --torch_python /tmp/torchvenv/bin/python
    python bench/vs_pytorch.py --quick
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _common as C  # noqa: E402

TORCH_CANDIDATES = (".bench/torch/bin/python", ".bench/d3rlpy/bin/python")  # relative to the repository root
D3RLPY_CANDIDATES = (".bench/d3rlpy/bin/python",)


# =========================== the PyTorch side (runs in the torch venv) ===========================
def _torch_agent(obs_dim, act_dim, max_action, algo, latent_dim=None):
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


def _torch_worker(args):
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
                 else _torch_agent(obs_dim, act_dim, max_action, args.algo))
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
    print(json.dumps({"ready": True, "warmup_steps_s": warm_rate, "torch": torch.__version__,
                      "threads": torch.get_num_threads()}), flush=True)
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
    def __init__(self, python, kind, algo, env, threads, data_size, batch, warmup, seed):
        env_vars = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                        PYTHONWARNINGS="ignore")
        env_vars.pop("XLA_FLAGS", None)
        cmd = [python, os.path.abspath(__file__), "--worker", kind, "--algo", algo, "--env", env,
               "--threads", str(threads), "--data_size", str(data_size), "--batch", str(batch),
               "--warmup", str(warmup), "--seed", str(seed)]
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", choices=("torch", "d3rlpy"), help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--algo", default="bcq", help=argparse.SUPPRESS)
    p.add_argument("--warmup", type=int, default=10, help="warmup steps of each PyTorch / d3rlpy worker")
    p.add_argument("--algos", default=None, help="(default bcq,bc; --quick: bcq) "
                   "subset of bcq,bc,td3bc,iql (td3bc / iql: the authors' "
                   "256-256 and batch 256)")
    p.add_argument("--env", default="halfcheetah", choices=tuple(C.ENVS))
    p.add_argument("--our_runs", type=int, default=5, help="runs in our one program")
    p.add_argument("--chunk_s", type=float, default=8.0, help="seconds per timed piece")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--data_size", type=int, default=0, help="synthetic transitions (0: 1M, the dataset's size)")
    p.add_argument("--d3rlpy_data_size", type=int, default=100_000, help="d3rlpy's synthetic dataset")
    p.add_argument("--compute_dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--torch_python", default="", help="python of a venv with torch==2.13.0 (default: search "
                                                      + ", ".join(TORCH_CANDIDATES) + ")")
    p.add_argument("--d3rlpy_python", default="", help="python of a venv with d3rlpy (default: search "
                                                       + ", ".join(D3RLPY_CANDIDATES) + "); 'none' skips it")
    p.add_argument("--cpu_devices", default="1",
                   help="our side: split the CPU into this many single-threaded JAX devices, runs sharded over "
                        "them ('auto': one per usable core; sparse_orl.trainer.devices)")
    p.add_argument("--peak_n", type=int, default=2048)
    p.add_argument("--quick", action="store_true", help="smoke run: bcq, 2 s pieces, 1 repeat, 20k transitions")
    p.add_argument("--out", default="", help="write results as JSON here")
    a = p.parse_args(argv)
    if a.quick:
        a.algos, a.chunk_s, a.repeats, a.warmup, a.peak_n = a.algos or "bcq", 2.0, 1, 3, 1024
        a.data_size, a.d3rlpy_data_size = a.data_size or 20_000, min(a.d3rlpy_data_size, 20_000)
    a.algos = a.algos or "bcq,bc"
    return a


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return _torch_worker(args)
    warn = C.load_warning()
    if warn:
        print(warn)
    torch_py = find_python(args.torch_python, TORCH_CANDIDATES, "torch")
    if torch_py is None:
        sys.exit("no python with torch found: pass --torch_python (e.g. a venv with `pip install torch==2.13.0 numpy`)")
    d3_py = None if args.d3rlpy_python == "none" else find_python(args.d3rlpy_python, D3RLPY_CANDIDATES, "d3rlpy")
    print(f"torch python: {torch_py}; d3rlpy python: {d3_py or 'not found (skipped)'}")
    devices = C.apply_cpu_devices(args.cpu_devices)  # before JAX starts

    import jax

    from train_throughput import Program, make_bench_agent, synthetic_data

    print(f"machine: {C.machine_info()}" + (f"; our side: CPU split into {devices} single-threaded devices"
                                            if devices > 1 else ""))
    peak = C.matmul_peak_gflops(args.peak_n)
    print(f"fp32 matmul peak ({args.peak_n}^3): {peak['gflops_best']:.1f} GFLOP/s")
    obs_dim, act_dim, _, _ = C.ENVS[args.env]
    data = synthetic_data(args.env, args.data_size)
    results = []
    for algo in args.algos.split(","):
        batch = C.batch_of(algo, args.batch)
        flops = C.step_flops(algo, obs_dim, act_dim, batch)
        agent = make_bench_agent(args.env, algo, args.compute_dtype)
        n = args.our_runs
        # chunks of ~1 s (at 50% of peak), called back to back for ~chunk_s seconds per timed piece
        steps = max(3, int(1.0 * 0.5 * peak["gflops_best"] * 1e9 / (flops["total"] * n)))
        prog = Program(agent, data, n, steps, batch, "dense", 0.0)

        def ours_rate():
            t0, calls = time.perf_counter(), 0
            while True:
                prog.time_chunk()
                calls += 1
                el = time.perf_counter() - t0
                if el >= args.chunk_s:
                    return n * steps * calls / el
        print(f"[{algo}] ours: {n} runs x {steps} steps per chunk (compile {prog.compile_s:.1f}s); starting workers",
              flush=True)
        common = dict(algo=algo, env=args.env, data_size=args.data_size, batch=batch, warmup=args.warmup)
        contenders = {
            "torch 1p x 2t": [Worker(torch_py, "torch", threads=2, seed=0, **common)],
            "torch 2p x 1t": [Worker(torch_py, "torch", threads=1, seed=s, **common) for s in (1, 2)],
        }
        if d3_py and algo in ("bcq", "td3bc", "iql"):
            try:
                contenders["d3rlpy 1p x 2t"] = [Worker(d3_py, "d3rlpy", threads=2, seed=0,
                                                       **dict(common, data_size=args.d3rlpy_data_size))]
            except RuntimeError as e:
                print(f"d3rlpy worker failed: {e}")
        times = {"ours": []}
        times.update({k: [] for k in contenders})
        for r in range(args.repeats):
            jax.block_until_ready(prog.runs)
            times["ours"].append(ours_rate())
            for name, ws in contenders.items():
                time.sleep(0.3)  # let the previous contender's threads go idle
                res = run_workers(ws, args.chunk_s)
                times[name].append(sum(x["steps_s"] for x in res))
            print(f"  repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in times.items()), flush=True)
        for ws in contenders.values():
            for w in ws:
                w.close()
        med = {k: C.median(v) for k, v in times.items()}
        torch_best = max(med[k] for k in ("torch 1p x 2t", "torch 2p x 1t"))
        for k, v in times.items():
            results.append({
                "algo": algo, "env": args.env, "contender": k, "agg_steps_s": med[k], "agg_steps_s_all": v,
                "ratio_ours_over": med["ours"] / med[k],
                "useful_gflops": med[k] * flops["total"] / 1e9,
                "pct_peak": 100 * med[k] * flops["total"] / 1e9 / peak["gflops_best"],
                "runs": n if k == "ours" else (2 if "2p" in k else 1),
            })
        results.append({"algo": algo, "env": args.env, "contender": "ours / torch best",
                        "ratio_ours_over": med["ours"] / torch_best})
        prog = None  # free its device buffers before the next algorithm
    print()
    print(f"fp32 matmul peak: {peak['gflops_best']:.1f} GFLOP/s; our side: {args.our_runs} runs in one program"
          + (f" over {devices} CPU devices" if devices > 1 else "") + "; "
          f"ratio = ours / contender (aggregate steps/s, median of {args.repeats})"
          + ("   [" + warn + "]" if warn else ""))
    print(C.table(results, [("algo", "algo", ""), ("env", "env", ""), ("contender", "contender", ""),
                            ("agg_steps_s", "agg steps/s", ".1f"), ("useful_gflops", "useful GFLOP/s", ".1f"),
                            ("pct_peak", "% peak", ".0f"), ("ratio_ours_over", "ours/this", ".2f")]))
    C.write_json(args.out, {"benchmark": "vs_pytorch", "args": vars(args), "machine": C.machine_info(),
                            "jax": C.jax_info(), "cpu_devices": devices, "load_warning": warn, "peak_fp32": peak,
                            "torch_python": _rel(torch_py), "d3rlpy_python": _rel(d3_py), "rows": results})


if __name__ == "__main__":
    main()
