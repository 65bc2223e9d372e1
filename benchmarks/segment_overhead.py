"""What segments and checkpoints cost: the default job trained as one uninterrupted program
against the same population in segments with a checkpoint after each, side by side in one process.

- ``one program``: ``jit(vmap(train))`` of the whole run, one call (how dspjax ran before segments);
- ``segments + checkpoints``: ``run_population`` with the default segment length (a tenth of the
  run) and an orbax checkpoint of the whole population state after every segment, what
  ``dspjax train`` does.

Both include compilation (the segmented run compiles three programs: init, segment, evaluation).
The two are run alternately ``--repeats`` times (which one goes first alternating too); the
overhead is the ratio of their medians.

Usage: python benchmarks/segment_overhead.py [--steps 500000] [--seeds 3] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
from population_scaling import machine  # benchmarks/ is the script's folder

from dspjax.agents import PPOConfig, PPOHParams, make_train
from dspjax.train import build_population, run_population, stack_hparams
from dspjax.train.checkpoints import TrainingCheckpoints
from dspjax.train.population import default_segment_length


def one_program(config, members) -> float:
    t0 = time.perf_counter()
    hp, axes = stack_hparams([m.hparams for m in members])
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray([m.seed for m in members], jnp.uint32))
    jax.block_until_ready(jax.jit(jax.vmap(make_train(config), in_axes=(0, axes)))(keys, hp))
    return time.perf_counter() - t0


def segmented(config, members) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        checkpoints = TrainingCheckpoints(os.path.join(tmp, "checkpoints"))
        run_population(make_train, config, members, progress=False, checkpoints=checkpoints)
        checkpoints.close()
        return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    config = PPOConfig(total_timesteps=args.steps)
    members = build_population(PPOHParams(), {"method": ["dsp"]}, range(args.seeds))
    warm_up = PPOConfig(total_timesteps=4 * 128, hidden_sizes=(8,))  # imports, first-call costs
    one_program(warm_up, members[:1])
    segmented(warm_up, members[:1])
    times = {"one program": [], "segments + checkpoints": []}
    for repeat in range(args.repeats):  # alternate which goes first: drifts in load hit both
        for name in sorted(times, reverse=bool(repeat % 2)):
            run = one_program if name == "one program" else segmented
            times[name].append(run(config, members))
    medians = {k: statistics.median(v) for k, v in times.items()}
    row = {"machine": machine(), "job": f"PPO+DSP CartPole-v1, {args.seeds} seeds, {args.steps:,} steps, "
           f"hidden {config.hidden_sizes}", "segments": -(-config.num_iterations // default_segment_length(
               config.num_iterations)), "seconds": times, "median_seconds": medians,
           "overhead": medians["segments + checkpoints"] / medians["one program"]}
    print(f"{row['machine']}\n{row['job']}, {row['segments']} segments")
    for k, v in times.items():
        print(f"  {k:<24} " + ", ".join(f"{t:.1f} s" for t in v) + f"  (median {medians[k]:.1f} s)")
    print(f"  segments + checkpoints / one program: {row['overhead']:.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(row, f, indent=2)


if __name__ == "__main__":
    main()
