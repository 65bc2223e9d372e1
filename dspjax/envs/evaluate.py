"""Evaluation episodes of a policy on a batched environment (jittable)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def evaluate_policy(make_env, policy_fn, key, num_episodes: int, max_steps: int | None = None):
    """Return of the first episode of each of ``num_episodes`` parallel environments.

    ``make_env(n)`` builds a batched env of ``n`` copies; ``policy_fn(obs) -> actions``. Runs
    ``max_steps`` steps (the env's episode limit by default) and counts rewards until each
    environment's first episode ends.
    """
    env = make_env(num_episodes)
    steps = max_steps or env.max_episode_steps
    key, reset_key = jax.random.split(key)
    obs, state = env.reset(reset_key)

    def body(carry, step_key):
        obs, state, total, running = carry
        obs, state, reward, terminated, truncated, _ = env.step(step_key, state, policy_fn(obs))
        done = terminated | truncated
        total = total + jnp.where(running, reward, 0.0)
        return (obs, state, total, running & ~done), None

    init = (obs, state, jnp.zeros((num_episodes,)), jnp.ones((num_episodes,), bool))
    (_, _, total, _), _ = jax.lax.scan(body, init, jax.random.split(key, steps))
    return total
