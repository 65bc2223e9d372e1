"""PPO for box actions: the Gaussian policy's log-probability and entropy against NumPy, actions
clipped on their way to the environment, and a short run that learns Pendulum-v1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dspjax.agents import PPOConfig, PPOHParams, make_train
from dspjax.agents.normalization import normalize
from dspjax.agents.ppo import deployed_params, networks, policy_distribution
from dspjax.envs import ActionSpace
from dspjax.pruning import chain_apply, chain_layers
from dspjax.train.population import build_population, run_population

BOX = ActionSpace.box([-2.0, -1.0, 0.0], [2.0, 1.0, 3.0])


def numpy_gaussian_log_prob(x, mean, log_std):
    """log N(x; mean, diag(exp(log_std))^2), summed over the dimensions."""
    std = np.exp(log_std)
    return np.sum(-0.5 * ((x - mean) / std) ** 2 - log_std - 0.5 * np.log(2 * np.pi), -1)


def test_gaussian_log_prob_and_entropy_match_numpy():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(32, 3)).astype(np.float32)
    log_std = np.array([-1.0, 0.0, 0.7], np.float32)
    x = rng.normal(size=(32, 3)).astype(np.float32) * 2
    pi = policy_distribution(BOX, jnp.asarray(mean), jnp.asarray(log_std))
    np.testing.assert_allclose(pi.log_prob(x), numpy_gaussian_log_prob(x, mean, log_std), rtol=1e-5)
    entropy = np.sum(0.5 * np.log(2 * np.pi * np.e) + log_std)  # the same in every state
    np.testing.assert_allclose(pi.entropy(), np.full(32, entropy), rtol=1e-5)


def test_categorical_log_prob_and_entropy_match_numpy():
    logits = np.random.default_rng(1).normal(size=(16, 4)).astype(np.float32)
    actions = np.arange(16) % 4
    pi = policy_distribution(ActionSpace.discrete(4), jnp.asarray(logits))
    log_p = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
    np.testing.assert_allclose(pi.log_prob(actions), log_p[np.arange(16), actions], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pi.entropy(), -np.sum(np.exp(log_p) * log_p, -1), rtol=1e-5)


def test_gaussian_samples_have_the_policys_mean_and_std():
    mean, log_std = jnp.array([[0.5, -0.2, 1.0]]), jnp.array([-1.0, 0.0, 0.5])
    pi = policy_distribution(BOX, jnp.broadcast_to(mean, (50_000, 3)), log_std)
    samples = np.asarray(pi.sample(seed=jax.random.PRNGKey(0)))
    # 50k draws: the standard error of a mean is std / 224, of a std about std / 316
    np.testing.assert_allclose(samples.mean(0), mean[0], atol=5 * np.exp(0.5) / 224)
    np.testing.assert_allclose(samples.std(0), np.exp(log_std), rtol=5 / 316)


def test_box_actions_are_clipped_to_the_bounds_and_greedy_is_the_clipped_mean():
    outputs = jnp.array([[-5.0, 0.5, 4.0], [1.0, -3.0, -1.0]])
    np.testing.assert_array_equal(BOX.greedy(outputs), [[-2.0, 0.5, 3.0], [1.0, -1.0, 0.0]])
    np.testing.assert_array_equal(BOX.greedy(np.asarray(outputs)), [[-2.0, 0.5, 3.0], [1.0, -1.0, 0.0]])
    assert ActionSpace.discrete(3).greedy(jnp.array([[0.0, 2.0, 1.0]]))[0] == 1


def test_a_box_actor_has_one_output_per_dimension_and_a_log_std_that_trains():
    config = PPOConfig(env_id="Pendulum-v1", hidden_sizes=(16, 16), total_timesteps=4 * 128 * 2)
    state, metrics, returns = jax.jit(make_train(config))(jax.random.PRNGKey(0), PPOHParams())
    assert state.params["actor"]["params"]["Dense_2"]["kernel"].shape == (16, 1)
    assert state.params["log_std"].shape == (1,) and float(state.params["log_std"][0]) != 0.0
    assert np.isfinite(np.asarray(returns)).all() and np.all(np.asarray(returns) < 0)


@pytest.mark.slow
def test_dense_ppo_learns_pendulum():
    """Dense PPO (observations normalized and rewards scaled, the defaults for box actions) on
    gymnax Pendulum-v1, 300k steps, lr 1e-3, seed 0: a greedy return better than −400 (a random
    policy gets about −1200; 0 is the best). Measured on a 2-core AMD EPYC: −237 (seed 1: −338)."""
    config = PPOConfig(env_id="Pendulum-v1", num_envs=8, total_timesteps=300_000)
    hp = PPOHParams(lr=1e-3)
    members = build_population(hp, {"method": ["dense"]}, (0,))
    result = run_population(make_train, config, members, progress=False)
    assert float(np.mean(result.eval_returns)) > -400.0, result.eval_returns


def test_the_deployed_actor_takes_raw_observations_and_acts_as_the_trained_one():
    # obs_normalization auto = on for box actions: after training, the saved actor (normalization
    # folded into its first layer) on raw observations computes what the trained actor computes
    # on normalized ones.
    config = PPOConfig(env_id="MountainCarContinuous-v0", hidden_sizes=(16, 16), total_timesteps=4 * 128 * 3)
    state, _, _ = jax.jit(make_train(config))(jax.random.PRNGKey(0), PPOHParams())
    assert float(state.obs_stats.count) > 4 * 128 * 3 - 1  # every acted-on observation counted
    assert np.abs(np.asarray(state.obs_stats.mean)).max() > 1e-3
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 2)) * 0.5
    chain = networks(config)["actor"]
    trained = chain_apply(chain_layers(state.params, chain), normalize(state.obs_stats, obs))[0]
    deployed = chain_apply(chain_layers(deployed_params(config, state), chain), obs)[0]
    # The fold only reorders the first layer's float32 arithmetic: a few ulps of its terms
    # (|x / s| · |W|, at most about 50 here: the velocity's std is about 0.01), carried through
    # tanh (1-Lipschitz) to outputs that start at 0.01 scale; 1e-5 absolute is that bound with room,
    # and the outputs differ by about 2e-9 on this CPU.
    np.testing.assert_allclose(deployed, trained, rtol=1e-4, atol=1e-5)


def test_discrete_ppo_normalizes_nothing_by_default_and_deploys_its_own_params():
    config = PPOConfig(hidden_sizes=(8, 8), total_timesteps=4 * 128 * 2)
    state, _, _ = jax.jit(make_train(config))(jax.random.PRNGKey(0), PPOHParams())
    np.testing.assert_array_equal(state.obs_stats.mean, 0.0)
    deployed = deployed_params(config, state)
    for a, b in zip(jax.tree.leaves(deployed), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, b)
