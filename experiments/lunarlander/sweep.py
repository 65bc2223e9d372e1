"""Which DSP schedule suits PPO on LunarLander-v3: one population, one compiled program.

The default schedule (tuned on CartPole: adaptive threshold, c_final 0.9, window 0.1–0.6) prunes
LunarLander's actor to the 4-neuron floor and the policy fails. This sweep tries later and longer
pruning windows, the ``schedule`` threshold (keeps ``k_final`` of each layer) and the adaptive one
with lower ``c_final``, with the critic left dense (``prune_critic=off``: only the actor is deployed)
and, for one setting, pruned too; beside the dense baseline. 1M steps, PPO settings of
``experiments/lunarlander/run.sh``.

Usage: python experiments/lunarlander/sweep.py --round N > experiments/lunarlander/sweep_roundN.md
(rounds 1-2: a few minutes on one H100 with 16 CPU cores for the environments; round 6: 10 minutes
on 2 CPU cores; the machine is printed). The chosen schedule is confirmed by ``run.sh``.
"""

import argparse
import os
import platform

import jax
import numpy as np

from dspjax.agents.ppo import PRUNE_CRITIC_NAMES, PPOConfig, PPOHParams, make_train
from dspjax.pruning import IMPORTANCE_NAMES, PENALTY_FORMS, THRESHOLD_NAMES, DSPHParams
from dspjax.train import build_population, run_population

OFF, ON = (PRUNE_CRITIC_NAMES.index(n) for n in ("off", "on"))
SCHEDULE = THRESHOLD_NAMES.index("schedule")
OUTPUT, TAYLOR = (IMPORTANCE_NAMES.index(n) for n in ("output", "taylor"))
PROXIMAL = PENALTY_FORMS.index("proximal")
WINDOWS = [(0.2, 0.6), (0.2, 0.8), (0.4, 0.6), (0.4, 0.8)]
# The rounds were run with dspjax 0.1, whose λ was per optimiser step; 0.2's is per iteration of
# STEPS = epochs x minibatches optimiser steps. λ below is written per step, as then, and
# multiplied by STEPS when the population is built; the table prints it per step.
STEPS = 4 * 32


