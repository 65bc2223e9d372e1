"""Does the default rule's size come from the task or from λ? LunarLander-v3 and CartPole-v1 (Markdown on stdout).

This study made dspjax 0.2's PPO defaults. Its runs were made with dspjax 0.1, where λ was per
optimiser step, the critic was pruned and the penalty stayed on to the end of training; with those
defaults (``runs/<task>_critic_pruned``, made by ``run.py`` then) LunarLander's actor went to the
floor and failed. The commands below are written for dspjax 0.2 (λ per iteration: each of an
iteration's U optimiser steps applies λ/U, U = epochs x minibatches) and reproduce the same runs:
the 0.1 per-step λ times U, and the 0.1 defaults spelt out (with dspjax 0.3, add ``--prune-end 0.6``,
the pruning window all of these runs had, to every command). The table gives λ per optimiser step
(what every one of these runs applied) and per iteration. 3 seeds each, one population per command:

  LL="dspjax train --env LunarLander-v3 --steps 2000000 --num-envs 8 --num-steps 256 --minibatches 32 \
      --eval-episodes 20 --gamma 0.999 --gae-lambda 0.98 --lr 3e-4"             (U = 4 x 32 = 128)
  $LL --seeds 3 --prune-critic on --reg-end 1 --sweep lam=3.2e-3,6.4e-3,1.28e-2 \
      --out experiments/found_size/runs/lunarlander_lam
  $LL --seeds 3 --prune-critic on --reg-end 0.6 --sweep lam=3.2e-3,6.4e-3 --env-workers 1 \
      --out experiments/found_size/runs/lunarlander_lam_regend

And CartPole-v1 (defaults: 4 envs x 128 steps, 4 epochs x 4 minibatches: U = 16), 3 seeds, against
the 5 ``dsp`` seeds of ``runs/cartpole_critic_pruned/dense_dsp`` (0.1's default λ 2e-4 per step):

  dspjax train --seeds 3 --prune-critic on --reg-end 1 --sweep lam=0,3.2e-4 \
      --out experiments/found_size/runs/cartpole_lam
  dspjax train --num-envs 8 --num-steps 256 --minibatches 32 --seeds 3 --prune-critic on --reg-end 1 \
      --sweep lam=2.56e-2,3.2e-3 --out experiments/found_size/runs/cartpole_u128  (LunarLander's U = 128)

With the critic left dense (``--prune-critic off``: only the deployed actor is regularized and
pruned) and λ per step scaled to LunarLander's 8x more optimiser steps per iteration (2e-4 · 16 / 128 =
2.5e-5 per step, 3.2e-3 per iteration), with the penalty to the end and off from 0.6:

  $LL --seeds 3 --prune-critic off --lam 3.2e-3 --reg-end 1 \
      --out experiments/found_size/runs/lunarlander_critic_off
  $LL --seeds 5 --prune-critic off --lam 3.2e-3 --reg-end 0.6 \
      --out experiments/found_size/runs/lunarlander_critic_off_regend
  dspjax train --seeds 3 --prune-critic off --reg-end 0.6 --out experiments/found_size/runs/cartpole_critic_off_regend

The last two are dspjax 0.2's defaults; ``run.py`` ran them again with 0.2 (now
``runs/lunarlander_window06``, ``runs/cartpole_window06``). dspjax 0.3 ends the window and the
penalty at 0.4; ``run.py`` with 0.3 made ``runs/lunarlander`` and ``runs/cartpole`` (5 seeds each, the
``dsp`` members of their ``dense_dsp``), and their rows ("off from 0.4") close the tables.

The greedy and sampled policies of a run are evaluated again by ``dspjax eval RUN [--policy sample]``
(needs the run's checkpoint, which is not committed).

Return as % of dense uses the dense seeds of ``runs/lunarlander_critic_pruned/dense_dsp`` (same
settings), with ``table.py``'s floor (−200) and its IQM and stratified-bootstrap interval.

Usage: python experiments/found_size/lambda_study.py [--machine TEXT]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from table import RUNS, iqm_interval, records, return_floor

# LunarLander run directories: what the penalty did in them, and whether the critic was pruned.
STUDIES = {"lunarlander_critic_pruned": ("to the end", "pruned"),
           "lunarlander_lam": ("to the end", "pruned"), "lunarlander_lam_regend": ("off from 0.6", "pruned"),
           "lunarlander_critic_off": ("to the end", "dense"),
           "lunarlander_critic_off_regend": ("off from 0.6", "dense"),
           "lunarlander_window06": ("off from 0.6", "dense"), "lunarlander": ("off from 0.4", "dense")}
CARTPOLE_STUDIES = {"cartpole_critic_pruned": "pruned, to the end", "cartpole_lam": "pruned, to the end",
                    "cartpole_u128": "pruned, to the end", "cartpole_critic_off_regend": "dense, off from 0.6",
                    "cartpole_window06": "dense, off from 0.6", "cartpole": "dense, off from 0.4"}


def study_members(study: str) -> list[dict]:
    """The member records of ``runs/<study>`` (every run directory in it), each with
    ``lam_per_step`` (λ as one optimiser step applied it) and ``steps`` (U, optimiser steps per
    iteration); none when it has not been run."""
    out = []
    for path in sorted(RUNS.glob(f"{study}/summary.json")) + sorted(RUNS.glob(f"{study}/dense_dsp/summary.json")):
        cfg = json.loads((path.parent / "config.json").read_text())
        steps = cfg["config"]["update_epochs"] * cfg["config"]["num_minibatches"]
        # dspjax 0.1: λ per optimiser step; from 0.2 on, per iteration (each step applies λ/U)
        per_step = 1 if cfg["dspjax_version"].startswith("0.1.") else steps
        lams = {m["member"]: m["hparams"]["lam"] / per_step for m in cfg["members"]}
        out += [dict(r, lam_per_step=lams[r["member"]], steps=steps)
                for r in json.loads(path.read_text())["members"] if r["grid_point"].get("method", "dsp") == "dsp"]
    return out


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
    """Number of dense seeds of ``runs/<task>`` and their mean ``key``."""
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
    seeds, dense_mean = dense_mean_of("lunarlander_critic_pruned")
    floor = return_floor("LunarLander-v3")
    print("# Does the default rule's size come from the task or from λ?\n")
    print("Written by `python experiments/found_size/lambda_study.py` from the run directories its "
          "docstring's commands made.\n")
    print("## LunarLander-v3: the size against λ\n")
    if args.machine:
        print(f"Machine: {args.machine}.\n")
    _, dense_training = dense_mean_of("lunarlander_critic_pruned", "train_return_last")
    print(f"Dense return, mean over {seeds} seeds: {dense_mean:.1f} (greedy evaluation, 20 episodes "
          f"per seed); in the last training episodes (the sampled policy): {dense_training:.1f}. PPO "
          "2M steps, actor and critic 256-256; every DSP hyperparameter but those in the first three "
          "columns at its default (the same in dspjax 0.1 and 0.2: the relative rule, Taylor "
          "importance, window 0.1–0.6 of training; the \"off from 0.4\" run has dspjax 0.3's window "
          "0.1–0.4).\n")
    print("| critic | λ per step (per iteration) | penalty | run | seeds | actor size per seed | actor neurons "
          "removed | return, % of dense: IQM [95 % CI] | per seed | training return (sampled), % of dense, "
          "per seed | stopped by |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = {}
    for study, (penalty, critic) in STUDIES.items():
        for r in study_members(study):
            key = (critic, round(r["lam_per_step"], 12), r["steps"], penalty, study)
            rows.setdefault(key, []).append(r)
    for (critic, lam, steps, penalty, study), members in sorted(
            rows.items(), key=lambda kv: (kv[0][0] == "dense", kv[0][3], -kv[0][1], kv[0][4])):
        pct, iqm, sizes, removed, stops = row_cells(members, floor, dense_mean)
        print(f"| {critic} | {lam:.3g} ({lam * steps:.3g}) | {penalty} | {study} | {len(members)} | {sizes} | "
              f"{removed} | {iqm} | {', '.join(f'{p:.0f}' for p in pct)} | "
              f"{training_return_pct(members, floor, dense_training)} | {stops} |")
    cartpole()


def cartpole():
    seeds, dense_mean = dense_mean_of("cartpole_critic_pruned")
    print("\n## CartPole-v1: the size against λ and optimiser steps per iteration\n")
    print(f"Dense return, mean over {seeds} seeds: {dense_mean:.1f}. PPO 500k steps, actor and "
          "critic 256-256.\n")
    print("| optimiser steps per iteration | λ per step (per iteration) | critic, penalty | run | seeds | "
          "actor size per seed | actor neurons removed | return, % of dense: IQM [95 % CI] | stopped by |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = {}
    for study, variant in CARTPOLE_STUDIES.items():
        for r in study_members(study):
            rows.setdefault((r["steps"], round(r["lam_per_step"], 12), variant, study), []).append(r)
    order = lambda kv: (kv[0][0], -kv[0][1], kv[0][2], kv[0][3])  # noqa: E731
    for (steps, lam, variant, study), members in sorted(rows.items(), key=order):
        _, iqm, sizes, removed, stops = row_cells(members, return_floor("CartPole-v1"), dense_mean)
        print(f"| {steps} | {lam:.3g} ({lam * steps:.3g}) | {variant} | {study} | {len(members)} | {sizes} | "
              f"{removed} | {iqm} | {stops} |")


if __name__ == "__main__":
    main()
