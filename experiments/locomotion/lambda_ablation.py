"""Is it DSP's penalty or its choice of neurons? DSP at smaller λ beside a locomotion table's rows.

For one table of ``run.py`` (same agent, simulator, budget and seeds), DSP members with every
setting of the table's DSP row but λ (the pruning window and the rule unchanged): at λ 0 the rule
prunes on importance alone, with no penalty shrinking the network first. One population, run into
``experiments/<env>/lambda_ablation/<table>_<steps>k``; the printed table puts them beside the
table's own dense, DSP and random rows (IQM and 95 % stratified-bootstrap interval over seeds).

Usage: python experiments/locomotion/lambda_ablation.py --table walker2d_ppo_mujoco --steps 300000
           [--lams 0.01,0] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dspjax.train import build_population, set_hparam
from dspjax.train.run_dir import write_run
from dspjax.train.seed_stats import iqm_interval

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from phases import done, train  # noqa: E402
from run import EXPERIMENTS, table  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--lams", default="0.01,0")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    runs, (algo, config, base) = table(args.table, args.steps)
    out = EXPERIMENTS / args.table.split("_")[0] / "lambda_ablation" / f"{args.table}_{args.steps // 1000}k"
    lams = [float(x) for x in args.lams.split(",")]
    if not done(out):
        members = build_population(set_hparam(base, "method", "dsp"), {"lam": lams}, range(args.seeds))
        result = train(out, algo, config, members)
        write_run(out, algo, config, base, {"lam": lams}, list(range(args.seeds)), result,
                  command=f"python experiments/locomotion/lambda_ablation.py --table {args.table} "
                          f"--steps {args.steps} --lams {args.lams} --seeds {args.seeds}")
    rows = []
    for path in [runs / "dense_dsp" / "summary.json", runs / "random" / "summary.json", out / "summary.json"]:
        summary = json.loads(path.read_text())
        policy = summary["policy_network"]
        by_row = {}
        for r in summary["members"]:
            point = r["grid_point"]
            name = point["method"] if "method" in point else f"dsp, λ {point['lam']:g}"
            if name == "dsp":
                name = f"dsp, λ {float(base.dsp.lam):g} (the table's)"
            by_row.setdefault(name, []).append(r)
        rows += [(name, rs, policy) for name, rs in by_row.items()]
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
