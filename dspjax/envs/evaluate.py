"""Evaluation episodes of a policy on a batched environment (jittable)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def evaluate_policy(make_env, policy_fn, key, num_episodes: int, max_steps: int | None = None):
    """Return of the first episode of each of ``num_episodes`` parallel environments.

    ``make_env(n)`` builds a batched env of ``n`` copies; ``policy_fn(obs, key) -> actions`` (a
    greedy policy ignores the key, a sampling one draws from it). Steps until every environment's
    first episode has ended, at most ``max_steps`` steps (the env's episode limit by default),
    counting rewards until each one ends. Step ``t`` uses the ``t``-th of ``max_steps`` keys split
    from ``key``, whenever the loop stops; the policy's keys are drawn apart from the
    environment's, so a greedy and a sampling policy see the same environment randomness.
    """
    env = make_env(num_episodes)
    steps = max_steps or env.max_episode_steps
    action_keys = jax.random.split(jax.random.fold_in(key, 1), steps)
    key, reset_key = jax.random.split(key)
    step_keys = jax.random.split(key, steps)
    obs, state = env.reset(reset_key)

    def body(carry):
        t, obs, state, total, running = carry
        obs, state, reward, terminated, truncated, _ = env.step(step_keys[t], state,
                                                                policy_fn(obs, action_keys[t]))
        total = total + jnp.where(running, reward, 0.0)
        return t + 1, obs, state, total, running & ~(terminated | truncated)

    def not_done(carry):
        t, *_, running = carry
        return (t < steps) & jnp.any(running)

    init = (jnp.array(0), obs, state, jnp.zeros((num_episodes,)), jnp.ones((num_episodes,), bool))
    return jax.lax.while_loop(not_done, body, init)[3]
