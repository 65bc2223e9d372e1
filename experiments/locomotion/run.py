"""DSP on Hopper and Walker2d: PPO and SAC, MuJoCo through the bridge and brax in the compiled loop.

For each table (environment x agent x simulator), the two phases of ``experiments/phases.py``:
``dense`` and ``dsp``, then ``random`` structured pruning to DSP's neuron count and ``small``, a
dense actor of DSP's size trained from scratch beside full-width critics, ≥ 5 seeds each, every
row at the same budget. DSP's hyperparameters are the agent's defaults for box actions (PPO:
``PPO_BOX``'s; SAC: ``SAC_DSP``); the agents' own are the usual MuJoCo ones (PPO: its box defaults,
CleanRL's ``ppo_continuous_action`` at 256-256; SAC: Haarnoja et al.'s).

Run directories go to ``experiments/<env>/runs/<agent>_<simulator>_<steps>/<phase>``, one per
budget, so a table is never a mix of budgets; ``--minutes`` stops training at the next checkpoint
after that many minutes, and running the same command again goes on from there.

Usage: python experiments/locomotion/run.py --tables hopper_ppo_mujoco[,...] [--steps 1000000]
           [--seeds 5] [--minutes M]
       python experiments/locomotion/table.py --env hopper > experiments/hopper/results.md
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from dspjax.agents.ppo import BOX_CONFIG, PPO_BOX, PPOConfig
from dspjax.agents.sac import SACConfig, SACHParams
from dspjax.train.population import TrainingStopped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: the shared runner
from phases import run_task  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parents[1]
ENVS = {"hopper": {"mujoco": "Hopper-v5", "brax": "brax:hopper"},
        "walker2d": {"mujoco": "Walker2d-v5", "brax": "brax:walker2d"}}

# PPO's defaults for box actions (CleanRL's ppo_continuous_action: 8 envs x 256 steps, 10 epochs of
# 32 minibatches, lr 3e-4 annealed, no entropy bonus, observation and reward normalization), with
# dspjax's 256-256 tanh networks.
PPO = PPOConfig(**BOX_CONFIG)
# SAC (Haarnoja et al. 2018): one environment, one gradient step per step, batch 256, 256-256 ReLU,
# a replay buffer holding the whole run, 5,000 steps before learning.
SAC = SACConfig(num_envs=1, batch_size=256, learning_starts=5_000, eval_episodes=10)


def table(name: str, steps: int):
    """``(runs directory, (algo, config, hyperparameters))`` of table ``<env>_<agent>_<simulator>``."""
    env, algo, simulator = name.split("_")
    env_id = ENVS[env][simulator]
    if algo == "ppo":
        config, hparams = dataclasses.replace(PPO, env_id=env_id, total_timesteps=steps), PPO_BOX
    else:
        config = dataclasses.replace(SAC, env_id=env_id, total_timesteps=steps,
                                     buffer_size=min(steps, 1_000_000))
        hparams = SACHParams()
    runs = EXPERIMENTS / env / "runs" / f"{algo}_{simulator}_{steps // 1000}k"
    return runs, (algo, config, hparams)


def table_names() -> list[str]:
    return [f"{env}_{algo}_{sim}" for env in ENVS for algo in ("ppo", "sac") for sim in ("mujoco", "brax")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", required=True, help=f"comma-separated, of {', '.join(table_names())}")
    parser.add_argument("--steps", type=int, default=1_000_000, help="environment steps per member")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop at the next checkpoint after this many minutes (run again to go on)")
    args = parser.parse_args()
    names = args.tables.split(",")
    unknown = [n for n in names if n not in table_names()]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; known: {', '.join(table_names())}")
    deadline = None if args.minutes is None else time.time() + 60 * args.minutes
    for name in names:
        runs, task = table(name, args.steps)
        command = (f"python experiments/locomotion/run.py --tables {name} --steps {args.steps} "
                   f"--seeds {args.seeds}")
        try:
            run_task(runs, task, args.seeds, command, deadline)
        except TrainingStopped:
            print(f"{name}: stopped after {args.minutes} minutes; run the same command to go on")
            return
        print(f"{name}: done ({runs})")


if __name__ == "__main__":
    main()
