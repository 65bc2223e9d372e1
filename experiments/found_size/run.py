"""Does the default threshold rule find the size? DSP's defaults on several tasks, ≥ 5 seeds.

For each task, two phases, each one population in one compiled program:

1. ``dense`` and ``dsp`` (every DSP hyperparameter at its default; only the agent's own, e.g.
   PPO's γ on LunarLander, are the task's): what size does DSP end at, and at what return?
2. at the size DSP found (per seed: the alive neurons of each actor / Q layer), two baselines of
   METHOD.md §7: ``random`` structured pruning to the same neurons per layer (random scores, the
   ``schedule`` threshold), and ``small`` — a dense network of that size trained from scratch
   (PPO: the actor at that size beside a full-width critic, as DSP's critic is not pruned).

The runs of dspjax 0.1's PPO defaults (λ per optimiser step, the critic pruned, the penalty to the
end of training) are kept in ``runs/<task>_critic_pruned``, those of 0.2's (window and penalty to
0.6 of training) in ``runs/<task>_window06`` (``lambda_study.py`` reads both). ``highway_jax``'s
runs are 0.1's: DQN's defaults did not change since.

Run directories go to ``runs/<task>/<phase>``; the phases run, resume and are skipped when done as
``experiments/phases.py`` says. ``table.py`` turns them into ``results.md``.

Usage: python experiments/found_size/run.py [--tasks cartpole,acrobot] [--seeds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from dspjax.agents.dqn import DQNConfig, DQNHParams
from dspjax.agents.ppo import PPOConfig, PPOHParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: the shared runner
from phases import run_task  # noqa: E402

RUNS = Path(__file__).parent / "runs"

# highway-env's own DQN example (replay 15k, batch 32, γ 0.8, lr 5e-4, target copied every 50
# steps, ε over 70 % of training), one environment per member, 15k steps, hidden 256-256.
HIGHWAY_DQN = DQNConfig(env_id="highway-fast-v0", env_workers=2, num_envs=1, total_timesteps=15_000,
                        buffer_size=15_000, learning_starts=200, batch_size=32, target_update_every=50,
                        hidden_sizes=(256, 256), eval_episodes=10)
HIGHWAY_HPARAMS = DQNHParams(lr=5e-4, gamma=0.8, eps_fraction=0.7, lr_decay=0.0, tau=1.0)

# The agent's own settings per task; DSP's stay at their defaults everywhere.
TASKS = {
    "cartpole": ("ppo", PPOConfig(env_id="CartPole-v1", eval_episodes=20), PPOHParams()),
    "acrobot": ("ppo", PPOConfig(env_id="Acrobot-v1", eval_episodes=20), PPOHParams()),
    "lunarlander": ("ppo", PPOConfig(env_id="LunarLander-v3", total_timesteps=2_000_000, num_envs=8,
                                     num_steps=256, num_minibatches=32, eval_episodes=20),
                    PPOHParams(gamma=0.999, gae_lambda=0.98, lr=3e-4)),
    "highway": ("dqn", HIGHWAY_DQN, HIGHWAY_HPARAMS),
    # The same task in dspjax's step-exact JAX port of highway-env (docs/highway.md): no host
    # callback (on 2 CPU cores 5 members trained in 136 s; 6 took 37 min through the bridge).
    "highway_jax": ("dqn", dataclasses.replace(HIGHWAY_DQN, env_id="jax:highway-fast-v0"),
                    HIGHWAY_HPARAMS),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cartpole,acrobot")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    for task in args.tasks.split(","):
        run_task(RUNS / task, TASKS[task], args.seeds,
                 command=f"python experiments/found_size/run.py --tasks {task} --seeds {args.seeds}")
        print(f"{task}: done; python experiments/found_size/table.py writes the table")


if __name__ == "__main__":
    main()
