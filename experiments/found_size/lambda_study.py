"""Does the default rule's size come from the task or from λ? LunarLander-v3 and CartPole-v1 (Markdown on stdout).

The default job on LunarLander (``run.py --tasks lunarlander``) prunes the actor to the floor and
fails. These runs keep every other default and vary λ (and, in the second, switch the penalty off
when the window closes, ``reg_end`` 0.6), 3 seeds each, one population per command:

  dspjax train --env LunarLander-v3 --steps 2000000 --num-envs 8 --num-steps 256 --minibatches 32 \\
      --eval-episodes 20 --gamma 0.999 --gae-lambda 0.98 --lr 3e-4 --seeds 3 \\
      --sweep lam=2.5e-5,5e-5,1e-4 --out experiments/found_size/runs/lunarlander_lam
  (the same) --reg-end 0.6 --sweep lam=2.5e-5,5e-5 --env-workers 1 \\
      --out experiments/found_size/runs/lunarlander_lam_regend

And CartPole-v1 (defaults: 4 envs x 128 steps, 4 minibatches: 16 optimiser steps per iteration),
3 seeds, against the 5 default ``dsp`` seeds of ``runs/cartpole/dense_dsp`` (λ 2e-4):

  dspjax train --seeds 3 --sweep lam=0,2e-5 --out experiments/found_size/runs/cartpole_lam
  dspjax train --num-envs 8 --num-steps 256 --minibatches 32 --seeds 3 --sweep lam=2e-4,2.5e-5 \
      --out experiments/found_size/runs/cartpole_u128   (LunarLander's rollout: 128 steps/iteration)

With the critic left dense (``--prune-critic off``: only the deployed actor is regularized and
pruned) and λ scaled to LunarLander's 8x more optimiser steps per iteration (2e-4 · 16 / 128 =
2.5e-5), with the penalty to the end and off from 0.6:

  (the LunarLander command) --prune-critic off --lam 2.5e-5 \
      --out experiments/found_size/runs/lunarlander_critic_off        (3 seeds)
  (the LunarLander command, --seeds 5) --prune-critic off --lam 2.5e-5 --reg-end 0.6 \
      --out experiments/found_size/runs/lunarlander_critic_off_regend
  dspjax train --seeds 3 --prune-critic off --reg-end 0.6 --out experiments/found_size/runs/cartpole_critic_off_regend

The greedy and sampled policies of a run are evaluated again by ``dspjax eval RUN [--policy sample]``
(needs the run's checkpoint, which is not committed).

Return as % of dense uses the dense seeds of ``runs/lunarlander/dense_dsp`` (same settings), with
``table.py``'s floor (−200) and its IQM and stratified-bootstrap interval.

Usage: python experiments/found_size/lambda_study.py [--machine TEXT]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from table import RUNS, iqm_interval, records, return_floor

from dspjax.pruning import DSPHParams

# LunarLander run directories: what the penalty did in them, and whether the critic was pruned.
STUDIES = {"lunarlander_lam": ("to the end", "pruned"), "lunarlander_lam_regend": ("off from 0.6", "pruned"),
           "lunarlander_critic_off": ("to the end", "dense"),
           "lunarlander_critic_off_regend": ("off from 0.6", "dense")}


def study_members(study: str) -> list[dict]:
    """The member records of ``runs/<study>``; none when it has not been run."""
    path = RUNS / study / "summary.json"
    return json.loads(path.read_text())["members"] if path.is_file() else []


def row_cells(members: list[dict], floor: float, dense_mean: float) -> tuple:
    """Per-seed % of dense, IQM and interval text, actor sizes, mean neurons removed and stop
    reasons of ``members``, ordered by seed."""
    members = sorted(members, key=lambda r: r["seed"])
    pct = np.array([100.0 * (r["final_return"] - floor) / (dense_mean - floor) for r in members])
    iqm, lo, hi = iqm_interval(pct)
    sizes = "; ".join("-".join(map(str, r["actor"]["alive_per_layer"])) for r in members)
    removed = 100 * np.mean([r["actor"]["neurons_removed"] for r in members])
    stops = "; ".join("/".join(r["actor"]["stopped_by"]) for r in members)
    return pct, f"{iqm:.1f} [{lo:.1f}, {hi:.1f}]", sizes, f"{removed:.1f} %", stops


def dense_mean_of(task: str, key: str = "final_return") -> tuple[int, float]:
    returns = [r[key] for _, r in records(task)["dense"]]
    return len(returns), float(np.mean(returns))


def training_return_pct(members: list[dict], floor: float, dense_mean: float) -> str:
    """Mean over seeds of the last training episodes' return (the sampled policy PPO trains), as %
    of dense's, by seed."""
    members = sorted(members, key=lambda r: r["seed"])
    return ", ".join(f"{100.0 * (r['train_return_last'] - floor) / (dense_mean - floor):.0f}" for r in members)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", default=None)
    args = parser.parse_args()
    seeds, dense_mean = dense_mean_of("lunarlander")
    floor = return_floor("LunarLander-v3")
    print("# Does the default rule's size come from the task or from λ?\n")
    print("Written by `python experiments/found_size/lambda_study.py` from the run directories its "
          "docstring's commands made.\n")
    print("## LunarLander-v3: the size against λ\n")
    if args.machine:
        print(f"Machine: {args.machine}.\n")
    _, dense_training = dense_mean_of("lunarlander", "train_return_last")
    print(f"Dense return, mean over {seeds} seeds: {dense_mean:.1f} (greedy evaluation, 20 episodes "
          f"per seed); in the last training episodes (the sampled policy): {dense_training:.1f}. PPO "
          "2M steps, actor and critic 256-256, every DSP hyperparameter at its default except those "
          "in the first three columns.\n")
    print("| critic | λ | penalty | seeds | actor size per seed | actor neurons removed | return, % of dense: "
          "IQM [95 % CI] | per seed | training return (sampled), % of dense, per seed | stopped by |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = {("pruned", 2e-4, "to the end"): [r for _, r in records("lunarlander")["dsp"]]}
    for study, (penalty, critic) in STUDIES.items():
        for r in study_members(study):
            rows.setdefault((critic, float(r["grid_point"]["lam"]), penalty), []).append(r)
    for (critic, lam, penalty), members in sorted(rows.items(), key=lambda kv: (kv[0][0] == "dense", kv[0][2],
                                                                                 -kv[0][1])):
        pct, iqm, sizes, removed, stops = row_cells(members, floor, dense_mean)
        print(f"| {critic} | {lam:g} | {penalty} | {len(members)} | {sizes} | {removed} | {iqm} | "
              f"{', '.join(f'{p:.0f}' for p in pct)} | {training_return_pct(members, floor, dense_training)} | "
              f"{stops} |")
    cartpole()


def cartpole():
    seeds, dense_mean = dense_mean_of("cartpole")
    print("\n## CartPole-v1: the size against λ and optimiser steps per iteration\n")
    print(f"Dense return, mean over {seeds} seeds: {dense_mean:.1f}. PPO 500k steps, actor and "
          "critic 256-256.\n")
    print("| optimiser steps per iteration | λ | critic, penalty | seeds | actor size per seed | actor neurons "
          "removed | return, % of dense: IQM [95 % CI] | stopped by |")
    print("|---|---|---|---|---|---|---|---|")
    default = "pruned, to the end"
    rows = {(16, DSPHParams().lam, default): [r for _, r in records("cartpole")["dsp"]]}
    for study, steps, variant in (("cartpole_lam", 16, default), ("cartpole_u128", 128, default),
                                  ("cartpole_critic_off_regend", 16, "dense, off from 0.6")):
        for r in study_members(study):
            lam = float(r["grid_point"].get("lam", DSPHParams().lam))  # not varied: the default
            rows.setdefault((steps, lam, variant), []).append(r)
    for (steps, lam, variant), members in sorted(rows.items(), key=lambda kv: (kv[0][0], -kv[0][1], kv[0][2])):
        _, iqm, sizes, removed, stops = row_cells(members, return_floor("CartPole-v1"), dense_mean)
        print(f"| {steps} | {lam:g} | {variant} | {len(members)} | {sizes} | {removed} | {iqm} | {stops} |")


if __name__ == "__main__":
    main()
