"""The gymnax adapter: same transitions as gymnax itself, gymnasium's auto-reset semantics,
episode bookkeeping, truncation, and a clear error for an unknown id."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dspjax.envs import GymnaxVecEnv, make_vec_env
from dspjax.hparams import ConfigError


def rollout(env, key, actions_fn, steps):
    key, reset_key = jax.random.split(key)
    obs, state = env.reset(reset_key)
    out = []
    for t, k in enumerate(jax.random.split(key, steps)):
        actions = actions_fn(t, obs)
        next_obs, state, reward, terminated, truncated, info = env.step(k, state, actions)
        out.append(jax.tree.map(np.asarray, dict(obs=obs, action=actions, next_obs=next_obs,
                                                 reward=reward, terminated=terminated,
                                                 truncated=truncated, info=info)))
        obs = next_obs
    return out


def test_same_transitions_as_gymnax_with_the_same_keys():
    env = GymnaxVecEnv("CartPole-v1", 3)
    raw, params = gymnax.make("CartPole-v1")
    key = jax.random.PRNGKey(0)
    obs, state = env.reset(key)
    raw_obs, raw_state = jax.vmap(raw.reset, in_axes=(0, None))(jax.random.split(key, 3), params)
    np.testing.assert_array_equal(obs, raw_obs)
    rng = np.random.default_rng(0)
    for k in jax.random.split(jax.random.PRNGKey(1), 60):
        actions = jnp.asarray(rng.integers(0, 2, 3))
        obs, state, reward, terminated, truncated, info = env.step(k, state, actions)
        raw_obs, raw_state, raw_r, raw_term, raw_trunc, raw_info = jax.vmap(
            raw.step, in_axes=(0, 0, 0, None))(jax.random.split(k, 3), raw_state, actions, params)
        np.testing.assert_array_equal(obs, raw_obs)
        np.testing.assert_array_equal(reward, raw_r)
        np.testing.assert_array_equal(terminated, raw_term)
        np.testing.assert_array_equal(info["final_observation"], raw_info["final_observation"])
        assert obs.dtype == jnp.float32


def test_episode_bookkeeping_matches_the_reward_stream():
    env = make_vec_env("CartPole-v1", 4)
    steps = rollout(env, jax.random.PRNGKey(2), lambda t, o: jnp.full((4,), t % 2), 120)
    running = np.zeros(4)
    length = np.zeros(4, int)
    finished = 0
    for s in steps:
        running += s["reward"]
        length += 1
        done = s["terminated"] | s["truncated"]
        np.testing.assert_array_equal(s["info"]["episode_done"], done)
        np.testing.assert_allclose(s["info"]["episode_return"], np.where(done, running, 0.0))
        np.testing.assert_array_equal(s["info"]["episode_length"], np.where(done, length, 0))
        # On an episode end the returned obs starts the next episode; the last is in info.
        assert np.all(np.where(done[:, None], s["next_obs"] != s["info"]["final_observation"], True))
        assert np.all(np.where(~done[:, None], s["next_obs"] == s["info"]["final_observation"], True))
        finished += done.sum()
        running[done], length[done] = 0.0, 0
    assert finished > 4  # alternating actions end CartPole episodes quickly


def test_truncation_at_the_time_limit_is_not_termination():
    env = make_vec_env("MountainCar-v0", 2)  # pushing left forever never reaches the goal
    steps = rollout(env, jax.random.PRNGKey(3), lambda t, o: jnp.zeros((2,), jnp.int32), 201)
    limit = env.max_episode_steps
    assert limit == 200
    for t, s in enumerate(steps):
        assert not s["terminated"].any()
        np.testing.assert_array_equal(s["truncated"], np.full(2, t == limit - 1))
    np.testing.assert_array_equal(steps[limit - 1]["info"]["episode_length"], [limit, limit])
    np.testing.assert_allclose(steps[limit - 1]["info"]["episode_return"], [-200.0, -200.0])


def test_flattened_observations_of_an_image_env():
    env = make_vec_env("Breakout-MinAtar", 2)
    obs, _ = env.reset(jax.random.PRNGKey(0))
    assert obs.shape == (2, env.observation_size) and env.observation_size == 10 * 10 * 4
    assert obs.dtype == jnp.float32


def test_unknown_env_names_the_field_and_the_known_ids():
    with pytest.raises(ConfigError, match=r"env='NoSuchEnv-v0'.*CartPole-v1"):
        make_vec_env("NoSuchEnv-v0", 1)
