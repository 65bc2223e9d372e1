"""DSP against its baselines at DSP's size, in two resumable phases (the experiments' shared runner).

For one task ``(algo, config, base hyperparameters)``, each phase one population in one compiled
program:

1. ``dense`` and ``dsp`` (DSP's hyperparameters as ``base`` has them): what size does DSP end at,
   and at what return?
2. at the size DSP found (per seed: the alive neurons of each layer of the policy network, the
   actor or Q), two baselines of METHOD.md §7: ``random`` structured pruning to the same number of
   neurons (random scores, the ``schedule`` threshold; the other networks not pruned), and
   ``small``, a dense policy network of that size trained from scratch beside full-width other
   networks (PPO's critic, SAC's critics), one population per distinct size.

Run directories go to ``<runs>/<phase>``. A phase whose ``summary.json`` exists is not run again,
and a phase stopped midway goes on from its newest training checkpoint (``<runs>/<phase>/
checkpoints``, saved every tenth of the run), so an experiment resumes where it stopped, across
sessions.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from dspjax.agents.ppo import PRUNE_CRITIC_NAMES
from dspjax.train import build_population, run_population, set_hparam
from dspjax.train.algos import get_algo
from dspjax.train.run_dir import write_run


def done(run_dir: Path) -> bool:
    """Whether the phase in ``run_dir`` finished (its ``summary.json`` is written last)."""
    return (run_dir / "summary.json").is_file()


def train(run_dir: Path, algo: str, config, members, deadline: float | None = None):
    """One population, checkpointed every segment into ``run_dir/checkpoints`` and going on from
    the newest checkpoint there (a run stopped midway). Past ``deadline`` (a ``time.time()``) it
    stops after the next checkpoint (``TrainingStopped``): run again to go on."""
    from dspjax.train.checkpoints import TrainingCheckpoints
    return run_population(get_algo(algo).make_train, config, members,
                          checkpoints=TrainingCheckpoints(run_dir / "checkpoints"),
                          should_stop=None if deadline is None else lambda: time.time() > deadline)


def found_sizes(run_dir: Path) -> dict[int, list[int]]:
    """Per seed, the alive neurons of each layer of the policy network of the ``dsp`` members."""
    summary = json.loads((run_dir / "summary.json").read_text())
    policy = summary["policy_network"]
    return {r["seed"]: r[policy]["alive_per_layer"] for r in summary["members"]
            if r["grid_point"].get("method") == "dsp"}


def _others_dense(algo: str, hp):
    """``hp`` with only the policy network pruned: PPO's and SAC's critics dense."""
    return set_hparam(hp, "prune_critic", PRUNE_CRITIC_NAMES.index("off")) if algo in ("ppo", "sac") else hp


def _small_config(algo: str, config, size):
    """``config`` with the policy network at ``size`` and the other networks at their width."""
    small = dataclasses.replace(config, hidden_sizes=tuple(size))
    if algo in ("ppo", "sac"):
        small = dataclasses.replace(small, critic_hidden_sizes=config.critic_sizes)
    return small


def phase_one(runs: Path, task, seeds: int, command: str, deadline: float | None = None) -> Path:
    """``dense`` and ``dsp``, ``seeds`` seeds each, in ``runs/dense_dsp``."""
    algo, config, base = task
    out = runs / "dense_dsp"
    if not done(out):
        members = build_population(base, {"method": ["dense", "dsp"]}, range(seeds))
        result = train(out, algo, config, members, deadline)
        write_run(out, algo, config, base, {"method": ["dense", "dsp"]}, list(range(seeds)), result,
                  command=command)
    return out


def random_to_found_size(algo: str, base):
    """``base`` with the ``random`` preset (random scores, the ``schedule`` threshold), no
    ``min_alive`` floor and only the policy network pruned: ``found_size_members`` sets its size."""
    return _others_dense(algo, set_hparam(set_hparam(base, "method", "random"), "min_alive", 1))


def found_size_members(config, hp, sizes: dict[int, list[int]], seeds, name: str) -> list:
    """One member of ``hp`` per seed, its ``schedule`` threshold ending at the seed's found size:
    schedule keeps ceil(k · n_l) neurons of every layer l (one k per network), and k is the found
    fraction of all hidden neurons, so the network has DSP's total neuron count spread evenly over
    its layers. ``grid_point`` is ``{"method": name}``."""
    members = []
    for seed in seeds:
        k = sum(sizes[seed]) / sum(config.hidden_sizes)
        member = build_population(set_hparam(hp, "k_final", k), {}, [seed])[0]
        member.index, member.grid_point = len(members), {"method": name}
        members.append(member)
    return members


def phase_two(runs: Path, task, seeds: int, sizes: dict[int, list[int]],
              deadline: float | None = None) -> None:
    """``random`` at each seed's found number of neurons (one population), and ``small``, dense
    policy networks of each seed's found size (one population per distinct size)."""
    algo, config, base = task
    out = runs / "random"
    if not done(out):
        random = random_to_found_size(algo, base)
        members = found_size_members(config, random, sizes, range(seeds), "random")
        result = train(out, algo, config, members, deadline)
        write_run(out, algo, config, random, {"method": ["random"]}, list(range(seeds)), result,
                  found_sizes={str(s): sizes[s] for s in range(seeds)})
    by_size = {}
    for seed in range(seeds):
        by_size.setdefault(tuple(sizes[seed]), []).append(seed)
    for size, size_seeds in by_size.items():
        out = runs / ("small_" + "-".join(map(str, size)))
        if done(out):
            continue
        small_config = _small_config(algo, config, size)
        dense = set_hparam(base, "method", "dense")
        members = build_population(dense, {}, size_seeds)
        for m in members:
            m.grid_point = {"method": "small"}
        result = train(out, algo, small_config, members, deadline)
        write_run(out, algo, small_config, dense, {"method": ["small"]}, size_seeds, result)


def records(runs: Path) -> dict[str, list[tuple[dict, dict]]]:
    """``method -> [(summary, member record), ...]`` sorted by seed, over every phase in ``runs``."""
    out = {}
    for path in sorted(runs.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        for record in summary["members"]:
            out.setdefault(record["grid_point"].get("method", "dsp"), []).append((summary, record))
    return {m: sorted(rows, key=lambda sr: sr[1]["seed"]) for m, rows in out.items()}


def missing_baselines(by_method: dict) -> list[str]:
    """A table's closing line naming the phase-two rows not run yet (none when both are there)."""
    missing = [m for m in ("random", "small") if m not in by_method]
    return [f"\n{' and '.join(missing)} not run yet at DSP's size (`run.py` runs them next)."] if missing else []


def run_task(runs: Path, task, seeds: int, command: str, deadline: float | None = None) -> None:
    """Both phases of ``task`` into ``runs``, each skipped when done, resumed when stopped; past
    ``deadline`` (a ``time.time()``) training stops at its next checkpoint (``TrainingStopped``)."""
    first = phase_one(runs, task, seeds, command, deadline)
    phase_two(runs, task, seeds, found_sizes(first), deadline)
