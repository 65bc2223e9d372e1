"""What DSP costs a training step: PPO+DSP against dense PPO, side by side in one process.

Three rows of the same PPO trainer (``dspjax.agents.ppo``), actor and critic 256x256 on gymnax
CartPole-v1, one member:

- ``plain``: no network declared to DSP, so ``DSP.step`` is the optax step alone (dense PPO);
- ``dense``: the dense baseline of §7 (``method=dense``): DSP declared, nothing regularized or
  pruned, the bookkeeping (importance EMA, masks) still done;
- ``dsp``: the method with its defaults.

Each row is compiled once, warmed up, then timed in alternating repeats (plain, dense, dsp, plain,
...), so a noisy neighbour slows every row alike. The headline ratios are the medians of the
per-repeat ratios (each repeat's row over the same repeat's plain row: a slow stretch of the machine
cancels out); the ratio of the rows' median times and the interquartile range of the per-repeat
ratios are reported beside them.

Usage: python benchmarks/dsp_cost.py [--iterations 40] [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax

from dspjax.agents import PPOConfig, PPOHParams, ppo
from dspjax.train import set_hparam

try:
    from population_scaling import machine
except ImportError:  # run from the repository root
    from benchmarks.population_scaling import machine


def compiled_trainer(config: PPOConfig, hp, declare: bool):
    """The jitted trainer of one member, compiled; with ``declare`` False nothing is declared
    to DSP (the agent's ``networks`` replaced by an empty declaration while it is built)."""
    declared = ppo.networks
    ppo.networks = declared if declare else (lambda config: {})
    try:
        train = jax.jit(ppo.make_train(config))
        compiled = train.lower(jax.random.PRNGKey(0), hp).compile()
    finally:
        ppo.networks = declared
    return compiled


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    config = PPOConfig(hidden_sizes=(256, 256), total_timesteps=4 * 128 * args.iterations)
    rows = {"plain": (PPOHParams(), False),
            "dense": (set_hparam(PPOHParams(), "method", "dense"), True),
            "dsp": (PPOHParams(), True)}
    programs = {name: (compiled_trainer(config, hp, declare), hp) for name, (hp, declare) in rows.items()}
    key = jax.random.PRNGKey(0)
    for program, hp in programs.values():  # warm-up
        jax.block_until_ready(program(key, hp))
    times = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, (program, hp) in programs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(program(key, hp))
            times[name].append(time.perf_counter() - t0)
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {"machine": machine(), "config": vars(args), "seconds": times, "median_s": median}
    print(f"machine: {result['machine']}; {args.iterations} PPO iterations (256x256, CartPole-v1), "
          f"{args.repeats} alternating repeats")
    for a, b in (("dsp", "plain"), ("dense", "plain"), ("dsp", "dense")):
        paired = [x / y for x, y in zip(times[a], times[b])]
        q1, q2, q3 = statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
        result[f"{a}_over_{b}"] = statistics.median(paired)
        result[f"{a}_over_{b}_iqr"] = [q1, q3]
        result[f"{a}_over_{b}_of_medians"] = median[a] / median[b]
        print(f"  {a:5s} / {b:5s}: {statistics.median(paired):.3f}x (per-repeat ratios, IQR "
              f"{q1:.3f}-{q3:.3f}; ratio of median times {median[a] / median[b]:.3f}x)")
    print("  median times: " + ", ".join(f"{name} {median[name]:.3f} s" for name in rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
