"""Re-evaluates the saved actors of run directories with many episodes, greedy and sampled.

A PPO actor is a softmax policy: training improves the return of actions *sampled* from it, and
its argmax (the greedy policy the trainer evaluates at the end) is a different policy that can
fail where the sampled one succeeds. This plays every member's compact actor for ``--episodes``
episodes both ways (same environment seeds) and prints, per method, the mean return over seeds and
its percentage of the dense baseline's.

Usage: python experiments/lunarlander/evaluate.py RUN_DIR [RUN_DIR ...] [--episodes N] [--reproduce CMD]
(run.sh calls it on its run directories and writes results_eval.md).
"""

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import jax
import numpy as np

from dspjax.envs import close_host_envs, config_vec_env, evaluate_policy
from dspjax.pruning import compact
from dspjax.train.run_dir import load_run, member_network, run_algo

sys.path.insert(0, str(Path(__file__).parents[1]))
from summarize import row_label  # noqa: E402  (experiments/summarize.py: the same row names)


def member_returns(run_dir, episodes: int, seed: int):
    """``[(method, seed, greedy returns, sampled returns)]`` of every member of a PPO run."""
    cfg, tree = load_run(run_dir)
    algo, config = run_algo(cfg)
    policies = {"greedy": algo.evaluation_policy("greedy", config),
                "sampled": algo.evaluation_policy("sample", config)}
    env = config_vec_env(config, episodes)
    key = jax.random.PRNGKey(seed)
    play = {name: jax.jit(lambda params, pol=pol: evaluate_policy(
        lambda _: env, lambda obs, k: pol(params, obs, k), key, episodes)) for name, pol in policies.items()}
    rows = []
    for m in cfg["members"]:
        params, masks, _ = member_network(tree, algo.policy_network, m["member"])
        small = compact(params, masks)
        rows.append((m["grid_point"].get("method", "dsp"), m["seed"],
                     np.asarray(play["greedy"](small)), np.asarray(play["sampled"](small))))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1, help="evaluation key (training used 0)")
    parser.add_argument("--reproduce", default=None, help="the command that made the runs")
    args = parser.parse_args()
    by_method = defaultdict(list)
    try:
        runs = {d: member_returns(d, args.episodes, args.seed) for d in args.run_dirs}
    finally:
        close_host_envs()
    methods = {d: {row[0] for row in rows} for d, rows in runs.items()}
    for run_dir, rows in runs.items():
        for method, seed, g, s in rows:
            by_method[row_label(method, run_dir, methods)].append((seed, g.mean(), s.mean()))
    print(f"{args.episodes} episodes per seed and policy, evaluation key {args.seed}; compact actors.\n")
    print("| method | seeds | greedy return per seed | greedy mean | % of dense | sampled return per seed "
          "| sampled mean | % of dense |")
    print("|---|---|---|---|---|---|---|---|")
    dense = by_method.get("dense")
    for method, rows in by_method.items():
        cells = [method, str(len(rows))]
        for col in (1, 2):
            values = np.array([r[col] for r in rows])
            ref = np.mean([r[col] for r in dense]) if dense else np.nan
            cells += [" / ".join(f"{v:.1f}" for v in values), f"{values.mean():.1f}",
                      f"{100 * values.mean() / ref:.1f} %" if dense else "–"]
        print("| " + " | ".join(cells) + " |")
    if args.reproduce:
        print(f"\nReproduce: `{args.reproduce}` (from the repository root, dspjax installed).")


if __name__ == "__main__":
    main()
