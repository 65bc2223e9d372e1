"""How PPO's DSP defaults for box actions (``ppo.PPO_BOX``) were chosen: variants on Hopper-v5.

One seed per variant, 200k steps, the locomotion tables' PPO settings (``run.PPO``: 8 envs x 256
steps, 10 epochs of 32 minibatches) with lr 3e-4 and no entropy bonus; each batch of variants is
one population. ``first``: dense, the discrete tasks' DSP defaults, and stronger penalties (λ per
iteration) over the same window (0.1–0.4); ``window``: λ 1e-2 to 1e-1 over later windows (the
penalty ramping up to the window's start and off at its end). A batch already in its run
directory is not trained again. Prints, per variant, the greedy return, the actor's alive neurons
and the training return in each tenth of training.

Usage: python experiments/locomotion/box_defaults_study.py [--batches first,window]
       (run directories: experiments/hopper/box_defaults_study/<batch>)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

from dspjax.agents.ppo import PPOHParams
from dspjax.train import build_population, run_population, set_hparam
from dspjax.train.algos import get_algo
from dspjax.train.run_dir import block_metrics, read_metrics_csv, write_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import PPO  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "hopper" / "box_defaults_study"
WINDOW = lambda start, end: {"prune_start": start, "prune_end": end, "reg_warmup": start, "reg_end": end}
BATCHES = {
    "first": {"dense": {"method": "dense"}, "dsp": {"method": "dsp"}, "lam1e-2": {"lam": 0.01},
              "lam3e-2": {"lam": 0.032}, "lam1e-1": {"lam": 0.1},
              "lam3e-2pe1": {"lam": 0.032, "prune_every": 1}},
    "window": {"late10": {"lam": 0.01, **WINDOW(0.3, 0.6)}, "late32": {"lam": 0.032, **WINDOW(0.3, 0.6)},
               "late100": {"lam": 0.1, **WINDOW(0.3, 0.6)}, "mid32": {"lam": 0.032, **WINDOW(0.2, 0.5)},
               "mid100": {"lam": 0.1, **WINDOW(0.2, 0.5)}},
}


def run_batch(name: str, steps: int) -> None:
    """Trains batch ``name`` into ``OUT/name`` unless it is there already."""
    config = dataclasses.replace(PPO, env_id="Hopper-v5", total_timesteps=steps)
    base = PPOHParams(lr=3e-4, ent_coef=0.0)  # the discrete tasks' DSP defaults
    members = []
    for variant, fields in BATCHES[name].items():
        hp = base
        for field, value in fields.items():
            hp = set_hparam(hp, field, value)
        member = build_population(hp, {}, [0])[0]
        member.index, member.grid_point = len(members), {"method": variant}
        members.append(member)
    result = run_population(get_algo("ppo").make_train, config, members)
    write_run(OUT / name, "ppo", config, base, {"method": list(BATCHES[name])}, [0], result,
              command=f"python experiments/locomotion/box_defaults_study.py --batches {name}",
              variants=json.dumps(BATCHES[name]))


def print_batch(name: str) -> None:
    """Per variant of batch ``name``, from its run directory: greedy return, actor size, and the
    training return over blocks of a tenth of the iterations (``block_metrics``: the mean over the
    block's episodes; the last block may be shorter)."""
    summary = json.loads((OUT / name / "summary.json").read_text())
    metrics = read_metrics_csv(OUT / name / "metrics.csv")
    _, blocks = block_metrics(metrics, math.ceil(metrics["episodes"].shape[1] / 10))
    for i, record in enumerate(summary["members"]):
        print(f"{record['grid_point']['method']:>15}: greedy return {record['final_return']:7.0f}, actor "
              f"{'-'.join(map(str, record['actor']['alive_per_layer']))}, training return per tenth "
              f"{' '.join(f'{r:.0f}' for r in blocks['episode_return'][i])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="first,window")
    parser.add_argument("--steps", type=int, default=200_000)
    args = parser.parse_args()
    for name in args.batches.split(","):
        if not (OUT / name / "summary.json").is_file():
            run_batch(name, args.steps)
        print_batch(name)


if __name__ == "__main__":
    main()
