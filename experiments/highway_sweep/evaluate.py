"""Plays every member of the highway sweep (``run.py``) in denser traffic, and the best points on
highway-env itself.

1. The port: every member's greedy policy on ``jax:highway-fast-v0`` at ``vehicles_density`` 1, 1.5
   and 2, ``--episodes`` episodes each, all members on the same scenes (one key) -> ``eval_port.json``.
2. highway-env: the chosen DSP configurations (``best_points``: from the port at density 1, the one
   that removes the most weights while its IQM return stays ≥ 95 % of dense, and the one with the
   highest IQM return) and dense, every seed, on highway-env's own ``highway-fast-v0`` through
   the host bridge at the same densities, ``--real-episodes`` episodes each ->
   ``eval_highway_env.json``, written after every member (a stopped run goes on where it was).

Usage: python experiments/highway_sweep/evaluate.py [--episodes 100] [--real-episodes 20]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import jax
import numpy as np

from dspjax.envs import close_host_envs, config_vec_env, evaluate_policy, with_env_config, with_env_id
from dspjax.train.run_dir import load_run, member_network, run_algo
from dspjax.train.seed_stats import iqm_interval

HERE = Path(__file__).parent
RUN = HERE / "runs" / "sweep"
DENSITIES = (1.0, 1.5, 2.0)
REAL_ENV = "highway-fast-v0"


def configuration(member: dict) -> str:
    """A member's (``config.json``'s record) configuration without its seed: ``dsp τ=0.05 λ=0.0001``,
    ``dense``, ``random k=0.1``."""
    method, hp = member["grid_point"]["method"], member["hparams"]
    if method == "dsp":
        return f"dsp τ={hp['c_relative']:g} λ={hp['lam']:g}"
    if method == "random":
        return f"random k={hp['k_final']:g}"
    return method


def at_density(config, density: float):
    """``config`` with highway-env's ``vehicles_density`` set to ``density``."""
    return with_env_config(config, json.dumps({"vehicles_density": density}))


def evaluate_port(cfg, tree, episodes: int) -> dict:
    """{density: (members, episodes) returns} of every member on the port, one compiled program per
    density (members vmapped, the same scenes for all)."""
    algo, config = run_algo(cfg)
    greedy = algo.evaluation_policy("greedy", config)
    params = tuple(tree["params"][algo.policy_network])
    out = {}
    for density in DENSITIES:
        env = config_vec_env(at_density(config, density), episodes)

        @jax.jit
        @jax.vmap
        def play(member_params):
            return evaluate_policy(lambda _: env, lambda obs, k: greedy(member_params, obs, k),
                                   jax.random.PRNGKey(1), episodes)

        out[str(density)] = np.asarray(play(params)).tolist()
        print(f"port, density {density}: done", file=sys.stderr)
    return out


def best_points(cfg, port: dict, summary: dict) -> list[str]:
    """DSP configurations to check on highway-env: the most weights removed with an IQM return ≥ 95 %
    of dense (at density 1 in the port), and the highest IQM return."""
    by_config = defaultdict(list)
    removed = defaultdict(list)
    for m, returns, record in zip(cfg["members"], port["1.0"], summary["members"]):
        by_config[configuration(m)].append(float(np.mean(returns)))
        removed[configuration(m)].append(record[summary["policy_network"]]["weights_removed"])
    iqm = {c: iqm_interval(np.array(r))[0] for c, r in by_config.items()}
    dsp = [c for c in iqm if c.startswith("dsp")]
    kept = [c for c in dsp if iqm[c] >= 0.95 * iqm["dense"]]
    chosen = [max(dsp, key=lambda c: iqm[c])]
    if kept:
        chosen.insert(0, max(kept, key=lambda c: np.mean(removed[c])))
    return list(dict.fromkeys(chosen))


def evaluate_highway_env(cfg, tree, chosen: list[str], episodes: int, path: Path) -> dict:
    """Returns on highway-env of the dense members and those of the ``chosen`` configurations, saved
    to ``path`` after each member; members already there are skipped."""
    algo, config = run_algo(cfg)
    real = with_env_id(config, REAL_ENV)
    greedy = algo.evaluation_policy("greedy", config)
    done = json.loads(path.read_text()) if path.is_file() else {"chosen": chosen, "members": {}}
    wanted = [m for m in cfg["members"] if configuration(m) in chosen + ["dense"]]
    try:
        for density in DENSITIES:
            env = config_vec_env(at_density(real, density), episodes)
            play = jax.jit(lambda p, env=env: evaluate_policy(
                lambda _: env, lambda obs, k: greedy(p, obs, k), jax.random.PRNGKey(1), episodes))
            for m in wanted:
                key = f"{m['member']}@{density}"
                if key in done["members"]:
                    continue
                params, _, _ = member_network(tree, algo.policy_network, m["member"])
                done["members"][key] = np.asarray(play(params)).tolist()
                path.write_text(json.dumps(done))
                print(f"highway-env: member {m['member']} ({configuration(m)}, seed "
                      f"{m['seed']}) at density {density}: {np.mean(done['members'][key]):.1f}", file=sys.stderr)
    finally:
        close_host_envs()
    return done


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--real-episodes", type=int, default=20)
    parser.add_argument("--run", type=Path, default=RUN, help="the sweep's run directory")
    parser.add_argument("--out", type=Path, default=HERE, help="where the two JSON files go")
    args = parser.parse_args()
    cfg, tree = load_run(args.run)
    summary = json.loads((args.run / "summary.json").read_text())
    port_path = args.out / "eval_port.json"
    if not port_path.is_file():
        port = evaluate_port(cfg, tree, args.episodes)
        port_path.write_text(json.dumps({"episodes": args.episodes, "returns": port}))
    port = json.loads(port_path.read_text())["returns"]
    chosen = best_points(cfg, port, summary)
    print(f"best points: {', '.join(chosen)}", file=sys.stderr)
    evaluate_highway_env(cfg, tree, chosen, args.real_episodes, args.out / "eval_highway_env.json")


if __name__ == "__main__":
    main()
