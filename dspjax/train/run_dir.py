"""A run directory: everything one population run leaves behind.

    config.json      the agent (``algo``) and its networks, resolved static config, base
                     hyperparameters, sweep, seeds, members, the dspjax version, and the command
                     line that ``dspjax train --resume`` re-reads; written before compiling
    checkpoints/     training checkpoints (``checkpoints.py``): the whole population state every
                     segment, the last few kept; what ``--resume`` goes on from
    metrics.csv      per member and iteration: return, losses, alive neurons, compression (runs
                     longer than 2,000 iterations: per block of iterations, 2,000 rows at most);
                     rewritten as each segment finishes
    summary.json     per member: final return over evaluation episodes and compression figures
                     of every network of the agent (actor and critic, or q); written at the end
    checkpoint/      orbax checkpoint of the final networks and masks of every member
    *.png            plots (``dspjax report`` redraws them)
    seed_stats.json  per grid point: the return's IQM over seeds and its 95 % interval, the policy
                     network's compression (``dspjax report`` writes it, and return_iqm.png)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from pathlib import Path

import jax
import numpy as np

from dspjax import __version__
from dspjax.hparams import ConfigError
from dspjax.pruning import chain_layers, compact, compression_stats, dense_param_count
from dspjax.train.algos import get_algo
from dspjax.train.population import PopulationResult, describe_member, hparam_specs

NETWORK_FIGURES = ("neurons_removed", "weights_removed", "alive_neurons", "flops", "bytes")


def all_hparams(hp) -> dict:
    """Every sweepable hyperparameter of ``hp`` by flat name, readable (choice names)."""
    return describe_member(hp, list(hparam_specs(type(hp))))


def _network_summary(result: PopulationResult, i: int, net: str, chain) -> dict:
    """Member ``i``'s network ``net`` (declared by ``chain``) at the end: §5 figures, alive neurons
    per layer, what stopped each layer's pruning, its compact sizes."""
    # Only this network's layers and pruner, not the whole state (a DQN member's replay buffer).
    layers, pruner = jax.tree.map(lambda x: np.asarray(x[i]), (
        chain_layers(result.final_state.params, chain), result.final_state.dsp.pruners[net]))
    stats = compression_stats(layers, pruner.neuron_masks, pruner.weight_masks)
    out = {k: float(stats[k]) for k in NETWORK_FIGURES}
    out["alive_per_layer"] = [int(np.sum(m)) for m in pruner.neuron_masks]
    out["stopped_by"] = ["floor" if f else "rule" for f in pruner.floored]
    out["dense_params"] = dense_param_count(layers)
    small = compact(layers, pruner.neuron_masks)
    out["compact_sizes"] = [int(small[0]["kernel"].shape[0])] + [int(layer["bias"].shape[-1])
                                                                for layer in small]
    return out


def summarize(result: PopulationResult, networks: dict) -> list[dict]:
    """One record per member: grid point, seed, final return, compression per network
    (``networks``: the agent's declaration ``{name: DenseChain}``, e.g. actor and critic, or q)."""
    rows = []
    for m in result.members:
        i = m.index
        returns = result.eval_returns[i]
        episodes = result.metrics["episodes"][i]
        train_returns = result.metrics["episode_return"][i][episodes > 0]
        rows.append({
            "member": i, "seed": m.seed, "grid_point": m.grid_point,
            "final_return": float(np.mean(returns)), "final_return_std": float(np.std(returns)),
            "eval_returns": [float(r) for r in returns],
            "train_return_last": float(np.mean(train_returns[-10:])) if len(train_returns) else None,
            "diverged": bool(result.metrics["diverged"][i, -1]),
            **{net: _network_summary(result, i, net, chain) for net, chain in networks.items()
               if chain.mask_of is None},
        })
    return rows


def run_config(algo: str, config, base_hp, sweep: dict, seeds, members, **extra) -> dict:
    """The content of ``config.json``; ``extra`` keys are added (e.g. the command line)."""
    networks = get_algo(algo).networks
    return {"algo": algo, "networks": list(networks), "config": dataclasses.asdict(config),
            "base_hparams": all_hparams(base_hp),
            "sweep": {k: [str(v) for v in vals] for k, vals in sweep.items()},
            "seeds": [int(s) for s in seeds],
            "members": [{"member": m.index, "seed": m.seed, "grid_point": m.grid_point,
                         "hparams": all_hparams(m.hparams)} for m in members],
            "dspjax_version": __version__, **extra}


