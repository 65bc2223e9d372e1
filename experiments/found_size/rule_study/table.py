"""Per-member table of a found-size run: grid point, seed, alive actor neurons per layer, greedy
return, % of the dense return, whether a layer ended at the min_alive floor, and, from metrics.csv,
the iteration of each layer's last pruning cut (does pruning stop by itself?).

Usage: python experiments/found_size/rule_study/table.py RUN_DIR DENSE_RUN_DIR [MIN_ALIVE]
"""

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def last_cuts(run_dir):
    """member -> per layer, (iteration of the last change of the alive count, total iterations)."""
    rows = defaultdict(list)
    with open(Path(run_dir) / "metrics.csv") as f:
        for r in csv.DictReader(f):
            rows[int(r["member"])].append(r)
    out = {}
    for m, rs in rows.items():
        rs.sort(key=lambda r: int(r["iteration"]))
        layers = sorted(k for k in rs[0] if k.startswith("actor_alive_layer"))
        last = []
        for k in layers:
            vals = [int(float(r[k])) for r in rs]
            change = [i for i in range(1, len(vals)) if vals[i] != vals[i - 1]]
            last.append(int(rs[change[-1]]["iteration"]) if change else 0)
        out[m] = (last, int(rs[-1]["iteration"]) + 1)
    return out


def main():
    run_dir, dense_dir = sys.argv[1], sys.argv[2]
    floor = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    r0 = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    members = json.loads((Path(run_dir) / "summary.json").read_text())["members"]
    dense = np.mean([r["final_return"] for r in json.loads((Path(dense_dir) / "summary.json").read_text())["members"]])
    cuts = last_cuts(run_dir)
    pct = lambda r: 100 * (r - r0) / (dense - r0)  # noqa: E731
    print(f"dense return (mean over seeds): {dense:.1f}; % of dense with R0 = {r0:g}\n")
    print("| setting | seed | alive actor per layer | return | % of dense | at floor | last cut (iteration / of) |")
    print("|---|---|---|---|---|---|---|")
    groups = defaultdict(list)
    for r in members:
        setting = ", ".join(f"{k}={v}" for k, v in r["grid_point"].items()) or "-"
        alive = r["actor"]["alive_per_layer"]
        at_floor = [a <= floor for a in alive]
        last, total = cuts.get(r["member"], ([], 0))
        groups[setting].append((r["final_return"], alive))
        print(f"| {setting} | {r['seed']} | {'-'.join(map(str, alive))} | {r['final_return']:.1f} | "
              f"{pct(r['final_return']):.1f} % | {'/'.join('yes' if f else 'no' for f in at_floor)} | "
              f"{'/'.join(map(str, last))} of {total} |")
    print("\n| setting | alive per layer (mean) | return (mean ± std) | % of dense |")
    print("|---|---|---|---|")
    for setting, rs in groups.items():
        ret = np.array([x[0] for x in rs])
        alive = np.mean([x[1] for x in rs], axis=0)
        print(f"| {setting} | {'-'.join(f'{a:.1f}' for a in alive)} | {ret.mean():.1f} ± {ret.std():.1f} | "
              f"{pct(ret.mean()):.1f} % |")


if __name__ == "__main__":
    main()
