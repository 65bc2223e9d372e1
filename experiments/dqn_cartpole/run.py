"""Confirms the DQN defaults on gymnax CartPole-v1: DSP (the default method) and the dense
baseline, 3 seeds each, each method one ``jit(vmap(train))`` program over its seeds.

Usage (from the repository root; a few minutes on 2 CPU cores):
  python experiments/dqn_cartpole/run.py > experiments/dqn_cartpole/results.md
"""

from __future__ import annotations

import os
import platform
import sys
import time

import jax
import numpy as np

from dspjax.agents.dqn import DQNConfig, DQNHParams, make_train, networks
from dspjax.pruning import THRESHOLD_NAMES, chain_layers, compact
from dspjax.train.population import build_population, run_population

SEEDS = (0, 1, 2)
TARGET = 475.0


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{jax.devices()[0].platform} ({cpu}, {os.cpu_count()} cores), jax {jax.__version__}"


def main() -> None:
    config = DQNConfig()
    hp = DQNHParams()
    print(f"# DQN + DSP on gymnax {config.env_id}: the defaults, {len(SEEDS)} seeds\n")
    print("Written by `python experiments/dqn_cartpole/run.py > experiments/dqn_cartpole/results.md`"
          f" on {machine()}.\n")
    print(f"Static config: {config.total_timesteps:,} steps, {config.num_envs} envs, hidden "
          f"{config.hidden_sizes}, batch {config.batch_size}, buffer {config.buffer_size:,}, "
          f"learning starts {config.learning_starts:,}, train every {config.train_every}, target "
          f"update every {config.target_update_every} iteration(s).  \n"
          f"Hyperparameters: lr {hp.lr:g}, γ {hp.gamma:g}, ε {hp.eps_start:g} → {hp.eps_end:g} "
          f"over {hp.eps_fraction:g} of training, τ {hp.tau:g}, lr decay {hp.lr_decay:g}, double "
          f"DQN {'on' if hp.double_dqn else 'off'}.  \nDSP: λ {hp.dsp.lam:g}, δ {hp.dsp.delta:g}, "
          f"β {hp.dsp.beta:g}, threshold {THRESHOLD_NAMES[int(hp.dsp.threshold_rule)]} (c_relative "
          f"{hp.dsp.c_relative:g}), window {hp.dsp.prune_start:g}–"
          f"{hp.dsp.prune_end:g}, prune every {hp.dsp.prune_every} iterations, λ warm-up "
          f"{hp.dsp.reg_warmup:g}, min alive {hp.dsp.min_alive}.\n")
    print(f"Greedy return: mean of {config.eval_episodes} evaluation episodes after training, per "
          f"seed. Target: >= {TARGET:g} on every seed.\n")
    print("| method | return per seed | mean ± std | Q neurons removed | Q weights removed | "
          "compact hidden sizes per seed | wall time (compile + run, all seeds) |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for method in ("dsp", "dense"):
        members = build_population(DQNHParams(), {"method": [method]}, SEEDS)
        t0 = time.perf_counter()
        result = run_population(make_train, config, members, progress=False)
        wall = time.perf_counter() - t0
        returns = result.eval_returns.mean(1)
        neurons = result.metrics["q_neurons_removed"][:, -1]
        weights = result.metrics["q_weights_removed"][:, -1]
        sizes = []
        for i in range(len(members)):
            member = jax.tree.map(lambda x: x[i], result.final_state)
            layers = chain_layers(member.params, networks(config)["q"])
            sizes.append([layer["bias"].shape[0]
                          for layer in compact(layers, member.dsp.pruners["q"].neuron_masks)[:-1]])
        ok &= bool(np.all(returns >= TARGET))
        print(f"| {method} | {', '.join(f'{r:.1f}' for r in returns)} | {returns.mean():.1f} ± "
              f"{returns.std():.1f} | {100 * neurons.mean():.1f} % ({', '.join(f'{100 * n:.1f}' for n in neurons)}) | "
              f"{100 * weights.mean():.1f} % | {'; '.join('×'.join(map(str, s)) for s in sizes)} | "
              f"{result.compile_seconds:.0f} + {result.run_seconds:.0f} s ({wall:.0f} s) |", flush=True)
    print(f"\nEvery seed of both methods reaches {TARGET:g}: {'yes' if ok else 'no'}.")


if __name__ == "__main__":
    sys.exit(main())
