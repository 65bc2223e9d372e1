"""RL agents with DSP: each ``make_train(config)`` returns a pure, vmappable ``train(key, hparams)``."""

from dspjax.agents.loop import greedy_policy
from dspjax.agents.ppo import PPOConfig, PPOHParams, PPOState, generalized_advantages, make_train
