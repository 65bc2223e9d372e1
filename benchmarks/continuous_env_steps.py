"""Training env-steps per second on continuous control: brax in the compiled program against
gymnasium's MuJoCo through the host bridge, populations of 1 and 16, side by side in one process.

PPO+DSP (256x256 actor and critic, 4 envs x 128 steps per iteration per member) on ``brax:hopper``
(brax's physics, pure JAX; ``--brax-backend``) and on ``Hopper-v5`` (MuJoCo, stepped by worker
processes, one per core). Each program is compiled once, warmed up, then timed (best of
``--repeats``); ``env-steps/s`` counts every member's environment steps, the training updates
included. The two simulators differ (brax's hopper is not MuJoCo's), so this compares the ways of
running a task, not the tasks.

Usage: python benchmarks/continuous_env_steps.py [--sizes 1,16] [--iterations 8] [--out FILE]
"""

from __future__ import annotations

import argparse
import json

try:
    from population_scaling import machine, time_population
except ImportError:  # run from the repository root
    from benchmarks.population_scaling import machine, time_population

from dspjax.agents import PPOConfig
from dspjax.envs import close_host_envs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,16")
    parser.add_argument("--iterations", type=int, default=8, help="PPO iterations per run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--brax-backend", default="generalized",
                        help="brax's physics backend: generalized (brax's default), positional, spring")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    envs = {"brax:hopper": json.dumps({"backend": args.brax_backend}), "Hopper-v5": ""}
    print(f"machine: {machine()}")
    print(f"PPO+DSP, 256x256, 4 envs x 128 steps x {args.iterations} iterations per member; "
          f"brax backend {args.brax_backend}\n")
    rows = []
    for env_id, env_config in envs.items():
        config = PPOConfig(env_id=env_id, env_config=env_config, eval_episodes=1,
                           total_timesteps=args.iterations * 4 * 128)
        for size in (int(s) for s in args.sizes.split(",")):
            row = time_population(config, size, args.repeats)
            close_host_envs()
            row.update(env=env_id, env_steps_per_s=size * config.total_timesteps / row["run_s"])
            rows.append(row)
            print(f"  {env_id:12s} {size:3d} members: {row['env_steps_per_s']:8,.0f} env-steps/s "
                  f"(run {row['run_s']:.1f} s, compile {row['compile_s']:.1f} s)", flush=True)
    print("\n| environment | members | env-steps/s | run [s] | compile [s] |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['env']} | {row['size']} | {row['env_steps_per_s']:,.0f} | {row['run_s']:.1f} "
              f"| {row['compile_s']:.1f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine(), "config": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
