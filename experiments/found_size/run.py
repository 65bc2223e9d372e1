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

Run directories go to ``runs/<task>/<phase>``; a phase whose ``summary.json`` exists is not run
again, and a phase stopped midway goes on from its last training checkpoint
(``runs/<task>/<phase>/checkpoints``, saved every tenth of the run), so the script resumes where it
stopped, across sessions. ``table.py`` turns them into ``results.md``.

Usage: python experiments/found_size/run.py [--tasks cartpole,acrobot] [--seeds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from dspjax.agents.dqn import DQNConfig, DQNHParams
from dspjax.agents.ppo import PPOConfig, PPOHParams
from dspjax.train import build_population, run_population, set_hparam
from dspjax.train.algos import get_algo
from dspjax.train.run_dir import write_run

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


def done(run_dir: Path) -> bool:
    return (run_dir / "summary.json").is_file()


def train(run_dir: Path, algo: str, config, members):
    """One population, checkpointed every segment into ``run_dir/checkpoints`` and going on from
    the newest checkpoint there (a run stopped midway)."""
    from dspjax.train.checkpoints import TrainingCheckpoints
    return run_population(get_algo(algo).make_train, config, members,
                          checkpoints=TrainingCheckpoints(run_dir / "checkpoints"))


def found_sizes(run_dir: Path) -> dict[int, list[int]]:
    """Per seed, the alive neurons of each layer of the policy network of the ``dsp`` members."""
    summary = json.loads((run_dir / "summary.json").read_text())
    policy = summary["policy_network"]
    return {r["seed"]: r[policy]["alive_per_layer"] for r in summary["members"]
            if r["grid_point"].get("method") == "dsp"}


def phase_one(task: str, seeds: int) -> Path:
    algo, config, base = TASKS[task]
    out = RUNS / task / "dense_dsp"
    if not done(out):
        members = build_population(base, {"method": ["dense", "dsp"]}, range(seeds))
        result = train(out, algo, config, members)
        write_run(out, algo, config, base, {"method": ["dense", "dsp"]}, list(range(seeds)), result,
                  command=f"python experiments/found_size/run.py --tasks {task} --seeds {seeds}")
    return out


def phase_two(task: str, seeds: int, sizes: dict[int, list[int]]) -> None:
    """``random`` at each seed's found number of neurons (one population), and ``small``, dense
    networks of each seed's found size (one population per distinct size)."""
    algo, config, base = TASKS[task]
    out = RUNS / task / "random"
    if not done(out):
        # schedule keeps ceil(k · n_l) neurons of every layer l (one k per network): k is the
        # found fraction of all hidden neurons, so the random network has DSP's total neuron count
        # spread evenly over its layers.
        random = set_hparam(set_hparam(base, "method", "random"), "min_alive", 1)
        members = []
        for seed in range(seeds):
            k = sum(sizes[seed]) / sum(config.hidden_sizes)
            member = build_population(set_hparam(random, "k_final", k), {}, [seed])[0]
            member.index, member.grid_point = seed, {"method": "random"}
            members.append(member)
        result = train(out, algo, config, members)
        write_run(out, algo, config, random, {"method": ["random"]}, list(range(seeds)), result,
                  found_sizes={str(s): sizes[s] for s in range(seeds)})
    by_size = {}
    for seed in range(seeds):
        by_size.setdefault(tuple(sizes[seed]), []).append(seed)
    for size, size_seeds in by_size.items():
        out = RUNS / task / ("small_" + "-".join(map(str, size)))
        if done(out):
            continue
        small_config = dataclasses.replace(config, hidden_sizes=size)
        if algo == "ppo":  # only the actor is pruned (prune_critic off): the critic keeps its width
            small_config = dataclasses.replace(small_config, critic_hidden_sizes=config.critic_sizes)
        dense = set_hparam(base, "method", "dense")
        members = build_population(dense, {}, size_seeds)
        for m in members:
            m.grid_point = {"method": "small"}
        result = train(out, algo, small_config, members)
        write_run(out, algo, small_config, dense, {"method": ["small"]}, size_seeds, result)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cartpole,acrobot")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    for task in args.tasks.split(","):
        first = phase_one(task, args.seeds)
        phase_two(task, args.seeds, found_sizes(first))
        print(f"{task}: done; python experiments/found_size/table.py writes the table")


if __name__ == "__main__":
    main()
