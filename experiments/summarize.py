"""Turns run directories into an experiment's results table (Markdown on stdout).

One row per method: evaluation return (greedy policy; mean ± std over seeds, each seed's return being
the mean over its evaluation episodes) and, when a dense baseline is among the runs, that return as a
percentage of the dense one; the training return at the end (the exploring policy: the mean episode
return over the last 10 iterations in which episodes ended, averaged over seeds); then neurons and
weights removed from every network of the agent, the policy network first (PPO: actor, then
critic; DQN: q), and the compact policy's parameter count.

Usage: python experiments/summarize.py RUN_DIR [RUN_DIR ...] [--reproduce "COMMAND"]
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def row_label(method: str, run_dir, methods_per_dir: dict) -> str:
    """A row's name: the method, and the run directory's name when another directory has it too."""
    shared = sum(method in methods for methods in methods_per_dir.values()) > 1
    return f"{method} ({Path(run_dir).name})" if shared else method


def rows_by_method(run_dirs):
    summaries = {d: json.loads((Path(d) / "summary.json").read_text()) for d in run_dirs}
    methods = {d: {r["grid_point"].get("method", "dsp") for r in s["members"]} for d, s in summaries.items()}
    by_method = defaultdict(list)
    for run_dir, summary in summaries.items():
        for record in summary["members"]:
            label = row_label(record["grid_point"].get("method", "dsp"), run_dir, methods)
            by_method[label].append((summary, record))
    return by_method


def networks_of(record) -> list[str]:
    """The networks a member record describes, the policy network (actor or q) first."""
    nets = [k for k, v in record.items() if isinstance(v, dict) and "neurons_removed" in v]
    return sorted(nets, key=lambda n: n not in ("actor", "q"))


def compact_params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--reproduce", default=None, help="the command that made the runs")
    args = parser.parse_args(argv)
    by_method = rows_by_method(args.run_dirs)
    first_summary, first_record = next(iter(by_method.values()))[0]
    nets = networks_of(first_record)
    policy = nets[0]
    returns = {m: np.array([r["final_return"] for _, r in e]) for m, e in by_method.items()}
    dense = returns.get("dense")
    print(f"# {first_summary['env_id']}, {first_summary['algo'].upper()}, "
          f"{first_summary['total_timesteps']:,} steps per run\n")
    head = ["method", "seeds", "return (mean ± std)", "per seed"]
    if dense is not None:
        head.append("% of dense return")
    head.append("train return at the end")
    for net in nets:
        head += [f"{net} neurons removed", f"{net} weights removed"]
    head.append(f"{policy} parameters (compact / dense)")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for method, entries in by_method.items():
        records = [r for _, r in entries]
        ret = returns[method]
        fig = lambda net, k: 100 * np.mean([r[net][k] for r in records])  # noqa: E731
        params = np.mean([compact_params(r[policy]["compact_sizes"]) for r in records])
        if method == "gmp":  # unstructured: the layers keep their shape, the weights are sparse
            params = np.mean([(1 - r[policy]["weights_removed"]) * r[policy]["dense_params"]
                              for r in records])
        diverged = sum(r["diverged"] for r in records)
        cells = [method, f"{len(records)}{f' ({diverged} diverged)' if diverged else ''}",
                 f"{ret.mean():.1f} ± {ret.std():.1f}", " / ".join(f"{x:.1f}" for x in ret)]
        if dense is not None:
            cells.append(f"{100 * ret.mean() / dense.mean():.1f} %")
        cells.append(f"{np.mean([r['train_return_last'] for r in records]):.1f}")
        for net in nets:
            cells += [f"{fig(net, 'neurons_removed'):.1f} %", f"{fig(net, 'weights_removed'):.2f} %"]
        cells.append(f"{params:,.0f} / {records[0][policy]['dense_params']:,}")
        print("| " + " | ".join(cells) + " |")
    print("\nReturn: the greedy policy, mean over each seed's evaluation episodes. Train return at the end: "
          "the exploring policy's mean episode return over the last 10 iterations in which episodes ended.")
    if args.reproduce:
        print(f"\nReproduce: `{args.reproduce}` (from the repository root, dspjax installed).")


if __name__ == "__main__":
    main()
