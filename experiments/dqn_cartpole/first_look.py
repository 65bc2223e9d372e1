"""A first look at DQN with DSP on gymnax CartPole-v1: dense against DSP with the default
(PPO-tuned) DSP schedule, one seed, 200k steps. Not a result to cite, a starting point for tuning.

Usage (from the repository root): python experiments/dqn_cartpole/first_look.py > experiments/dqn_cartpole/first_look.md
"""

import jax
import numpy as np

from dspjax.agents.dqn import DQNConfig, DQNHParams, make_train
from dspjax.train.population import set_hparam

config = DQNConfig(total_timesteps=200_000)
train = jax.jit(make_train(config))
print(f"# DQN on {config.env_id}, {config.total_timesteps:,} steps, hidden {config.hidden_sizes}, seed 0\n")
print("| method | greedy return (10 episodes) | Q-network neurons alive | weights removed |")
print("|---|---|---|---|")
for method in ("dense", "dsp"):
    state, metrics, returns = train(jax.random.PRNGKey(0), set_hparam(DQNHParams(), "method", method))
    print(f"| {method} | {float(np.mean(returns)):.1f} | {int(metrics['q_alive_neurons'][-1])} / "
          f"{sum(config.hidden_sizes)} | {100 * float(metrics['q_weights_removed'][-1]):.2f} % |")
