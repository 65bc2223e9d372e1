"""Turns run directories into the results table of this experiment (Markdown on stdout).

One row per method: evaluation return (mean ± std over seeds, each seed's return being the mean over
its evaluation episodes), neurons and weights removed from the actor (the deployed policy) and the
critic, and the compact actor's parameter count. Usage: python summarize.py RUN_DIR [RUN_DIR ...]
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def rows_by_method(run_dirs):
    by_method = defaultdict(list)
    for run_dir in run_dirs:
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
        for record in summary["members"]:
            by_method[record["grid_point"].get("method", "dsp")].append((summary, record))
    return by_method


def compact_params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def main(run_dirs):
    by_method = rows_by_method(run_dirs)
    first = next(iter(by_method.values()))[0][0]
    print(f"# {first['env_id']}, {first['algo'].upper()}, {first['total_timesteps']:,} steps per run\n")
    print("| method | seeds | return (mean ± std) | actor neurons removed | actor weights removed "
          "| critic neurons removed | critic weights removed | actor parameters (compact / dense) |")
    print("|---|---|---|---|---|---|---|---|")
    for method, entries in by_method.items():
        records = [r for _, r in entries]
        ret = np.array([r["final_return"] for r in records])
        fig = lambda net, k: 100 * np.mean([r[net][k] for r in records])  # noqa: E731
        params = np.mean([compact_params(r["actor"]["compact_sizes"]) for r in records])
        if method == "gmp":  # unstructured: the layers keep their shape, the weights are sparse
            params = np.mean([(1 - r["actor"]["weights_removed"]) * r["actor"]["dense_params"]
                              for r in records])
        dense = records[0]["actor"]["dense_params"]
        diverged = sum(r["diverged"] for r in records)
        print(f"| {method} | {len(records)}{f' ({diverged} diverged)' if diverged else ''} "
              f"| {ret.mean():.1f} ± {ret.std():.1f} "
              f"| {fig('actor', 'neurons_removed'):.1f} % | {fig('actor', 'weights_removed'):.2f} % "
              f"| {fig('critic', 'neurons_removed'):.1f} % | {fig('critic', 'weights_removed'):.2f} % "
              f"| {params:,.0f} / {dense:,} |")
    print("\nReproduce: `bash experiments/cartpole/run.sh` (from the repository root, dspjax installed).")


if __name__ == "__main__":
    main(sys.argv[1:])
