"""What the host bridge costs: a gymnasium environment stepped inside the jitted loop against the
same environments stepped directly from Python, side by side in this one process.

For each environment and worker count it times ``steps`` batched steps of ``num_envs`` environments
under a trivial policy (a fixed, pre-drawn action sequence), three ways, interleaved and repeated
(the best of ``--repeats`` counts):

- ``gymnasium``: gymnasium's own ``AsyncVectorEnv`` (one worker process per environment, so it is
  measured where ``num_envs == workers``) stepped from a Python loop;
- ``pool``: dspjax's ``HostEnvPool`` with the same environments and workers, from a Python loop;
- ``bridge``: ``HostVecEnv`` (that pool behind ``jax.pure_callback``) in a jitted ``lax.scan``,
  compiled and warmed up first.

Reported: seconds per environment step; ``overhead`` = bridge ÷ gymnasium (the issue's figure) and
bridge ÷ pool (the callback alone); ``speed-up 1→2 workers`` of the bridge at a fixed batch.

Usage: python benchmarks/bridge_overhead.py [--out FILE] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import gymnasium as gym
import highway_env  # noqa: F401  (registers highway-fast-v0)
import jax
import jax.numpy as jnp
import numpy as np

from dspjax.envs import close_host_envs, make_vec_env
from dspjax.envs.host_pool import HostEnvPool

CASES = [  # env id, steps per timing (a few seconds each on 2 cores)
    ("CartPole-v1", 2000),
    ("highway-fast-v0", 60),
]


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"jax {jax.__version__} ({jax.devices()[0].platform}), gymnasium {gym.__version__}")


def time_gymnasium(env_id, num_envs, actions, seed):
    vec = gym.vector.AsyncVectorEnv([lambda: gym.make(env_id)] * num_envs,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
                                    context="spawn")  # forking a process that runs JAX is unsafe
    vec.reset(seed=[seed + i for i in range(num_envs)])
    t0 = time.perf_counter()
    for a in actions:
        vec.step(a)
    seconds = time.perf_counter() - t0
    vec.close()
    return seconds


def time_pool(env_id, num_envs, workers, actions, seed):
    with HostEnvPool(env_id, num_envs, None, workers) as pool:
        pool.reset([seed + i for i in range(num_envs)])
        t0 = time.perf_counter()
        for a in actions:
            pool.step(a)
        return time.perf_counter() - t0


def bridged_program(env_id, num_envs, workers):
    env = make_vec_env(f"gymnasium:{env_id}" if env_id == "CartPole-v1" else env_id, num_envs,
                       num_workers=workers)

    @jax.jit
    def run(key, actions):
        _, state = env.reset(key)

        def body(state, a):
            _, state, reward, *_ = env.step(key, state, a)
            return state, reward
        return jax.lax.scan(body, state, actions)[1]
    return run


def time_bridge(run, actions, seed):
    key = jax.random.PRNGKey(seed)
    jax.block_until_ready(run(key, actions[:1]))  # pool start (reset) outside the timing
    t0 = time.perf_counter()
    jax.block_until_ready(run(key, actions))
    return time.perf_counter() - t0


def measure(env_id, steps, num_envs, workers, repeats):
    rng = np.random.default_rng(0)
    n_actions = 2 if env_id == "CartPole-v1" else 5
    actions = rng.integers(0, n_actions, (steps, num_envs)).astype(np.int32)
    run = bridged_program(env_id, num_envs, workers)
    jax.block_until_ready(run(jax.random.PRNGKey(0), jnp.asarray(actions)))  # compile + warm up
    best = {"gymnasium": np.inf, "pool": np.inf, "bridge": np.inf}
    for r in range(repeats):
        if num_envs == workers:
            best["gymnasium"] = min(best["gymnasium"], time_gymnasium(env_id, num_envs, actions, r))
        best["pool"] = min(best["pool"], time_pool(env_id, num_envs, workers, actions, r))
        best["bridge"] = min(best["bridge"], time_bridge(run, jnp.asarray(actions), r))
    close_host_envs()
    per_step = {k: (v / (steps * num_envs) if np.isfinite(v) else None) for k, v in best.items()}
    row = {"env": env_id, "num_envs": num_envs, "workers": workers, "steps": steps,
           **{f"{k}_s_per_env_step": v for k, v in per_step.items()},
           "overhead_vs_gymnasium": (per_step["bridge"] / per_step["gymnasium"]
                                     if per_step["gymnasium"] else None),
           "overhead_vs_pool": per_step["bridge"] / per_step["pool"]}
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4, help="environments for the 1→2 workers row")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = []
    for env_id, steps in CASES:
        for num_envs, workers in ((1, 1), (2, 2), (args.batch, 1), (args.batch, 2)):
            rows.append(measure(env_id, steps, num_envs, workers, args.repeats))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nmachine: {machine()}\n")
    print("| env | envs | workers | gymnasium AsyncVectorEnv (µs/env-step) | pool from Python | "
          "bridge in jit | bridge ÷ gymnasium | bridge ÷ pool |")
    print("|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "–" if v is None else f"{1e6 * v:.0f}"  # noqa: E731
    for r in rows:
        ratio = "–" if r["overhead_vs_gymnasium"] is None else f"{r['overhead_vs_gymnasium']:.2f}"
        print(f"| {r['env']} | {r['num_envs']} | {r['workers']} | {fmt(r['gymnasium_s_per_env_step'])} "
              f"| {fmt(r['pool_s_per_env_step'])} | {fmt(r['bridge_s_per_env_step'])} | {ratio} "
              f"| {r['overhead_vs_pool']:.2f} |")
    print("\nspeed-up of the bridge from 1 to 2 workers "
          f"({args.batch} environments, time per env step, 1 worker ÷ 2 workers):")
    for env_id, _ in CASES:
        one, two = (r["bridge_s_per_env_step"] for r in rows
                    if r["env"] == env_id and r["num_envs"] == args.batch)
        print(f"  {env_id}: {one / two:.2f}x")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