ROUNDS = {
    # Round 1: later and longer windows, schedule vs adaptive threshold, default λ (loss form).
    # Every pruned actor failed (sweep_round1.md): under Adam the penalty's gradient dominates the
    # small RL gradients of a 256-256 actor and shrinks whole layers, whatever the threshold.
    1: lambda: [("dense", {"method": ["dense"]}, [0, 1, 2])]
    + [("schedule", {"method": ["dsp"], "prune_critic": [OFF], "threshold_rule": [SCHEDULE],
                     "k_final": [0.06, 0.1], "prune_start": [s], "prune_end": [e]}, [0, 1])
       for s, e in WINDOWS]
    + [("adaptive", {"method": ["dsp"], "prune_critic": [OFF], "c_final": [0.3, 0.5],
                     "prune_start": [0.4], "prune_end": [0.8]}, [0, 1]),
       ("schedule, critic pruned", {"method": ["dsp"], "prune_critic": [ON],
                                    "threshold_rule": [SCHEDULE], "k_final": [0.1],
                                    "prune_start": [0.4], "prune_end": [0.8]}, [0, 1])],
    # Round 2: the regularizer's strength and form: none, a proximal step (its shrink scales with
    # the learning rate, not with Adam's normalisation), and a much smaller λ as a loss term.
    2: lambda: [("dense", {"method": ["dense"]}, [0, 1])]
    + [("λ=0", {"method": ["dsp"], "prune_critic": [OFF], "threshold_rule": [SCHEDULE],
                 "lam": [0.0], "k_final": [0.06, 0.1], **WINDOW2}, [0, 1]),
       ("proximal", {"method": ["dsp"], "prune_critic": [OFF], "threshold_rule": [SCHEDULE],
                     "penalty_form": [PROXIMAL], "lam": [0.02, 0.1], "k_final": [0.06],
                     **WINDOW2}, [0, 1]),
       ("loss, small λ", {"method": ["dsp"], "prune_critic": [OFF], "threshold_rule": [SCHEDULE],
                          "lam": [2e-6, 2e-5], "k_final": [0.06], **WINDOW2}, [0, 1]),
       ("adaptive, small λ", {"method": ["dsp"], "prune_critic": [OFF], "lam": [2e-6],
                              "c_final": [0.5], **WINDOW2}, [0, 1])],
    # Round 3 (2-CPU pilot, 300k steps, one seed): is it the penalty? The same pruning with λ = 0,
    # the default λ and a 100x smaller one.
    3: lambda: [("dense", {"method": ["dense"]}, [0])]
    + [(f"λ={lam:g}", {"method": ["dsp"], "prune_critic": [OFF], "threshold_rule": [SCHEDULE],
                       "lam": [lam], "k_final": [0.1], "prune_start": [0.2], "prune_end": [0.6]},
        [0]) for lam in (0.0, 2e-6, 2e-4)],
    # Round 4 (2-CPU pilot, 300k steps): round 3 failed with λ = 0 too, so it is the pruning
    # itself. How far can the actor be pruned, and does a slower window help?
    4: lambda: [("dense", {"method": ["dense"]}, [0])]
    + [(f"k {k:g}", {"method": ["dsp"], "prune_critic": [OFF], "threshold_rule": [SCHEDULE],
                     "lam": [0.0], "k_final": [k], "prune_start": [0.2], "prune_end": [0.6]}, [0])
       for k in (0.25, 0.5)]
    + [("k 0.1, window 0.1–0.9", {"method": ["dsp"], "prune_critic": [OFF],
                                  "threshold_rule": [SCHEDULE], "lam": [0.0], "k_final": [0.1],
                                  "prune_start": [0.1], "prune_end": [0.9]}, [0])],
    # Round 5 (2-CPU, 1M steps; not run, round 6 replaced it): beyond ~75 % removed the actor fails
    # at 300k steps (round 4).
    # Prune early and leave 60 % of training to recover.
    5: lambda: [("dense", {"method": ["dense"]}, [0])]
    + [(f"k {k:g}, λ {lam:g}", {"method": ["dsp"], "prune_critic": [OFF],
                                "threshold_rule": [SCHEDULE], "lam": [lam], "k_final": [k],
                                "prune_start": [0.1], "prune_end": [0.4]}, [0])
       for k, lam in ((0.1, 0.0), (0.1, 2e-6), (0.25, 0.0))],
    # Round 6 (2-CPU, 1M steps): round 1's 1M-step runs all used λ = 2e-4, which alone costs a
    # lot (round 3); the default taylor importance ranks neurons by a noisy clipped-surrogate
    # gradient. Small λ, prune early (0.05–0.35) to 9 % kept, then recover for 65 % of training;
    # output importance (how much a neuron moves the logits) against taylor.
    6: lambda: [("dense", {"method": ["dense"]}, [0])]
    + [(f"{name}, window {s:g}–{e:g}", {"method": ["dsp"], "prune_critic": [OFF],
                                       "threshold_rule": [SCHEDULE], "importance": [imp],
                                       "lam": [2e-5], "k_final": [0.09], "prune_start": [s],
                                       "prune_end": [e]}, [0])
       for name, imp, s, e in (("output", OUTPUT, 0.05, 0.35), ("taylor", TAYLOR, 0.05, 0.35),
                               ("output", OUTPUT, 0.2, 0.5))],
}
WINDOW2 = {"prune_start": [0.3], "prune_end": [0.7]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--round", type=int, default=2, choices=sorted(ROUNDS))
    args = parser.parse_args()
    config = PPOConfig(env_id="LunarLander-v3", num_envs=8, num_steps=256, num_minibatches=32,
                       total_timesteps=args.steps, eval_episodes=10)
    # dspjax 0.1's defaults then: the adaptive rule, λ 2e-4 per step, the penalty to the end, the
    # window 0.1–0.6 where a group does not set its own
    base = PPOHParams(gamma=0.999, gae_lambda=0.98, lr=3e-4, prune_critic=ON,
                      dsp=DSPHParams(threshold_rule=THRESHOLD_NAMES.index("adaptive"), lam=2e-4 * STEPS,
                                     reg_end=1.0, prune_end=0.6))
    members, labels = [], []
    for label, sweep, seeds in ROUNDS[args.round]():
        sweep = {k: [v * STEPS for v in vs] if k == "lam" else vs for k, vs in sweep.items()}
        for m in build_population(base, sweep, seeds):
            m.index = len(members)
            members.append(m)
            labels.append(label)
    result = run_population(make_train, config, members, progress=False)
    dev = jax.devices()[0]
    print(f"# PPO+DSP schedules on LunarLander-v3, round {args.round}, {args.steps:,} steps, {len(members)} members in "
          f"one program\n\nMachine: {dev.platform}:{dev.device_kind}, {os.cpu_count()} cores "
          f"({platform.machine()}); compiled in {result.compile_seconds:.0f} s, trained in "
          f"{result.run_seconds:.0f} s.\n")
    print("| group | window | λ | k_final / c_final | seed | eval return | train return (last 10) "
          "| actor alive | critic alive |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m, label in zip(members, labels):
        i = m.index
        d = m.hparams.dsp
        episodes = result.metrics["episodes"][i] > 0
        train = np.mean(result.metrics["episode_return"][i][episodes][-10:])
        level = "–" if label == "dense" else (
            f"k {float(d.k_final):g}" if int(d.threshold_rule) == SCHEDULE else f"c {float(d.c_final):g}")
        window = "–" if label == "dense" else f"{float(d.prune_start):g}–{float(d.prune_end):g}"
        lam = 0.0 if label == "dense" else float(d.lam) / STEPS
        print(f"| {label} | {window} | {lam:g} | {level} | {m.seed} | {result.eval_returns[i].mean():.1f} "
              f"| {train:.1f} | {int(result.metrics['actor_alive_neurons'][i, -1])} "
              f"| {int(result.metrics['critic_alive_neurons'][i, -1])} |")
    print(f"\nReproduce: `python experiments/lunarlander/sweep.py --round {args.round} --steps {args.steps} > "
          f"experiments/lunarlander/sweep_round{args.round}.md`")


if __name__ == "__main__":
    main()
