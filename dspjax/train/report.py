"""Plots and the per-member table of a run directory (``dspjax report`` redraws the plots)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dspjax.train.run_dir import networks_of, read_metrics_csv


def member_label(record: dict) -> str:
    point = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in record["grid_point"].items())
    return point or "default"


def stop_reasons(network_record: dict) -> str:
    """What ended each hidden layer's pruning, e.g. ``rule/floor``: the threshold rule, or the
    ``min_alive`` floor (it kept neurons the rule would have removed); ``-`` for a network with
    nothing removed (a dense baseline); ``?`` for a run written before it was recorded."""
    if network_record.get("neurons_removed") == 0:
        return "-"
    return "/".join(network_record.get("stopped_by", ["?"]))


def format_table(summary: dict) -> str:
    """A text table, one row per member: hyperparameters, final return, removed % per network
    (every network of the agent, the policy network first: actor and critic, or q), and the
    policy network's alive neurons per layer and what stopped each layer's pruning."""
    nets = networks_of(summary)
    header = ["#", "seed", "hyperparameters", "return"]
    for net in nets:
        header += [f"{net} neurons-%", f"{net} weights-%"]
    header += [f"{nets[0]} alive", "stopped by", ""]
    rows = []
    for r in summary["members"]:
        row = [str(r["member"]), str(r["seed"]), member_label(r), f"{r['final_return']:.1f}"]
        for net in nets:
            row += [f"{100 * r[net]['neurons_removed']:.1f}", f"{100 * r[net]['weights_removed']:.1f}"]
        row += ["-".join(map(str, r[nets[0]]["alive_per_layer"])), stop_reasons(r[nets[0]])]
        rows.append(row + ["DIVERGED" if r["diverged"] else ""])
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def draw_plots(run_dir) -> list[Path]:
    """return_curves.png, alive_neurons.png and return_vs_weights_removed.png in ``run_dir``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = read_metrics_csv(run_dir / "metrics.csv")
    nets = networks_of(summary)
    labels = [member_label(r) for r in summary["members"]]
    colours = {lab: plt.cm.tab10(i % 10) for i, lab in enumerate(dict.fromkeys(labels))}
    steps = metrics["timesteps"]
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, lab in enumerate(labels):
        ended = metrics["episodes"][i] > 0  # iterations in which an episode ended
        ax.plot(steps[i][ended], _smooth(metrics["episode_return"][i][ended]), color=colours[lab],
                alpha=0.8, label=lab if labels.index(lab) == i else None)
    ax.set(xlabel="environment steps", ylabel="episode return (training)",
           title=f"{summary['env_id']}: return over training")
    ax.legend(fontsize=7)
    paths.append(_save(fig, run_dir / "return_curves.png"))

    fig, axes = plt.subplots(1, len(nets), figsize=(5 * len(nets), 4), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, net in zip(axes, nets):
        for i, lab in enumerate(labels):
            ax.plot(steps[i], metrics[f"{net}_alive_neurons"][i], color=colours[lab], alpha=0.8,
                    label=lab if labels.index(lab) == i else None)
        ax.set(xlabel="environment steps", ylabel="alive hidden neurons", title=net, yscale="log")
    axes[0].legend(fontsize=7)
    paths.append(_save(fig, run_dir / "alive_neurons.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (lab, r) in enumerate(zip(labels, summary["members"])):
        ax.scatter(100 * r[nets[0]]["weights_removed"], r["final_return"], color=colours[lab],
                   label=lab if labels.index(lab) == i else None)
    ax.set(xlabel=f"policy ({nets[0]}) weights removed [%]", ylabel="final return (evaluation)",
           title="return vs compression across members")
    ax.legend(fontsize=7)
    paths.append(_save(fig, run_dir / "return_vs_weights_removed.png"))
    return paths


def _smooth(x, window=10):
    """Moving average over the last ``window`` values (fewer at the start)."""
    x = np.asarray(x, float)
    total = np.cumsum(np.concatenate([[0.0], x]))
    start = np.maximum(np.arange(1, len(x) + 1) - window, 0)
    return (total[1:] - total[start]) / (np.arange(1, len(x) + 1) - start)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path
