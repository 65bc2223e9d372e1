"""Is it DSP's penalty or its choice of neurons? DSP at smaller λ beside a locomotion table's rows.

For one table of ``run.py`` (same agent, simulator, budget and seeds), two populations, run into
the table's runs directory, ``experiments/<env>/runs/<agent>_<simulator>_<steps>k/lambda_ablation/
{lam,choice}``:

- ``lam``: DSP members with every setting of the table's DSP row but λ (the pruning window and the
  rule unchanged): at λ 0 the rule prunes on importance alone, with no penalty shrinking the network
  first, and finds its own size;
- ``choice``: DSP's importance (the EMA of §2) with λ 0 and the ``schedule`` threshold to each
  seed's neuron count found by the table's DSP row, spread evenly over the layers: the random row
  of the table with DSP's choice of neurons in place of random scores. Against random it measures
  the choice; against the table's DSP row, the penalty (and the rule's own split over the layers)
  at the same neuron count.

The printed table puts them beside the table's own dense, DSP and random rows (IQM and 95 %
stratified-bootstrap interval over seeds).

Usage: python experiments/locomotion/lambda_ablation.py --table walker2d_ppo_mujoco --steps 300000
           [--lams 0.01,0] [--seeds 5] [--machine TEXT] > experiments/walker2d/lambda_ablation.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dspjax.train import build_population, set_hparam
from dspjax.train.population import get_hparam
from dspjax.train.run_dir import write_run
from dspjax.train.seed_stats import iqm_interval

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from phases import done, found_size_members, found_sizes, random_to_found_size, train  # noqa: E402
from run import table  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--lams", default="0.01,0")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--machine", default=None, help="the machine that made the runs, printed on top")
    args = parser.parse_args()
    runs, (algo, config, base) = table(args.table, args.steps)
    out = runs / "lambda_ablation"
    lams = [float(x) for x in args.lams.split(",")]
    command = (f"python experiments/locomotion/lambda_ablation.py --table {args.table} "
               f"--steps {args.steps} --lams {args.lams} --seeds {args.seeds}")
    seeds = list(range(args.seeds))
    if not done(out / "lam"):
        members = build_population(set_hparam(base, "method", "dsp"), {"lam": lams}, seeds)
        result = train(out / "lam", algo, config, members)
        write_run(out / "lam", algo, config, base, {"lam": lams}, seeds, result, command=command)
    if not done(out / "choice"):
        choice = set_hparam(random_to_found_size(algo, base), "importance",
                            get_hparam(base, "importance"))
        members = found_size_members(config, choice, found_sizes(runs / "dense_dsp"), seeds, "choice")
        result = train(out / "choice", algo, config, members)
        write_run(out / "choice", algo, config, choice, {"method": ["choice"]}, seeds, result,
                  command=command)
    rows = []
    for path in [runs / "dense_dsp", runs / "random", out / "lam", out / "choice"]:
        path = path / "summary.json"
        summary = json.loads(path.read_text())
        policy = summary["policy_network"]
        by_row = {}
        for r in summary["members"]:
            point = r["grid_point"]
            name = point["method"] if "method" in point else f"dsp, λ {point['lam']:g}"
            if name == "dsp":
                name = f"dsp, λ {float(base.dsp.lam):g} (the table's)"
            elif name == "choice":
                name = "dsp's importance, λ 0, schedule to dsp's neuron count"
            by_row.setdefault(name, []).append(r)
        rows += [(name, rs, policy) for name, rs in by_row.items()]
    print(f"# Penalty or choice? DSP's λ and its choice of neurons on {args.table}\n\n"
          f"Made by `{command}` (reads the table's runs, trains only what is missing). Greedy return "
          "over 10 episodes at the end of training; IQM and 95 % stratified-bootstrap interval over "
          "seeds (rliable).\n")
    if args.machine:
        print(f"Machine: {args.machine}.\n")
    print(f"| {args.table}, {args.steps:,} steps | actor size per seed | actor neurons removed | "
          "return IQM [95 % CI] | per seed |\n|---|---|---|---|---|")
    for name, rs, policy in rows:
        rs = sorted(rs, key=lambda r: r["seed"])
        returns = [r["final_return"] for r in rs]
        iqm, lo, hi = iqm_interval(np.array(returns))
        print(f"| {name} | {'; '.join('-'.join(map(str, r[policy]['alive_per_layer'])) for r in rs)} | "
              f"{100 * np.mean([r[policy]['neurons_removed'] for r in rs]):.1f} % | "
              f"{iqm:.0f} [{lo:.0f}, {hi:.0f}] | {', '.join(f'{x:.0f}' for x in returns)} |")


if __name__ == "__main__":
    main()
