"""RL agents with DSP: each ``make_train(config)`` returns a pure, vmappable ``train(key, hparams)``."""

from dspjax.agents.ppo import PPOConfig, PPOHParams, PPOState, generalized_advantages, greedy_policy, make_train
