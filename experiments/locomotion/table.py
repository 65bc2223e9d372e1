"""The locomotion tables (Markdown on stdout) from ``run.py``'s run directories.

One table per agent x simulator x budget found under ``experiments/<env>/runs``; one row per method
(dense, DSP, random structured pruning at DSP's neuron count, a small dense actor of DSP's size):
the actor's size per seed, neurons and weights removed from the actor and from each critic, the
compact actor's parameters, the greedy return as an interquartile mean with a 95 %
stratified-bootstrap interval over seeds (rliable, 2,000 resamples) and as % of the dense IQM, and
what stopped DSP's pruning per layer. ``small`` counts as removed what its actor lacks next to the
full-width one.

Usage: python experiments/locomotion/table.py --env hopper [--machine TEXT]
           > experiments/hopper/results.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dspjax.train.seed_stats import iqm_interval

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: the shared runner
from phases import missing_baselines, records  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parents[1]
METHODS = ("dense", "dsp", "random", "small")


def removed(method: str, record: dict, network: str, full: dict) -> tuple[float, float]:
    """Neurons and weights removed from ``network`` of ``record``: measured by its masks, or for
    ``small`` against the full-width network ``full``."""
    net = record[network]
    if method == "small":
        return 1 - sum(net["alive_per_layer"]) / sum(full["alive_per_layer"]), \
            1 - net["dense_params"] / full["dense_params"]
    return net["neurons_removed"], net["weights_removed"]


def table(runs: Path) -> list[str]:
    by_method = records(runs)
    if "dense" not in by_method:
        return [f"## {runs.name}: not run yet\n"]
    summary, dense_record = by_method["dense"][0]
    actor, critics = summary["networks"][0], summary["networks"][1:]
    dense_iqm = iqm_interval(np.array([r["final_return"] for _, r in by_method["dense"]]))[0]
    header = (f"| method | seeds | {actor} size per seed | {actor}: neurons / weights removed | "
              + "".join(f"{c}: neurons / weights removed | " for c in critics)
              + f"compact {actor} parameters | return IQM [95 % CI] | % of dense IQM | per seed | stopped by |")
    lines = [f"## {summary['env_id']}, {summary['algo'].upper()}, {summary['total_timesteps']:,} steps "
             f"(`{runs.parent.parent.name}/runs/{runs.name}`)\n", header, "|---" * (header.count("|") - 1) + "|"]
    for method in METHODS:
        rows = by_method.get(method, [])
        if not rows:
            continue
        returns = np.array([r["final_return"] for _, r in rows])
        iqm, lo, hi = iqm_interval(returns)
        cells = [method, str(len(rows)), "; ".join("-".join(map(str, r[actor]["alive_per_layer"])) for _, r in rows)]
        for net in (actor, *critics):
            n, w = np.mean([removed(method, r, net, dense_record[net]) for _, r in rows], axis=0)
            cells.append(f"{100 * n:.1f} % / {100 * w:.1f} %")
        cells.append(f"{np.mean([r[actor]['bytes'] / 4 for _, r in rows]):,.0f}")
        cells.append(f"{iqm:.0f} [{lo:.0f}, {hi:.0f}]" if lo is not None else f"{iqm:.0f}")
        cells.append(f"{100 * iqm / dense_iqm:.0f} %")
        cells.append(", ".join(f"{x:.0f}" for x in returns))
        cells.append("; ".join("/".join(r[actor].get("stopped_by", [])) for _, r in rows) if method == "dsp" else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines + missing_baselines(by_method) + [""]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="hopper or walker2d")
    parser.add_argument("--machine", default=None, help="the machine that made the runs, printed on top")
    args = parser.parse_args()
    print(f"# DSP on {args.env}: PPO and SAC, MuJoCo and brax\n")
    print("Made by `python experiments/locomotion/run.py --tables <table> --steps <steps> --seeds <seeds>` "
          f"and `python experiments/locomotion/table.py --env {args.env}`; each table's directory names "
          "its agent, simulator and budget. The return is the greedy (mean) action's over 10 "
          "evaluation episodes at the end of training.\n")
    if args.machine:
        print(f"Machine: {args.machine}.\n")
    for runs in sorted((EXPERIMENTS / args.env / "runs").glob("*")):
        print("\n".join(table(runs)))


if __name__ == "__main__":
    main()
