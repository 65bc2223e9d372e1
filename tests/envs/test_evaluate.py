"""Evaluation counts exactly the first episode of each parallel environment."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np

from dspjax.envs import evaluate_policy, make_vec_env


def policy(obs):
    """Push the cart toward the pole's lean: balances CartPole for a while, not for ever."""
    return (obs[..., 2] > 0).astype(jnp.int32)


def test_first_episode_return_matches_a_plain_loop():
    key = jax.random.PRNGKey(7)
    returns = jax.jit(lambda k: evaluate_policy(lambda n: make_vec_env("CartPole-v1", n),
                                                lambda obs, _: policy(obs), k, 3))(key)
    # Reference: the same keys, one environment at a time, stopped at its first episode end.
    raw, params = gymnax.make("CartPole-v1")
    key, reset_key = jax.random.split(key)
    step_keys = jax.random.split(key, params.max_steps_in_episode)
    reset_keys = jax.random.split(reset_key, 3)
    for i in range(3):
        obs, state = raw.reset(reset_keys[i], params)
        total = 0.0
        for k in step_keys:
            obs, state, r, term, trunc, _ = raw.step(jax.random.split(k, 3)[i], state,
                                                     policy(obs), params)
            total += float(r)
            if term or trunc:
                break
        assert returns[i] == total
    assert np.all(np.asarray(returns) > 10)


def test_a_sampling_policy_gets_one_key_per_step_apart_from_the_environments():
    key = jax.random.PRNGKey(3)
    coin = lambda obs, k: jax.random.bernoulli(k, 0.5, obs.shape[:1]).astype(jnp.int32)  # noqa: E731
    returns = jax.jit(lambda k: evaluate_policy(lambda n: make_vec_env("CartPole-v1", n), coin, k, 4))(key)
    raw, params = gymnax.make("CartPole-v1")
    steps = params.max_steps_in_episode
    action_keys = jax.random.split(jax.random.fold_in(key, 1), steps)
    key, reset_key = jax.random.split(key)
    step_keys = jax.random.split(key, steps)
    reset_keys = jax.random.split(reset_key, 4)
    for i in range(4):
        obs, state = raw.reset(reset_keys[i], params)
        total = 0.0
        for t in range(steps):
            action = coin(jnp.zeros((4, 1)), action_keys[t])[i]
            obs, state, r, term, trunc, _ = raw.step(jax.random.split(step_keys[t], 4)[i], state, action, params)
            total += float(r)
            if term or trunc:
                break
        assert returns[i] == total
    assert len(set(np.asarray(returns).tolist())) > 1  # the coin differs between environments
