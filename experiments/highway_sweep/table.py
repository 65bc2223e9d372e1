"""The highway sweep's tables (``results.md``) and Pareto plot (``pareto.png``) from ``runs/sweep``
(``run.py``), the two evaluation files of ``evaluate.py`` and ``behaviour.py``'s action shares.

Each configuration's return is the interquartile mean over its seeds of each seed's mean return
over the evaluation episodes, with a 95 % stratified-bootstrap interval (rliable, from a fixed
seed). Usage: python experiments/highway_sweep/table.py [--machine TEXT] > experiments/highway_sweep/results.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from dspjax.train.seed_stats import iqm_interval

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from evaluate import DENSITIES, RUN, configuration  # noqa: E402


def _interval(values) -> str:
    point, low, high = iqm_interval(np.asarray(values))
    return f"{point:.1f} [{low:.1f}, {high:.1f}]"


def configurations(cfg: dict, summary: dict, port: dict) -> dict[str, dict]:
    """Per configuration: seeds, sizes, compression and per-seed returns at every density."""
    net = summary["policy_network"]
    out = defaultdict(lambda: defaultdict(list))
    for m, record in zip(cfg["members"], summary["members"]):
        c = out[configuration(m)]
        c["seed"].append(m["seed"])
        c["sizes"].append(record[net]["alive_per_layer"])
        c["neurons_removed"].append(record[net]["neurons_removed"])
        c["weights_removed"].append(record[net]["weights_removed"])
        c["floored"].append("floor" in record[net]["stopped_by"])
        for density in DENSITIES:
            c[density].append(float(np.mean(port[str(density)][m["member"]])))
    return out


def _order(name: str):
    """dense, then dsp by (τ, λ), then random by k."""
    method, *values = name.split()
    return ({"dense": 0, "dsp": 1, "random": 2}[method], [float(v.split("=")[1]) for v in values])


def sweep_table(configs: dict) -> list[str]:
    lines = ["| configuration | seeds | Q size per layer | neurons / weights removed | layers at the floor | "
             + " | ".join(f"return at density {d:g}: IQM [95 % CI]" for d in DENSITIES) + " |",
             "|---" * (5 + len(DENSITIES)) + "|"]
    for name in sorted(configs, key=_order):
        c = configs[name]
        sizes = np.array(c["sizes"])
        size = " / ".join(f"{lo}–{hi}" if lo != hi else f"{lo}" for lo, hi in zip(sizes.min(0), sizes.max(0)))
        lines.append(f"| {name} | {len(c['seed'])} | {size} | {100 * np.mean(c['neurons_removed']):.1f} % / "
                     f"{100 * np.mean(c['weights_removed']):.2f} % | {sum(c['floored'])} of {len(c['seed'])} | "
                     + " | ".join(_interval(c[d]) for d in DENSITIES) + " |")
    return lines


def pareto_front(configs: dict) -> list[str]:
    """DSP configurations no other DSP configuration beats on both IQM return (density 1) and mean
    weights removed."""
    points = {n: (iqm_interval(np.array(c[1.0]))[0], np.mean(c["weights_removed"]))
              for n, c in configs.items() if n.startswith("dsp")}
    return [n for n, (r, w) in points.items()
            if not any(r2 >= r and w2 >= w and (r2, w2) != (r, w) for r2, w2 in points.values())]


def highway_env_table(cfg: dict, real: dict) -> list[str]:
    members = {m["member"]: m for m in cfg["members"]}
    per = defaultdict(lambda: defaultdict(list))
    for key, returns in real["members"].items():
        member, density = key.split("@")
        per[configuration(members[int(member)])][float(density)].append(float(np.mean(returns)))
    lines = ["| configuration | seeds | " + " | ".join(f"density {d:g}: IQM [95 % CI]" for d in DENSITIES) + " |",
             "|---" * (2 + len(DENSITIES)) + "|"]
    for name in sorted(per, key=_order):
        lines.append(f"| {name} | {len(per[name][1.0])} | "
                     + " | ".join(_interval(per[name][d]) if per[name][d] else "–" for d in DENSITIES) + " |")
    return lines


def behaviour_table(behaviour: dict) -> list[str]:
    """Per configuration: the share of FASTER and SLOWER among the greedy actions and the crash
    rate (mean over seeds) at every density (``behaviour.py``)."""
    faster, slower = behaviour["actions"].index("FASTER"), behaviour["actions"].index("SLOWER")
    per_density = behaviour["densities"]
    lines = ["| configuration | FASTER / SLOWER among actions (density 1) | "
             + " | ".join(f"crash rate at density {d:g}" for d in DENSITIES) + " |",
             "|---" * (2 + len(DENSITIES)) + "|"]
    for name in sorted(per_density[str(DENSITIES[0])], key=_order):
        share = per_density[str(DENSITIES[0])][name]["action_share"]
        lines.append(f"| {name} | {100 * share[faster]:.0f} % / {100 * share[slower]:.0f} % | "
                     + " | ".join(f"{np.mean(per_density[str(d)][name]['crash_rate_per_seed']):.2f}"
                                  for d in DENSITIES) + " |")
    return lines


def draw_pareto(configs: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(DENSITIES), figsize=(4.2 * len(DENSITIES) + 2.5, 4.2), sharey=True)
    lambdas = sorted({n.split("λ=")[1] for n in configs if n.startswith("dsp")}, key=float)
    first_random = min((n for n in configs if n.startswith("random")), default=None)
    markers = dict(zip(sorted({n.split()[1] for n in configs if n.startswith("dsp")}), "osD^v<>"))
    for ax, density in zip(axes, DENSITIES):
        dense = iqm_interval(np.array(configs["dense"][density]))
        ax.axhspan(dense[1], dense[2], color="0.85", label="dense, 95 % CI" if density == DENSITIES[0] else None)
        ax.axhline(dense[0], color="0.4", lw=1)
        for name, c in configs.items():
            r, lo, hi = iqm_interval(np.array(c[density]))
            w = 100 * (1 - np.mean(c["weights_removed"]))
            if name.startswith("dsp"):
                colour = plt.cm.viridis(lambdas.index(name.split("λ=")[1]) / max(1, len(lambdas) - 1))
                ax.errorbar(w, r, [[r - lo], [hi - r]], fmt=markers[name.split()[1]], color=colour, ms=6,
                            capsize=2, label=name if density == DENSITIES[0] else None)
            elif name.startswith("random"):
                first = name == first_random and density == DENSITIES[0]
                ax.errorbar(w, r, [[r - lo], [hi - r]], fmt="x", color="tab:red", ms=7, capsize=2,
                            label="random structured" if first else None)
        ax.set_title(f"vehicles_density {density:g}")
        ax.set_xlabel("Q-network weights kept [%, log scale]")
        ax.set_xscale("log")
        ax.set_xlim(0.2, 30)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("return, IQM over seeds (95 % CI)")
    fig.legend(loc="center right", fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.83, 1))
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=RUN)
    parser.add_argument("--evals", type=Path, default=HERE, help="where evaluate.py wrote its files")
    parser.add_argument("--machine", default=None)
    args = parser.parse_args()
    cfg = json.loads((args.run / "config.json").read_text())
    summary = json.loads((args.run / "summary.json").read_text())
    port = json.loads((args.evals / "eval_port.json").read_text())
    configs = configurations(cfg, summary, port["returns"])
    real = json.loads((args.evals / "eval_highway_env.json").read_text())
    draw_pareto(configs, args.evals / "pareto.png")
    front = pareto_front(configs)
    print("# The highway sweep: DSP schedules against dense and random pruning, in denser traffic\n")
    print(f"DQN (highway-env's example settings, {summary['total_timesteps']:,} steps, 256-256 Q network) on "
          "`jax:highway-fast-v0`, dspjax's step-exact JAX port of highway-env (docs/highway.md); "
          f"{len(cfg['members'])} members in one population, one compiled program "
          f"({summary['run_seconds'] / 60:.0f} min of training after {summary['compile_seconds']:.0f} s of "
          "compilation). DSP: the `relative` threshold with final τ (`c_relative`) and λ swept, the rest "
          "`DQN_DSP`; random: random scores and the `schedule` threshold keeping a fraction k of each "
          f"layer. Returns: each seed's greedy policy over {port['episodes']} episodes in the port, the "
          "same scenes for every member, at highway-env's `vehicles_density` 1 (trained) and denser.\n")
    if args.machine:
        print(f"Machine: {args.machine}\n")
    print("From `python experiments/highway_sweep/run.py`, `python experiments/highway_sweep/evaluate.py` "
          "and `python experiments/highway_sweep/table.py`.\n")
    print("## Every configuration in the port\n")
    print("\n".join(sweep_table(configs)))
    print(f"\nPareto front of DSP (IQM return at density 1 against weights removed): {', '.join(sorted(front))}.\n")
    print("![return against weights removed](pareto.png)\n")
    behaviour_path = args.evals / "behaviour.json"
    if behaviour_path.is_file():
        behaviour = json.loads(behaviour_path.read_text())
        print("## What the policies do\n")
        print(f"From `python experiments/highway_sweep/behaviour.py`: the greedy policies on the same "
              f"{behaviour['episodes']} episodes per seed as above. highway-fast-v0's reward pays 0.1 per step "
              "for the right lane and up to 0.4 for speed between 20 and 30 m/s (normalised with the -1 of a "
              "crash to [0, 1]): a car that keeps right at 20 m/s and never crashes earns 22 in 30 steps.\n")
        print("\n".join(behaviour_table(behaviour)) + "\n")
    print("## The best points and dense on highway-env itself\n")
    print(f"Chosen from the port at density 1: {', '.join(real['chosen'])} (the most weights removed at "
          "≥ 95 % of dense's IQM, and the highest IQM). Each seed's greedy policy on highway-env's own "
          f"`highway-fast-v0` through the host bridge, {len(next(iter(real['members'].values())))} episodes.\n")
    print("\n".join(highway_env_table(cfg, real)))


if __name__ == "__main__":
    main()
