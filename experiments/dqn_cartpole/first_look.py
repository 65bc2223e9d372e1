"""A first look at DQN with DSP on gymnax CartPole-v1, before DQN had its own defaults: dense
against DSP with the PPO-tuned DSP defaults (``DSPHParams()``), one seed, 200k steps, with the
DQN settings of that time pinned here (hard target copy every 50 iterations, 10k buffer, lr
2.5e-4, ε over half of training). It motivated ``sweep.py``; the current defaults and their
three-seed confirmation are in ``results.md``.

Usage (from the repository root): python experiments/dqn_cartpole/first_look.py > experiments/dqn_cartpole/first_look.md
"""

import jax
import numpy as np

from dspjax.agents.dqn import DQNConfig, DQNHParams, make_train
from dspjax.pruning import THRESHOLD_NAMES, DSPHParams
from dspjax.train.population import set_hparam

config = DQNConfig(total_timesteps=200_000, buffer_size=10_000, target_update_every=50,
                   hidden_sizes=(256, 256))
BEFORE = DQNHParams(lr=2.5e-4, gamma=0.99, eps_fraction=0.5, lr_decay=0.0, tau=1.0,
                    dsp=DSPHParams(threshold_rule=THRESHOLD_NAMES.index("adaptive"),  # the defaults then (0.1)
                                   prune_end=0.6, reg_end=1.0))
train = jax.jit(make_train(config))
print(f"# DQN on {config.env_id}, {config.total_timesteps:,} steps, hidden {config.hidden_sizes}, seed 0\n")
print("| method | greedy return (10 episodes) | Q-network neurons alive | weights removed |")
print("|---|---|---|---|")
for method in ("dense", "dsp"):
    state, metrics, returns = train(jax.random.PRNGKey(0), set_hparam(BEFORE, "method", method))
    print(f"| {method} | {float(np.mean(returns)):.1f} | {int(metrics['q_alive_neurons'][-1])} / "
          f"{sum(config.hidden_sizes)} | {100 * float(metrics['q_weights_removed'][-1]):.2f} % |")
