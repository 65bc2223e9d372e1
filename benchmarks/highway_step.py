"""Environment steps per second of the pure-JAX highway port against highway-env, side by side in one
process on CPU: highway-env's single env stepped from Python; the port's jitted ``step`` on 1 env and
``vmap``-ed over 64 envs, each inside a jitted ``lax.scan`` of ``--steps`` steps (compiled and warmed up
first, best of ``--repeats``), in float32 (training) and float64 (exact) modes. IDLE actions, no resets
(the port's episodes run past their end; highway-env's truncation is ignored).

Usage: taskset -c 1 python benchmarks/highway_step.py [--steps 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import highway_env  # noqa: F401
import jax

from dspjax.envs import highway as hw


def highway_env_rate(env_id, steps):
    env = gym.make(env_id)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(1)
    return steps / (time.perf_counter() - start)


def jax_rate(params, num_envs, steps, repeats):
    def rollout(key):
        keys = jax.random.split(key, num_envs)
        _, state = jax.vmap(hw.reset, in_axes=(0, None))(keys, params)

        def body(s, _):
            out = jax.vmap(hw.step, in_axes=(None, 0, None, None))(key, s, 1, params)
            return out[1], out[2]
        return jax.lax.scan(body, state, None, length=steps)[1]
    run = jax.jit(rollout)
    run(jax.random.key(0)).block_until_ready()
    best = min(_timed(run, jax.random.key(i)) for i in range(repeats))
    return num_envs * steps / best


def _timed(run, key):
    start = time.perf_counter()
    run(key).block_until_ready()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}; env-steps/s")
    columns = ("highway-env", "jax f32 x1", "jax f32 x64", "jax f64 x1", "jax f64 x64")
    print(f"{'env':16s} " + " ".join(f"{c:>11s}" for c in columns))
    for env_id, make in hw.ENV_PARAMS.items():
        params = make()
        rates = [highway_env_rate(env_id, args.steps)]
        for x64 in (False, True):
            with jax.enable_x64(x64):
                rates += [jax_rate(params, n, args.steps, args.repeats) for n in (1, 64)]
        print(f"{env_id:16s} " + " ".join(f"{r:11.0f}" for r in rates), flush=True)


if __name__ == "__main__":
    main()
