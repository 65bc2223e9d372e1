"""The report of a run directory: the per-member table, the seed-statistics table (one row per
grid point, its seeds' return as an IQM with a 95 % interval) and the plots (``dspjax report``
redraws them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dspjax.train.run_dir import networks_of, read_metrics_csv, write_atomically
from dspjax.train.seed_stats import BOOTSTRAP_SEED, REPS, iqm_interval


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
    return _columns(header, rows)


def seed_groups(summary: dict) -> list[list[dict]]:
    """The member records grouped by grid point (every hyperparameter the run varied except the
    seed), in the order of each grid point's first member."""
    groups = {}
    for r in summary["members"]:
        groups.setdefault(json.dumps(r["grid_point"], sort_keys=True), []).append(r)
    return list(groups.values())


def seed_stats(summary: dict) -> dict:
    """The content of ``seed_stats.json``: per grid point, its seeds, the final return's IQM over
    them with a 95 % stratified-bootstrap interval (``seed_stats.iqm_interval``; null for one
    seed), and the policy network's neurons and weights removed and alive neurons per layer, each
    the mean over the seeds."""
    net = networks_of(summary)[0]
    groups = []
    for records in seed_groups(summary):
        iqm = iqm_interval([r["final_return"] for r in records])
        groups.append({
            "grid_point": records[0]["grid_point"], "label": member_label(records[0]),
            "seeds": [r["seed"] for r in records], "members": [r["member"] for r in records],
            "return_iqm": iqm.iqm, "return_ci95": None if iqm.low is None else [iqm.low, iqm.high],
            "neurons_removed_mean": float(np.mean([r[net]["neurons_removed"] for r in records])),
            "weights_removed_mean": float(np.mean([r[net]["weights_removed"] for r in records])),
            "alive_per_layer_mean": np.mean([r[net]["alive_per_layer"] for r in records], 0).tolist(),
            "diverged": sum(bool(r["diverged"]) for r in records)})
    return {"statistic": f"return: IQM over seeds, 95 % stratified-bootstrap interval (rliable, {REPS} "
                         f"resamples, NumPy seed {BOOTSTRAP_SEED}); {net}: mean over seeds",
            "network": net, "groups": groups}


def format_seed_stats(stats: dict) -> str:
    """A text table of ``seed_stats(summary)``, one row per grid point: seeds, the return's IQM
    and 95 % interval (``-`` for one seed), and the policy network's removed % and alive neurons
    per layer (means over seeds)."""
    net = stats["network"]
    header = ["hyperparameters", "seeds", "return IQM", "95% CI", f"{net} neurons-% (mean)",
              f"{net} weights-% (mean)", f"{net} alive (mean)", ""]
    rows = []
    for g in stats["groups"]:
        ci = "-" if g["return_ci95"] is None else "[{:.1f}, {:.1f}]".format(*g["return_ci95"])
        rows.append([g["label"], str(len(g["seeds"])), f"{g['return_iqm']:.1f}", ci,
                     f"{100 * g['neurons_removed_mean']:.1f}", f"{100 * g['weights_removed_mean']:.1f}",
                     "-".join(f"{a:.0f}" for a in g["alive_per_layer_mean"]),
                     f"{g['diverged']} DIVERGED" if g["diverged"] else ""])
    return _columns(header, rows)


def _columns(header: list[str], rows: list[list[str]]) -> str:
    """``header`` and ``rows`` as left-aligned text columns, a rule under the header."""
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def write_seed_stats(run_dir, summary: dict) -> tuple[dict, list[Path]]:
    """Writes ``seed_stats.json`` (``seed_stats(summary)``) and ``return_iqm.png`` (each grid
    point's return IQM against its policy weights removed, the 95 % interval as error bars) in
    ``run_dir``; returns the statistics and the two paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    stats = seed_stats(summary)
    write_atomically(run_dir / "seed_stats.json", json.dumps(stats, indent=2))
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, g in enumerate(stats["groups"]):
        low, high = g["return_ci95"] or (g["return_iqm"], g["return_iqm"])
        ax.errorbar(100 * g["weights_removed_mean"], g["return_iqm"], capsize=3, fmt="o",
                    yerr=[[g["return_iqm"] - low], [high - g["return_iqm"]]], color=plt.cm.tab10(i % 10),
                    label=f"{g['label']} ({len(g['seeds'])} seed{'s' * (len(g['seeds']) > 1)})")
    ax.set(xlabel=f"policy ({stats['network']}) weights removed, mean over seeds [%]",
           ylabel="final return: IQM over seeds, 95 % CI", title="return vs compression per grid point")
    ax.legend(fontsize=7)
    return stats, [run_dir / "seed_stats.json", _save(fig, run_dir / "return_iqm.png")]


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
