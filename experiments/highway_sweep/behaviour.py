"""What the highway sweep's greedy policies do: per configuration, the share of each meta-action
taken and the share of episodes that end in a crash, in the port at every density of
``evaluate.py`` (the same episodes and scenes as ``eval_port.json``). It tells a policy that drives
from one that waits in a lane at the lowest speed, which highway-fast-v0's reward pays nearly as
well (0.1 per step for the right lane, nothing for speed: 30 steps of it sum to 22).

Usage: python experiments/highway_sweep/behaviour.py  -> behaviour.json (read by table.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dspjax.envs import config_vec_env
from dspjax.envs.highway import NUM_ACTIONS
from dspjax.train.run_dir import load_run, run_algo

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from evaluate import DENSITIES, RUN, at_density, configuration  # noqa: E402

ACTION_NAMES = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")


def rollout_stats(env, policy, key, episodes: int):
    """(action counts (NUM_ACTIONS,), crashed (episodes,)) over the first episode of each of
    ``episodes`` envs, with ``evaluate_policy``'s keys (so the same scenes as its returns)."""
    steps = env.max_episode_steps
    key, reset_key = jax.random.split(key)
    step_keys = jax.random.split(key, steps)
    obs, state = env.reset(reset_key)

    def body(carry, step_key):
        obs, state, running, counts, crashed = carry
        action = policy(obs)
        obs, state, _, terminated, truncated, _ = env.step(step_key, state, action)
        counts = counts + jnp.sum(jax.nn.one_hot(action, NUM_ACTIONS) * running[:, None], axis=0)
        crashed = crashed | (running & terminated)
        return (obs, state, running & ~(terminated | truncated), counts, crashed), None

    init = (obs, state, jnp.ones(episodes, bool), jnp.zeros(NUM_ACTIONS), jnp.zeros(episodes, bool))
    (_, _, _, counts, crashed), _ = jax.lax.scan(body, init, step_keys)
    return counts, crashed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--run", type=Path, default=RUN)
    parser.add_argument("--out", type=Path, default=HERE / "behaviour.json")
    args = parser.parse_args()
    cfg, tree = load_run(args.run)
    algo, config = run_algo(cfg)
    greedy = algo.evaluation_policy("greedy", config)
    params = tuple(tree["params"][algo.policy_network])
    out = {"episodes": args.episodes, "actions": list(ACTION_NAMES), "densities": {}}
    for density in DENSITIES:
        env = config_vec_env(at_density(config, density), args.episodes)
        play = jax.jit(jax.vmap(lambda p: rollout_stats(env, lambda obs: greedy(p, obs, None),
                                                        jax.random.PRNGKey(1), args.episodes)))
        counts, crashed = (np.asarray(x) for x in play(params))
        per = defaultdict(lambda: {"action_counts": np.zeros(NUM_ACTIONS), "crashed": []})
        for m, c, k in zip(cfg["members"], counts, crashed):
            per[configuration(m)]["action_counts"] += c
            per[configuration(m)]["crashed"].append(float(k.mean()))
        out["densities"][str(density)] = {
            name: {"action_share": (v["action_counts"] / v["action_counts"].sum()).tolist(),
                   "crash_rate_per_seed": v["crashed"]} for name, v in per.items()}
        print(f"density {density}: done", file=sys.stderr)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