def start_run(run_dir, cfg: dict) -> Path:
    """Makes the run directory and writes ``config.json``, before anything is compiled; a
    directory that cannot be made or written is a ConfigError naming it."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(run_dir / "config.json", json.dumps(cfg, indent=2))
    except OSError as e:
        raise ConfigError(f"out={str(run_dir)!r}: cannot be written ({e.strerror or e})") from None
    return run_dir


def write_atomically(path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file renamed over it: a reader (or a run
    killed mid-write) sees the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, newline="")
    os.replace(tmp, path)


def write_run(run_dir, algo: str, config, base_hp, sweep: dict, seeds, result: PopulationResult,
              **extra):
    """Writes config, metrics, summary and checkpoint of a finished population run of the
    registered agent ``algo`` (its declared networks, the policy network first); ``extra``: more
    ``config.json`` keys."""
    networks = get_algo(algo).declare(config)
    pruned = [n for n, chain in networks.items() if chain.mask_of is None]
    run_dir = start_run(run_dir, run_config(algo, config, base_hp, sweep, seeds, result.members,
                                            **extra))
    write_metrics_csv(run_dir / "metrics.csv", result.members, result.metrics)
    summary = {"algo": algo, "env_id": config.env_id, "total_timesteps": config.total_timesteps,
               "networks": pruned, "policy_network": pruned[0],
               "compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds,
               "members": summarize(result, networks)}
    save_checkpoint(run_dir / "checkpoint", get_algo(algo).deployed(config, result.final_state),
                    result.final_state.dsp.pruners, networks)
    write_atomically(run_dir / "summary.json", json.dumps(summary, indent=2))  # last: the run is done
    return summary


MAX_CSV_ROWS_PER_MEMBER = 2_000


def block_metrics(metrics: dict, block: int) -> tuple[np.ndarray, dict]:
    """Per-iteration metrics ``(members, iterations)`` merged into blocks of ``block`` iterations
    (the last one may be shorter): ``episodes`` summed, ``episode_return`` the mean over the
    block's episodes, every other metric its value at the block's last iteration. Returns the
    blocks' last iterations and the merged metrics."""
    n_iter = next(iter(metrics.values())).shape[1]
    if block <= 1:
        return np.arange(n_iter), metrics
    starts = np.arange(0, n_iter, block)
    last = np.minimum(starts + block, n_iter) - 1
    out = {k: np.asarray(v)[:, last] for k, v in metrics.items()}
    if "episodes" in metrics:
        episodes = np.asarray(metrics["episodes"], np.float64)
        out["episodes"] = np.add.reduceat(episodes, starts, axis=1).astype(np.asarray(metrics["episodes"]).dtype)
        if "episode_return" in metrics:
            total = np.add.reduceat(episodes * np.asarray(metrics["episode_return"], np.float64), starts, axis=1)
            out["episode_return"] = total / np.maximum(out["episodes"], 1)
    return last, out


