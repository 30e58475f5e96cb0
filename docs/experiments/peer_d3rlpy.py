"""d3rlpy 2.8.1 on the same transitions as ours: the peer check of TD3+BC, IQL and BCQ.

Two steps, two interpreters (d3rlpy pins gymnasium 1.0.0, so it lives in its own venv):

    # 1. with the project's python: write our transitions and score reference to an .npz
    MINARI_DATASETS_PATH=../shared/datasets python docs/experiments/peer_d3rlpy.py dump \
        --dataset=sb3/walker2d/expert-v0 --out=runs/peer/walker2d.npz
    # 2. with d3rlpy's python: train and evaluate (10 episodes every --eval_every steps)
    .bench/d3rlpy/bin/python docs/experiments/peer_d3rlpy.py train --algo=iql \
        --data=runs/peer/walker2d.npz --steps=100000 --seed=0 --out=runs/peer/iql_walker2d_s0.json

Episodes are rebuilt from our flat transitions (a row ends an episode where it terminates or
its next observation is not the next row's observation), not with d3rlpy's ``get_minari``,
which misaligns episodes in 2.8.1 (reference ALGORITHMS.md §9). Settings are d3rlpy's
reproduction settings for each paper: TD3+BC with standardized observations; IQL with
rewards scaled by 1000 / (max - min episode return) and the actor's learning rate on a
cosine decay over the run; BCQ with the sizes of ours (750-750 VAE, 400-300 nets).
Evaluation: deterministic ``predict``, the gymnasium env of the dataset, normalized with
the same reference returns as ours. Results are written atomically, one JSON per run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def dump(args) -> None:
    import numpy as np

    sys.path.insert(0, os.getcwd())
    from sparse_orl.data import load_dataset
    try:  # the module's place before and after the package restructuring
        from sparse_orl.store.workdir import score_reference
    except ImportError:
        from sparse_orl.store.workdir import score_reference

    t, info = load_dataset(args.dataset)
    obs, nxt = np.asarray(t.obs), np.asarray(t.next_obs)
    done = np.asarray(t.done) > 0
    ends = done.copy()
    ends[:-1] |= np.any(nxt[:-1] != obs[1:], axis=1)
    ends[-1] = True
    ref = score_reference(info, info.env_id)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez(args.out, obs=obs, action=np.asarray(t.action), reward=np.asarray(t.reward), terminal=done,
             timeout=ends & ~done, env_id=info.env_id, ref_min=ref["min"], ref_max=ref["max"],
             dataset=args.dataset)
    print(f"{args.out}: {len(obs)} transitions, {int(ends.sum())} episodes, env {info.env_id}")


def train(args) -> None:
    import numpy as np
    import torch
    import d3rlpy
    import gymnasium as gym
    from d3rlpy.models.encoders import VectorEncoderFactory

    torch.set_num_threads(args.threads)
    z = np.load(args.data)
    d3rlpy.seed(args.seed)
    ds = d3rlpy.dataset.MDPDataset(observations=z["obs"], actions=z["action"], rewards=z["reward"],
                                   terminals=z["terminal"].astype(np.float32),
                                   timeouts=z["timeout"].astype(np.float32))
    if args.algo == "td3bc":
        algo = d3rlpy.algos.TD3PlusBCConfig(
            batch_size=256, actor_learning_rate=3e-4, critic_learning_rate=3e-4, alpha=2.5,
            update_actor_interval=2, target_smoothing_sigma=0.2, target_smoothing_clip=0.5,
            observation_scaler=d3rlpy.preprocessing.StandardObservationScaler(),
        ).create(device="cpu:0")
    elif args.algo == "iql":
        algo = d3rlpy.algos.IQLConfig(
            batch_size=256, actor_learning_rate=3e-4, critic_learning_rate=3e-4, expectile=0.7,
            weight_temp=3.0, max_weight=100.0,
            actor_optim_factory=d3rlpy.optimizers.AdamFactory(
                lr_scheduler_factory=d3rlpy.optimizers.CosineAnnealingLRFactory(T_max=args.steps)),
            reward_scaler=d3rlpy.preprocessing.ReturnBasedRewardScaler(multiplier=1000.0),
        ).create(device="cpu:0")
    else:  # bcq, our sizes
        algo = d3rlpy.algos.BCQConfig(
            batch_size=100, actor_learning_rate=1e-3, critic_learning_rate=1e-3, imitator_learning_rate=1e-3,
            actor_encoder_factory=VectorEncoderFactory([400, 300]),
            critic_encoder_factory=VectorEncoderFactory([400, 300]),
            imitator_encoder_factory=VectorEncoderFactory([750, 750]),
            n_action_samples=10, lam=0.75, action_flexibility=0.05,
        ).create(device="cpu:0")
    env = gym.make(str(z["env_id"]))
    ref_min, ref_max = float(z["ref_min"]), float(z["ref_max"])
    evals, t0 = [], time.time()

    def evaluate(alg, _epoch, step):
        rets = []
        for ep in range(args.episodes):
            o, _ = env.reset(seed=10_000 * args.seed + 100 * len(evals) + ep)
            total, done = 0.0, False
            while not done:
                a = alg.predict(np.asarray(o, np.float32)[None])[0]
                o, r, term, trunc, _ = env.step(a)
                total += float(r)
                done = term or trunc
            rets.append(total)
        mean = float(np.mean(rets))
        evals.append({"step": int(step), "return": mean, "returns": rets,
                      "normalized_score": 100.0 * (mean - ref_min) / (ref_max - ref_min),
                      "wall_s": time.time() - t0})
        print(f"{args.algo} seed {args.seed} step {step}: {evals[-1]['normalized_score']:.1f}", flush=True)
        out = {"algo": args.algo, "peer": f"d3rlpy {d3rlpy.__version__}", "dataset": str(z["dataset"]),
               "seed": args.seed, "steps": args.steps, "threads": args.threads, "evals": evals}
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.out)

    algo.fit(ds, n_steps=args.steps, n_steps_per_epoch=args.eval_every, epoch_callback=evaluate,
             show_progress=False, save_interval=10 ** 9, experiment_name=f"peer_{args.algo}_{args.seed}",
             with_timestamp=True, logger_adapter=d3rlpy.logging.NoopAdapterFactory())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--dataset", required=True)
    d.add_argument("--out", required=True)
    t = sub.add_parser("train")
    t.add_argument("--algo", choices=("td3bc", "iql", "bcq"), required=True)
    t.add_argument("--data", required=True)
    t.add_argument("--steps", type=int, default=100_000)
    t.add_argument("--eval_every", type=int, default=5000)
    t.add_argument("--episodes", type=int, default=10)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--out", required=True)
    a = p.parse_args()
    dump(a) if a.cmd == "dump" else train(a)


if __name__ == "__main__":
    main()
