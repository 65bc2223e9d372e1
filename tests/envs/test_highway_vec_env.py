"""``jax:highway-fast-v0`` through ``make_vec_env``: shapes, gymnax-style auto-reset and episode
bookkeeping, config overrides, and a few DQN iterations on it."""

import jax
import numpy as np
import pytest

from dspjax.agents.dqn import DQNConfig, DQNHParams, make_train
from dspjax.envs import HighwayVecEnv, make_vec_env
from dspjax.hparams import ConfigError


def test_make_vec_env_gives_the_pure_jax_port():
    env = make_vec_env("jax:highway-fast-v0", 3)
    assert isinstance(env, HighwayVecEnv) and not env.state_on_host
    assert (env.observation_size, env.action_space.n, env.max_episode_steps) == (25, 5, 30)
    assert make_vec_env("jax:highway-v0", 1).params.vehicles_count == 50
    short = make_vec_env("jax:highway-fast-v0", 1, '{"duration": 3, "vehicles_count": 5}')
    assert short.max_episode_steps == 3 and short.params.num_vehicles == 6
    with pytest.raises(ConfigError, match="observation"):
        make_vec_env("jax:highway-fast-v0", 1, '{"observation": {"type": "GrayscaleObservation"}}')
    with pytest.raises(ConfigError, match="jax:highway-fast-v0"):
        make_vec_env("jax:highway-v9", 1)


def test_episodes_auto_reset_and_are_recorded():
    env = make_vec_env("jax:highway-fast-v0", 2, '{"duration": 3}')
    obs, state = env.reset(jax.random.key(0))
    assert obs.shape == (2, 25) and obs.dtype == np.float32
    step = jax.jit(env.step)
    returns = np.zeros(2)
    for t in range(3):
        obs, state, reward, terminated, truncated, info = step(jax.random.key(t + 1), state, np.array([1, 1]))
        returns += np.asarray(reward)
        done = np.asarray(terminated | truncated)
        if done.all():
            break
    assert done.all() and t <= 2 and (t == 2 or np.asarray(terminated).all())
    np.testing.assert_allclose(np.asarray(info["episode_return"]), returns, rtol=1e-6)
    assert np.all(np.asarray(state.env_state.steps) == 0)  # fresh scenes
    assert not np.array_equal(np.asarray(info["final_observation"]), np.asarray(obs))


def test_dqn_trains_a_few_iterations_on_it():
    config = DQNConfig(env_id="jax:highway-fast-v0", num_envs=2, total_timesteps=2 * 40, buffer_size=64,
                       batch_size=8, learning_starts=16, target_update_every=4, hidden_sizes=(16,), eval_episodes=1,
                       env_config='{"duration": 5, "vehicles_count": 8}')
    _, metrics, _ = jax.jit(make_train(config))(jax.random.PRNGKey(0), DQNHParams())
    loss = np.asarray(metrics["loss"])
    assert np.all(np.isfinite(loss)) and np.any(loss != 0.0)
