"""The outer loop every agent shares: ``train(key, hparams)`` as one ``lax.scan`` over
iterations, a greedy evaluation at the end, and the per-iteration episode figures."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dspjax.envs import config_vec_env, evaluate_policy


def episode_metrics(info) -> dict:
    """Episodes that ended this iteration and their mean return (0 when none ended)."""
    episodes = jnp.sum(info["episode_done"])
    return dict(episodes=episodes,
                episode_return=jnp.sum(info["episode_return"]) / jnp.maximum(episodes, 1))


def make_greedy_evaluate(config, action_values):
    """``evaluate(state, key)``: returns of ``argmax action_values(state.params, obs)`` over
    ``config.eval_episodes`` episodes of ``config.env_id``."""
    def evaluate(state, key):
        return evaluate_policy(lambda n: config_vec_env(config, n),
                               lambda obs, _: jnp.argmax(action_values(state.params, obs), -1),
                               key, config.eval_episodes)
    return evaluate


def make_scan_train(init, iteration_step, evaluate, num_iterations: int):
    """``train(key, hp) -> (final state, per-iteration metrics, evaluation returns)``."""
    def train(key, hp):
        k_init, k_eval = jax.random.split(key)
        state = init(k_init, hp)
        state, metrics = jax.lax.scan(lambda s, i: iteration_step(s, i, hp), state,
                                      jnp.arange(num_iterations))
        return state, metrics, evaluate(state, k_eval)

    train.evaluate = evaluate
    train.init = init
    return train
