"""The highway sweep: DSP schedules (threshold x λ x seeds) beside dense and random structured
pruning, all on ``jax:highway-fast-v0`` (dspjax's step-exact JAX port of highway-env, docs/highway.md)
in one population, one compiled program.

Members (DQN with highway-env's own example settings, the same as experiments/found_size):

- ``dsp``: the default ``relative`` threshold rule with its final τ (``c_relative``) in
  ``THRESHOLDS`` times the regularizer strength λ in ``LAMBDAS``, every other DSP hyperparameter
  at DQN's defaults (``dspjax.agents.dqn.DQN_DSP``);
- ``dense``: no regularizer, no pruning;
- ``random``: random structured pruning (random scores, the ``schedule`` threshold) to the
  fractions ``RANDOM_KEEP`` of each layer's neurons, over the same pruning window;

each on ``--seeds`` seeds. The run directory is ``runs/sweep`` (checkpointed every tenth of the
run; a run stopped midway goes on from its last checkpoint, and a finished one is not run again).
``evaluate.py`` then plays every member in denser traffic and on highway-env itself, and
``table.py`` writes ``results.md`` and the Pareto plot.

Usage: python experiments/highway_sweep/run.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
from pathlib import Path

from dspjax.train import build_population, run_population, set_hparam
from dspjax.train.algos import get_algo
from dspjax.train.checkpoints import TrainingCheckpoints
from dspjax.train.run_dir import write_run

HERE = Path(__file__).parent


def _found_size_settings():
    """The agent's settings, defined once in experiments/found_size/run.py."""
    spec = importlib.util.spec_from_file_location("found_size_run", HERE.parent / "found_size" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.HIGHWAY_DQN, module.HIGHWAY_HPARAMS


HIGHWAY_DQN, HIGHWAY_HPARAMS = _found_size_settings()

RUN = HERE / "runs" / "sweep"
CONFIG = dataclasses.replace(HIGHWAY_DQN, env_id="jax:highway-fast-v0")
THRESHOLDS = (0.025, 0.05, 0.1, 0.2)
LAMBDAS = (5e-5, 1e-4, 2e-4, 4e-4)
RANDOM_KEEP = (0.05, 0.1, 0.2, 0.4)


def members(seeds: range):
    """The population: dsp (threshold x λ), dense, random (keep fraction), each x ``seeds``."""
    groups = [
        build_population(HIGHWAY_HPARAMS, {"method": ["dsp"], "c_relative": list(THRESHOLDS),
                                           "lam": list(LAMBDAS)}, seeds),
        build_population(HIGHWAY_HPARAMS, {"method": ["dense"]}, seeds),
        build_population(set_hparam(HIGHWAY_HPARAMS, "min_alive", 1),
                         {"method": ["random"], "k_final": list(RANDOM_KEEP)}, seeds),
    ]
    population = [m for group in groups for m in group]
    for i, m in enumerate(population):
        m.index = i
    return population


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if (RUN / "summary.json").is_file():
        print(f"{RUN} is done; python experiments/highway_sweep/evaluate.py goes on")
        return
    population = members(range(args.seeds))
    print(f"{len(population)} members, {CONFIG.total_timesteps} steps each, on {CONFIG.env_id}")
    result = run_population(get_algo("dqn").make_train, CONFIG, population,
                            checkpoints=TrainingCheckpoints(RUN / "checkpoints"))
    sweep = {"method": ["dsp", "dense", "random"], "c_relative": list(THRESHOLDS),
             "lam": list(LAMBDAS), "k_final": list(RANDOM_KEEP)}
    write_run(RUN, "dqn", CONFIG, HIGHWAY_HPARAMS, sweep, list(range(args.seeds)), result,
              command=f"python experiments/highway_sweep/run.py --seeds {args.seeds}")
    print(f"wrote {RUN}")


if __name__ == "__main__":
    main()