def write_metrics_csv(path, members, metrics: dict, max_rows: int = MAX_CSV_ROWS_PER_MEMBER,
                      iterations_done: int | None = None) -> None:
    """One row per member and iteration of ``metrics`` (name -> (members, iterations)), or, past
    ``max_rows`` iterations, per block of iterations (``block_metrics``; the ``iteration`` column
    is the block's last one). With ``iterations_done``, only the first that many iterations (a run
    still training). Written atomically (``write_atomically``)."""
    names = sorted(metrics)
    n_iter = metrics[names[0]].shape[1] if iterations_done is None else iterations_done
    done = {k: np.asarray(v)[:, :n_iter] for k, v in metrics.items()}
    iterations, blocks = block_metrics(done, -(-n_iter // max_rows))
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(["member", "seed", "iteration"] + names)
    for m in members:
        for j, t in enumerate(iterations):
            w.writerow([m.index, m.seed, int(t)] + [_fmt(blocks[k][m.index, j]) for k in names])
    write_atomically(path, text.getvalue())


def _fmt(x):
    x = np.asarray(x)
    if x.dtype == bool:
        return int(x)
    return int(x) if np.issubdtype(x.dtype, np.integer) else f"{float(x):.6g}"


def read_metrics_csv(path) -> dict[str, np.ndarray]:
    """Columns of metrics.csv as arrays shaped (members, iterations)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    n_members = 1 + max(int(r["member"]) for r in rows)
    out = {}
    for key in rows[0]:
        out[key] = np.array([float(r[key]) for r in rows]).reshape(n_members, -1)
    return out


def save_checkpoint(path, params, pruners: dict, networks: dict) -> None:
    """The final layers (from ``params``, as deployed: ``Algo.deployed``) and masks (from
    ``pruners``) of every declared network of every member (batched leading axis) with orbax; each
    network's layers as a list ``[{"kernel", "bias"}, ...]``."""
    import orbax.checkpoint as ocp
    owned = [n for n, chain in networks.items() if chain.mask_of is None]
    tree = {"params": {n: list(chain_layers(params, networks[n])) for n in owned},
            "neuron_masks": {n: list(pruners[n].neuron_masks) for n in owned},
            "weight_masks": {n: list(pruners[n].weight_masks) for n in owned}}
    me = jax.process_index()  # across processes, the one that writes the run directory alone
    alone = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    with ocp.StandardCheckpointer(multiprocessing_options=alone) as ckpt:
        ckpt.save(os.path.abspath(path), jax.tree.map(np.asarray, tree), force=True)


def read_run_config(run_dir) -> dict:
    """The ``config.json`` of a run directory; ConfigError if there is none or it is broken."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"run_dir={str(run_dir)!r}: no config.json there; not a dspjax run")
    try:
        return json.loads((run_dir / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"run_dir={str(run_dir)!r}: config.json is not valid JSON ({e})") from None


def load_run(run_dir):
    """``(config_dict, checkpoint_tree)`` of a finished run; ConfigError if it is broken."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if not (run_dir / "checkpoint").exists():
        raise ConfigError(f"run_dir={str(run_dir)!r}: has no final checkpoint (an unfinished run? "
                          f"go on with it: dspjax train --resume {run_dir})")
    try:
        import orbax.checkpoint as ocp
        with ocp.StandardCheckpointer() as ckpt:
            tree = ckpt.restore(os.path.abspath(run_dir / "checkpoint"))
    except Exception as e:  # noqa: BLE001 - any failure to read it is a broken checkpoint
        raise ConfigError(f"run_dir={str(run_dir)!r}: checkpoint cannot be read "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    return cfg, tree


def networks_of(summary: dict) -> tuple[str, ...]:
    """The networks a summary describes, the policy network first; for a run written before the
    summary recorded them, read off a member record (actor or q taken as the policy network)."""
    if summary.get("networks"):
        return tuple(summary["networks"])
    record = summary["members"][0]
    nets = [k for k, v in record.items() if isinstance(v, dict) and "neurons_removed" in v]
    return tuple(sorted(nets, key=lambda n: n not in ("actor", "q")))


def run_algo(cfg: dict):
    """``(Algo, config)`` of a run's ``config.json`` content (runs without ``algo`` are PPO)."""
    algo = get_algo(cfg.get("algo", "ppo"))
    return algo, algo.config_from_dict(cfg["config"])


def member_network(tree, net: str, i: int):
    """Member ``i``'s network ``net`` from a checkpoint tree: ``(params, neuron_masks,
    weight_masks)`` as NumPy arrays."""
    if net not in tree["params"]:
        raise ConfigError(f"checkpoint has no network {net!r} (it has {', '.join(tree['params'])})")
    params = tuple(jax.tree.map(lambda x: np.asarray(x[i]), tuple(tree["params"][net])))
    neuron_masks = [np.asarray(m[i]) for m in tree["neuron_masks"][net]]
    weight_masks = [np.asarray(m[i]) for m in tree["weight_masks"][net]]
    return params, neuron_masks, weight_masks
