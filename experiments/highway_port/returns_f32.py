"""Issue 12's float32 check: the distribution of returns of a fixed policy in the JAX highway port
(float32, its own resets, vmapped) against highway-env 1.12.1 itself (``gymnasium.make(env_id)``,
seeds 0..N-1), over N episodes each.

Policies (fixed, observation-based so they react to the scene; the same function on numpy and jax):
- ``idle``: always IDLE;
- ``rule``: FASTER unless a vehicle is less than 30 m ahead within 2 m laterally (in the ego's lane),
  then SLOWER.

Per implementation and policy: mean return with a 95 % percentile-bootstrap interval (10,000
resamples), mean episode length and crash rate (terminated) with the same intervals. The check
passes when the port's mean return lies in highway-env's interval; the reverse is reported too.

Each run writes ``returns_f32_<env>.json`` next to this file and rebuilds ``returns_f32.md`` from all
of them. Usage:
  taskset -c 0 python experiments/highway_port/returns_f32.py --env highway-fast-v0 --episodes 200
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time

import gymnasium as gym
import highway_env  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np

from dspjax.envs import highway as hw

HERE = os.path.dirname(os.path.abspath(__file__))
FASTER, IDLE, SLOWER = 3, 1, 4
CLOSE_AHEAD_M, SAME_LANE_M, X_RANGE = 30.0, 2.0, 200.0


def idle_policy(obs, lanes_count, xp=np):
    """Always IDLE."""
    return xp.asarray(IDLE)


def rule_policy(obs, lanes_count, xp=np):
    """FASTER unless another vehicle (rows 1..4, relative, normalised) is 0 < dx < 30 m ahead with
    |dy| < 2 m, then SLOWER."""
    present, dx, dy = obs[1:, 0] > 0.5, obs[1:, 1] * X_RANGE, obs[1:, 2] * 4 * lanes_count
    close = present & (dx > 0) & (dx < CLOSE_AHEAD_M) & (xp.abs(dy) < SAME_LANE_M)
    return xp.where(xp.any(close), SLOWER, FASTER)


POLICIES = {"idle": idle_policy, "rule": rule_policy}


def highway_env_episodes(env_id, policy, episodes):
    """(returns, lengths, crashed) of highway-env episodes with seeds 0..episodes-1."""
    env = gym.make(env_id)
    lanes = env.unwrapped.config["lanes_count"]
    out = []
    for seed in range(episodes):
        obs, _ = env.reset(seed=seed)
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(policy(obs, lanes)))
            total, length, done = total + reward, length + 1, terminated or truncated
        out.append((total, length, terminated))
    return tuple(np.array(column) for column in zip(*out))


def port_episodes(env_id, policy, episodes, seed=0):
    """(returns, lengths, crashed) of the port's float32 episodes from its own resets, vmapped."""
    params = hw.ENV_PARAMS[env_id]()

    def episode(key):
        obs, state = hw.reset(key, params)

        def body(carry, _):
            obs, state, total, length, done, crashed = carry
            obs, state, reward, terminated, truncated, _ = hw.step(key, state, policy(obs, params.lanes_count, jnp),
                                                                   params)
            live = ~done
            return (obs, state, total + jnp.where(live, reward, 0.0), length + live, done | terminated | truncated,
                    crashed | (live & terminated)), None
        zero = jnp.zeros((), jnp.float32)
        init = (obs, state, zero, jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.zeros((), bool))
        carry, _ = jax.lax.scan(body, init, None, length=params.max_episode_steps)
        return carry[2], carry[3], carry[5]

    keys = jax.random.split(jax.random.key(seed), episodes)
    return tuple(np.asarray(x) for x in jax.jit(jax.vmap(episode))(keys))


def bootstrap_mean(values, resamples=10_000, seed=0):
    """Mean and its 95 % percentile-bootstrap interval."""
    values = np.asarray(values, float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(1)
    return float(values.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def summary(returns, lengths, crashed):
    return {"episodes": len(returns), "return": bootstrap_mean(returns), "length": bootstrap_mean(lengths),
            "crash_rate": bootstrap_mean(crashed)}


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor())
    return f"{model}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores usable, jax {jax.__version__}"


def within(x, interval):
    return interval[1] <= x <= interval[2]


def write_markdown(path):
    """``returns_f32.md`` from every ``returns_f32_<env>.json`` present."""
    lines = ["# Float32 port vs highway-env: distribution of returns of fixed policies (issue 12)", "",
             "Made by `experiments/highway_port/returns_f32.py` (see its docstring). Intervals: 95 % "
             "percentile bootstrap of the mean (10,000 resamples). highway-env: seeds 0..N-1; port: float32, "
             "its own `jax.random` resets (key 0 split N ways). Check: the port's mean return lies in "
             "highway-env's interval (and the reverse, reported too).", ""]
    for result_path in sorted(glob.glob(os.path.join(HERE, "returns_f32_*.json"))):
        result = json.load(open(result_path))
        lines += [f"## {result['env']}", "", f"Command: `{result['command']}`  ", f"Machine: {result['machine']}  ",
                  f"Wall time: highway-env {result['seconds']['highway-env']:.0f} s, port "
                  f"{result['seconds']['port']:.0f} s (incl. compile)", "",
                  "| policy | implementation | episodes | mean return [95 %] | mean length [95 %] "
                  "| crash rate [95 %] |", "|---|---|---|---|---|---|"]
        for policy, rows in result["policies"].items():
            for name, row in rows.items():
                cells = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in (row["return"], row["length"],
                                                                          row["crash_rate"])]
                lines.append(f"| {policy} | {name} | {row['episodes']} | " + " | ".join(cells) + " |")
        lines += ["", "| policy | port mean in highway-env's interval | highway-env mean in port's interval |",
                  "|---|---|---|"]
        for policy, rows in result["policies"].items():
            port, ref = rows["port f32"], rows["highway-env"]
            lines.append(f"| {policy} | {'pass' if within(port['return'][0], ref['return']) else 'FAIL'} "
                         f"| {'pass' if within(ref['return'][0], port['return']) else 'FAIL'} |")
        episodes = min(row["episodes"] for rows in result["policies"].values() for row in rows.values())
        if episodes < 200:
            lines += ["", f"Only {episodes} episodes per policy (issue 12 asks for >= 200): indicative, not the check."]
        lines.append("")
    open(path, "w").write("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="highway-fast-v0", choices=sorted(hw.ENV_PARAMS))
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    args = parser.parse_args()
    result = {"env": args.env, "command": "python " + " ".join(sys.argv[:1] + sys.argv[1:]), "machine": machine(),
              "policies": {}, "seconds": {"highway-env": 0.0, "port": 0.0}}
    for name in args.policies:
        start = time.perf_counter()
        port = summary(*port_episodes(args.env, POLICIES[name], args.episodes))
        result["seconds"]["port"] += time.perf_counter() - start
        start = time.perf_counter()
        ref = summary(*highway_env_episodes(args.env, POLICIES[name], args.episodes))
        result["seconds"]["highway-env"] += time.perf_counter() - start
        result["policies"][name] = {"highway-env": ref, "port f32": port}
        print(name, json.dumps(result["policies"][name]), flush=True)
    json.dump(result, open(os.path.join(HERE, f"returns_f32_{args.env}.json"), "w"), indent=2)
    write_markdown(os.path.join(HERE, "returns_f32.md"))


if __name__ == "__main__":
    main()
