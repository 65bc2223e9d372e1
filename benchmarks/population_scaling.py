"""How a population scales in one compiled program: speed and memory of ``jit(vmap(train))``.

For each population size P it compiles the PPO+DSP trainer once, runs it (after one warm-up run),
and reports, side by side in this one process:

- ``speed-up vs sequential`` = P x (time of the P = 1 program) / (time of the P-member program):
  how much faster one vmapped program is than training the members one after another;
- ``member-steps/s``: environment steps of all members per second;
- XLA's memory analysis of the compiled program (arguments + outputs + temporaries).

Usage: python benchmarks/population_scaling.py [--sizes 1,2,4,8,16] [--iterations 20] [--out FILE]
Ratios, not seconds, are what compare across machines; the machine is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp

from dspjax.agents import PPOConfig, PPOHParams, make_train
from dspjax.train import Member, set_hparam, stack_hparams


def machine() -> str:
    dev = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    return f"{dev.platform}:{dev.device_kind}, {os.cpu_count()} host cores ({cpu}), jax {jax.__version__}"


def time_population(config: PPOConfig, size: int, repeats: int):
    thresholds = [0.5 + 0.4 * i / max(size - 1, 1) for i in range(size)]  # members must differ
    members = [Member(i, i, {}, set_hparam(PPOHParams(), "c_final", c)) for i, c in enumerate(thresholds)]
    hp, axes = stack_hparams([m.hparams for m in members])
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(size, dtype=jnp.uint32))
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(make_train(config), in_axes=(0, axes))).lower(keys, hp).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(keys, hp))  # warm-up
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(keys, hp))
        runs.append(time.perf_counter() - t0)
    mem = compiled.memory_analysis()
    memory = None if mem is None else (mem.argument_size_in_bytes + mem.output_size_in_bytes
                                       + mem.temp_size_in_bytes)
    return {"size": size, "compile_s": compile_s, "run_s": min(runs), "memory_bytes": memory}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4,8,16")
    parser.add_argument("--iterations", type=int, default=20, help="PPO iterations per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    config = PPOConfig(total_timesteps=args.iterations * 4 * 128, eval_episodes=1)
    print(f"machine: {machine()}")
    print(f"PPO+DSP on {config.env_id}, hidden {config.hidden_sizes}, {config.num_envs} envs x "
          f"{config.num_steps} steps x {config.num_iterations} iterations per member\n")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        row = time_population(config, size, args.repeats)
        row["member_steps_per_s"] = size * config.total_timesteps / row["run_s"]
        rows.append(row)
    base = rows[0]["run_s"] / rows[0]["size"]
    print("| members | run [s] | speed-up vs sequential | member-steps/s | compile [s] | memory [MiB] |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        row["speedup_vs_sequential"] = row["size"] * base / row["run_s"]
        mem = "n/a" if row["memory_bytes"] is None else f"{row['memory_bytes'] / 2**20:.1f}"
        print(f"| {row['size']} | {row['run_s']:.2f} | {row['speedup_vs_sequential']:.2f} "
              f"| {row['member_steps_per_s']:,.0f} | {row['compile_s']:.1f} | {mem} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine(), "config": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
