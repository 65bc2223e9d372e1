"""Reward scaling's running statistics against NumPy over the same stream of batches."""

import jax.numpy as jnp
import numpy as np

from dspjax.agents.normalization import RewardScaler, RunningMeanStd, folded_first_layer


def test_running_mean_and_variance_are_those_of_every_sample_merged():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 2)).astype(np.float32) for n in (1, 7, 64, 5)]
    stats = RunningMeanStd.create((2,))
    for b in batches:
        stats = stats.update(jnp.asarray(b))
    everything = np.concatenate(batches)
    # the tiny starting count (1e-4, variance 1) weighs in at 1e-4 / 77 relative
    np.testing.assert_allclose(stats.mean, everything.mean(0), rtol=1e-4)
    np.testing.assert_allclose(stats.var, everything.var(0), rtol=1e-4)


def prior_merged_var(samples, prior_count=1e-4):
    """The variance of ``samples`` merged with the starting statistics (mean 0, variance 1,
    count 1e-4)."""
    n, mean, var = len(samples), np.mean(samples), np.var(samples)
    total = prior_count + n
    return (prior_count * 1.0 + n * var + mean ** 2 * prior_count * n / total) / total


def test_rewards_are_divided_by_the_std_of_the_discounted_return_restarted_at_episode_ends():
    rng = np.random.default_rng(1)
    rewards = rng.normal(size=(20, 3)).astype(np.float32)
    dones = rng.random((20, 3)) < 0.3
    gamma = 0.9
    scaler = RewardScaler.create(3)
    returns, seen, expected, got = np.zeros(3), [], [], []
    for r, d in zip(rewards, dones):
        scaler, out = scaler.scale(jnp.asarray(r), jnp.asarray(d), gamma)
        got.append(np.asarray(out))
        returns = r + gamma * returns
        seen.append(returns.copy())
        expected.append(r / np.sqrt(prior_merged_var(np.concatenate(seen)) + 1e-8))
        returns = np.where(d, 0.0, returns)
    assert dones[:-1].any()  # some returns restarted
    np.testing.assert_allclose(np.stack(got), np.stack(expected), rtol=1e-4)
    np.testing.assert_allclose(scaler.returns, returns, rtol=1e-5, atol=1e-6)


def test_the_folded_first_layer_on_raw_observations_is_the_layer_on_normalized_ones():
    rng = np.random.default_rng(2)
    stats = RunningMeanStd.create((5,)).update(jnp.asarray(rng.normal(4.0, 3.0, (100, 5)), jnp.float32))
    kernel = rng.normal(size=(5, 6)).astype(np.float32)
    kernel[:, 2] = 0.0  # a pruned neuron: its incoming weights and bias are 0
    bias = rng.normal(size=6).astype(np.float32)
    bias[2] = 0.0
    x = rng.normal(4.0, 3.0, (32, 5)).astype(np.float32)
    folded = folded_first_layer({"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}, stats)
    mean, std = np.asarray(stats.mean, np.float64), np.sqrt(np.asarray(stats.var, np.float64) + 1e-8)
    reference = ((x - mean) / std) @ kernel + bias
    # float32: |error| <= a few ulps of sum |terms| per output
    bound = 8 * np.finfo(np.float32).eps * (np.abs((x - mean) / std) @ np.abs(kernel) + np.abs(bias))
    assert np.all(np.abs(np.asarray(x @ folded["kernel"] + folded["bias"]) - reference) <= bound + 1e-30)
    assert np.all(np.asarray(folded["kernel"])[:, 2] == 0) and float(folded["bias"][2]) == 0.0


def test_statistics_never_updated_fold_to_the_same_layer_bit_for_bit():
    rng = np.random.default_rng(3)
    layer = {"kernel": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
             "bias": jnp.asarray(rng.normal(size=3), jnp.float32)}
    folded = folded_first_layer(layer, RunningMeanStd.create((4,)))
    np.testing.assert_array_equal(folded["kernel"], layer["kernel"])
    np.testing.assert_array_equal(folded["bias"], layer["bias"])
