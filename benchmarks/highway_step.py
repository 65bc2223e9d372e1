"""Environment steps per second of the pure-JAX highway port against highway-env and HighJax, side by
side in one run on CPU, for highway-fast-v0 and highway-v0:

- highway-env 1.12.1 stepped from Python in this process (1 env), and in 2 worker processes
  (gymnasium's ``AsyncVectorEnv``, 2 envs, one per process; its autoreset on);
- the port (float32) ``vmap``-ed over 1, 64, 256 and 4096 envs inside a jitted ``lax.scan``;
- HighJax (github.com/HumanCompatibleAI/HighJax, its source put on ``sys.path`` by ``--highjax``; not a
  dependency of dspjax) with the same lanes, vehicles, frames per step, episode length and ego
  spacing, stepped the same way through its ``step_env`` (no auto-reset, like the port's ``step``).

IDLE actions; the JAX envs are not reset (episodes run past their end, like highway-env's truncation
ignored). JAX rates exclude compilation and are the best of ``--repeats`` (fewer past ``--max-seconds``),
the port and HighJax timed in turns (port, HighJax, port, ...) so that load on a shared machine hits both alike; the
scan length is ``--env-steps`` divided by the number of envs, clipped to [``--min-steps``, 30]. Ratios are
between rates measured in the same run. Results go to ``--out`` (JSON).

HighJax source: ``git clone https://github.com/HumanCompatibleAI/HighJax /work/highjax-src`` (measured at
commit 1b3b4be, version 0.1.6; its wheel requires Python 3.14 but the source runs on 3.11 with this
project's jax/flax/chex/gymnasium).

Usage: taskset -c 0 python benchmarks/highway_step.py [--repeats 10] [--highjax /work/highjax-src]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time

import gymnasium as gym
import highway_env
import jax
import numpy as np

from dspjax.envs import highway as hw

IDLE = 1
SIZES = (1, 64, 256, 4096)


def machine():
    """CPU model, cores usable by this process / on the machine, jax and highway-env versions."""
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor())
    return (f"{model}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores usable, jax {jax.__version__} "
            f"({jax.devices()[0].platform}), highway-env {highway_env.__version__}, python {platform.python_version()}")


def highway_env_rate(env_id, steps):
    """highway-env in this process: env-steps/s over ``steps`` IDLE steps (reset on episode end)."""
    env = gym.make(env_id)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(IDLE)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def _make_highway_env(env_id):
    import highway_env  # noqa: F401  (registers the ids in a spawned worker)
    return gym.make(env_id)


def highway_env_async_rate(env_id, steps, workers=2):
    """highway-env in ``workers`` spawned processes (``AsyncVectorEnv``, one env each): env-steps/s."""
    envs = gym.vector.AsyncVectorEnv([functools.partial(_make_highway_env, env_id)] * workers, context="spawn")
    envs.reset(seed=0)
    actions = np.full(workers, IDLE)
    start = time.perf_counter()
    for _ in range(steps):
        envs.step(actions)
    rate = workers * steps / (time.perf_counter() - start)
    envs.close()
    return rate


def compiled_rollout(reset, step, num_envs, steps):
    """``run(i)``: ``step`` vmapped over ``num_envs`` inside a jitted ``lax.scan`` of ``steps`` steps
    from states made by ``reset`` (outside the timing), compiled ahead; ``run`` blocks until done."""
    states = jax.jit(jax.vmap(reset))(jax.random.split(jax.random.key(0), num_envs))

    def rollout(key, states):
        def body(s, _):
            reward, s = jax.vmap(lambda s: step(key, s))(s)
            return s, reward
        return jax.lax.scan(body, states, None, length=steps)[1]

    compiled = jax.jit(rollout).lower(jax.random.key(0), states).compile()
    return lambda i: compiled(jax.random.key(i), states).block_until_ready()


def interleaved_rates(rollouts, num_envs, steps, repeats, max_seconds):
    """Env-steps/s of each compiled rollout (``compiled_rollout``), timed in turns (A, B, A, B, ...)
    so that a noisy machine slows them alike; best of ``repeats`` turns (fewer once ``max_seconds``
    have been spent, at least one)."""
    best, spent = [float("inf")] * len(rollouts), 0.0
    for i in range(repeats):
        for k, run in enumerate(rollouts):
            start = time.perf_counter()
            run(i)
            elapsed = time.perf_counter() - start
            best[k], spent = min(best[k], elapsed), spent + elapsed
        if spent > max_seconds:
            break
    return [num_envs * steps / b for b in best]


def port(env_id):
    """(reset, step) of the port in float32: ``reset(key) -> state``, ``step(key, s) -> (reward, s)``."""
    params = hw.ENV_PARAMS[env_id]()

    def step(key, s):
        _, s, reward, *_ = hw.step(key, s, IDLE, params)
        return reward, s
    return (lambda key: hw.reset(key, params)[1]), step


def highjax(env_id):
    """(reset, step) of HighJax with highway-env's settings for ``env_id``: lanes, other vehicles,
    NPC-NPC collisions (off in the fast variant), frames per step, duration, ego spacing."""
    import highjax as hj
    fast = env_id == "highway-fast-v0"
    env = hj.HighJaxEnv(n_lanes=3 if fast else 4, n_npcs=20 if fast else 50, npc_npc_collisions=not fast)
    env.n_sub_ts_per_t = 5 if fast else 15
    params = hj.EnvParams(duration=30.0 if fast else 40.0, seconds_per_sub_t=1 / env.n_sub_ts_per_t,
                          ego_spacing=1.5 if fast else 2.0)

    def step(key, s):
        _, s, reward, *_ = env.step_env(key, s, IDLE, params)
        return reward, s
    return (lambda key: env.reset(key, params)[1]), step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="numbers of parallel JAX envs")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=20.0, help="stop repeating a setting after this")
    parser.add_argument("--env-steps", type=int, default=4096, help="env-steps per timed JAX run")
    parser.add_argument("--min-steps", type=int, default=1, help="shortest scan (for 4096 envs)")
    parser.add_argument("--highway-env-steps", type=int, nargs=2, default=(60, 10), metavar=("FAST", "V0"))
    parser.add_argument("--highjax", default=os.environ.get("HIGHJAX_SRC", "/work/highjax-src"),
                        help="HighJax source directory, holding highjax/ (skipped if absent or '')")
    parser.add_argument("--out", default="benchmarks/results/highway_step_cpu2.json")
    args = parser.parse_args()
    have_highjax = bool(args.highjax) and os.path.isdir(os.path.join(args.highjax, "highjax"))
    if have_highjax:
        sys.path.insert(0, args.highjax)
    print(machine())
    rows, ratios = [], []
    for env_id, he_steps in zip(("highway-fast-v0", "highway-v0"), args.highway_env_steps):
        def add(implementation, num_envs, steps, rate, workers=1):
            rows.append({"env": env_id, "implementation": implementation, "num_envs": num_envs,
                         "workers": workers, "steps": steps, "env_steps_per_s": rate})
            print(f"{env_id:16s} {implementation:24s} x{num_envs:<5d} {rate:10.1f} env-steps/s", flush=True)
            return rate
        single = add("highway-env", 1, he_steps, highway_env_rate(env_id, he_steps))
        pair = add("highway-env AsyncVectorEnv", 2, he_steps, highway_env_async_rate(env_id, he_steps), workers=2)
        for num_envs in args.sizes:
            steps = int(np.clip(args.env_steps // num_envs, args.min_steps, 30))
            rollouts = [compiled_rollout(*port(env_id), num_envs, steps)]
            if have_highjax:
                rollouts.append(compiled_rollout(*highjax(env_id), num_envs, steps))
            rates = interleaved_rates(rollouts, num_envs, steps, args.repeats, args.max_seconds)
            mine = add("dspjax port f32", num_envs, steps, rates[0])
            theirs = add("HighJax f32", num_envs, steps, rates[1]) if have_highjax else None
            ratios.append({"env": env_id, "num_envs": num_envs, "port_over_highway_env": mine / single,
                           "port_over_highway_env_2_workers": mine / pair,
                           "port_over_highjax": None if theirs is None else mine / theirs})
    result = {"machine": machine(), "command": " ".join(sys.argv),
              "highjax": args.highjax if have_highjax else None, "rows": rows, "ratios": ratios}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print("ratios (port / other, same run):")
    for r in ratios:
        hj_ratio = "n/a" if r["port_over_highjax"] is None else f"{r['port_over_highjax']:.2f}"
        print(f"{r['env']:16s} x{r['num_envs']:<5d} vs highway-env {r['port_over_highway_env']:9.1f}  "
              f"vs 2 workers {r['port_over_highway_env_2_workers']:9.1f}  vs HighJax {hj_ratio}")


if __name__ == "__main__":
    main()
