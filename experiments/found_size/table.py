"""The found-size table (Markdown on stdout) from ``run.py``'s run directories.

Per task and method: the policy network's size per layer (per seed), neurons and weights removed,
the return as % of the dense return as an interquartile mean with a 95 % stratified-bootstrap
interval (rliable, 2,000 resamples), and what stopped each layer's pruning. % of dense is
``(R − R0) / (R_dense − R0)``: R a seed's greedy return over its evaluation episodes, R_dense the
mean of the dense seeds, R0 the task's floor (``FLOORS``: the return of a policy that does nothing
useful), so that tasks with negative returns (Acrobot) read the right way round.

Usage: python experiments/found_size/table.py [--tasks cartpole,acrobot] [--machine TEXT]
           > experiments/found_size/results.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dspjax.envs.highway_vec_env import JAX_PREFIX
from dspjax.train.seed_stats import iqm_interval

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: the shared runner
from phases import missing_baselines  # noqa: E402
from phases import records as phase_records  # noqa: E402

RUNS = Path(__file__).parent / "runs"
METHODS = ("dense", "dsp", "random", "small")
# R0 per environment: CartPole and highway rewards are >= 0; Acrobot's -500 never swings up (every
# step -1); LunarLander's -200 is about what a uniformly random policy scores.
# A ``jax:`` id (dspjax's highway port) has its highway-env twin's floor (``return_floor``).
FLOORS = {"CartPole-v1": 0.0, "Acrobot-v1": -500.0, "LunarLander-v3": -200.0, "highway-fast-v0": 0.0}


def return_floor(env_id: str) -> float:
    """R0 of ``env_id``."""
    return FLOORS[env_id.removeprefix(JAX_PREFIX)]


def records(task: str) -> dict[str, list[tuple[dict, dict]]]:
    """``method -> [(summary, member record), ...]`` over every run directory of ``task``."""
    return phase_records(RUNS / task)


def _shifted(name: str, floor: float) -> str:
    """``R − R0`` written out, e.g. ``R`` for R0 = 0 and ``(R + 500)`` for R0 = −500."""
    if floor == 0:
        return name
    return f"({name} {'+' if floor < 0 else '−'} {abs(floor):g})"


def task_table(task: str) -> list[str]:
    by_method = records(task)
    if "dense" not in by_method:
        return [f"## {task}: not run yet\n"]
    summary = by_method["dense"][0][0]
    policy = summary["policy_network"]
    dense_mean = np.mean([r["final_return"] for _, r in by_method["dense"]])
    floor = return_floor(summary["env_id"])
    dense_record = by_method["dense"][0][1][policy]
    dense_hidden, dense_params = sum(dense_record["alive_per_layer"]), dense_record["dense_params"]
    lines = [f"## {summary['env_id']} ({summary['algo'].upper()}, {summary['total_timesteps']:,} steps)\n",
             f"Dense return, mean over {len(by_method['dense'])} seeds: {dense_mean:.1f}; % of dense "
             f"is {_shifted('R', floor)} / {_shifted('R_dense', floor)}.\n",
             f"| method | seeds | {policy} size per seed | neurons removed | weights removed | "
             "return, % of dense: IQM [95 % CI] | per seed | last training episodes, % of dense, per seed "
             "| stopped by |",
             "|---|---|---|---|---|---|---|---|---|"]
    dense_training = np.mean([r["train_return_last"] for _, r in by_method["dense"]])
    for method in METHODS:
        rows = sorted(by_method.get(method, []), key=lambda sr: sr[1]["seed"])
        if not rows:
            continue
        pct = np.array([100.0 * (r["final_return"] - floor) / (dense_mean - floor) for _, r in rows])
        iqm, lo, hi = iqm_interval(pct)
        sizes = "; ".join("-".join(map(str, r[policy]["alive_per_layer"])) for _, r in rows)
        if method == "small":  # a dense network of the found size: removed relative to the big one
            neurons = np.mean([1 - sum(r[policy]["alive_per_layer"]) / dense_hidden for _, r in rows])
            weights = np.mean([1 - r[policy]["dense_params"] / dense_params for _, r in rows])
        else:
            neurons = np.mean([r[policy]["neurons_removed"] for _, r in rows])
            weights = np.mean([r[policy]["weights_removed"] for _, r in rows])
        stops = "; ".join("/".join(r[policy].get("stopped_by", ["?"])) for _, r in rows) \
            if method == "dsp" else ""
        training = ", ".join(f"{100.0 * (r['train_return_last'] - floor) / (dense_training - floor):.0f}"
                             for _, r in rows)
        lines.append(f"| {method} | {len(rows)} | {sizes} | {100 * neurons:.1f} % | {100 * weights:.2f} % | "
                     f"{iqm:.1f} [{lo:.1f}, {hi:.1f}] | {', '.join(f'{p:.0f}' for p in pct)} | {training} | "
                     f"{stops} |")
    return lines + missing_baselines(by_method) + [""]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cartpole,acrobot")
    parser.add_argument("--machine", default=None, help="the machine that made the runs, printed on top")
    args = parser.parse_args()
    print("# Does the default threshold rule find the size?\n")
    print("DSP's defaults against dense, random structured pruning to DSP's neuron count, and a "
          "dense network of DSP's size trained from scratch (`small`; PPO: its actor at that size "
          "beside a full-width critic). PPO: dspjax 0.3's `DSPHParams` (`relative` threshold, "
          "c_relative 0.05, λ 3.2e-3 per iteration, Taylor importance, window 0.1–0.4 of training, the "
          "penalty off from 0.4) with the critic dense (`prune_critic` off); DQN: `DQN_DSP` (the same "
          "rule and importance; λ 1e-4, EMA rate 0.05, window 0.2–0.4, a pruning step every 125 "
          "iterations, the penalty to the end). The return is the greedy policy's over the final "
          "evaluation episodes; the last training episodes' is the policy as trained (PPO: sampled "
          "from the actor; DQN: ε-greedy). `jax:highway-fast-v0` is dspjax's step-exact JAX port of "
          "highway-env (docs/highway.md). The runs of dspjax 0.1's PPO defaults (λ per optimiser step, "
          "critic pruned, penalty to the end) are in `runs/<task>_critic_pruned`, those of dspjax 0.2's "
          "(window and penalty to 0.6) in `runs/<task>_window06`; `lambda_study.md` compares them. From "
          f"`python experiments/found_size/run.py --tasks {args.tasks}` and "
          f"`python experiments/found_size/table.py --tasks {args.tasks}`.\n")
    if args.machine:
        print(f"Machine: {args.machine}.\n")
    for task in args.tasks.split(","):
        print("\n".join(task_table(task)))


if __name__ == "__main__":
    main()
