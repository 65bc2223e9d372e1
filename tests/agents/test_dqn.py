"""DQN with DSP: TD targets, the replay buffer and ε against NumPy, the masking invariants
after real training steps (the target network shares the online network's mask), soft target
updates, and the defaults on CartPole (three seeds): pruning and learning."""

import jax
import numpy as np
import pytest

from dspjax.agents.dqn import (
    DQNConfig,
    DQNHParams,
    add_transitions,
    epsilon,
    init_buffer,
    make_train,
    networks,
    sample_transitions,
    td_targets,
)
from dspjax.hparams import ConfigError
from dspjax.pruning import THRESHOLD_NAMES, chain_apply, chain_layers, compact, pruner_param_mask
from dspjax.train.population import build_population, run_population, set_hparam


@pytest.mark.parametrize("double", [0, 1])
def test_td_targets_match_numpy(double):
    rng = np.random.default_rng(0)
    reward = rng.normal(size=16).astype(np.float32)
    terminated = rng.random(16) < 0.3
    next_target = rng.normal(size=(16, 3)).astype(np.float32)
    next_online = rng.normal(size=(16, 3)).astype(np.float32)
    ours = td_targets(reward, terminated, next_target, next_online, 0.9, double)
    for i in range(16):
        a = np.argmax(next_online[i]) if double else np.argmax(next_target[i])
        expected = reward[i] + (0.0 if terminated[i] else 0.9 * next_target[i, a])
        np.testing.assert_allclose(ours[i], expected, rtol=1e-6)


def test_replay_buffer_is_a_ring_that_keeps_the_newest():
    buffer = init_buffer(5, 2)
    reference = []
    for step in range(4):
        obs = np.full((2, 2), step, np.float32) + np.arange(2)[:, None] / 10
        buffer = add_transitions(buffer, obs, np.array([step, step]), np.array([1.0, 2.0]),
                                 obs + 1, np.array([False, True]))
        reference.extend(obs[:, 0])
    kept = reference[-5:]  # 8 written, capacity 5
    assert int(buffer.size) == 5 and int(buffer.position) == 8 % 5
    assert sorted(np.asarray(buffer.obs[:, 0]).tolist()) == pytest.approx(sorted(kept))
    batch = sample_transitions(buffer, jax.random.PRNGKey(0), 64)
    assert set(np.asarray(batch["obs"][:, 0]).tolist()) <= set(np.float32(kept).tolist())
    np.testing.assert_allclose(batch["next_obs"], batch["obs"] + 1)


def test_epsilon_decays_linearly_then_stays():
    hp = DQNHParams(eps_start=1.0, eps_end=0.1, eps_fraction=0.5)
    np.testing.assert_allclose([epsilon(hp, p) for p in (0.0, 0.25, 0.5, 0.9)],
                               [1.0, 0.55, 0.1, 0.1], rtol=1e-6)


def test_bad_config_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match="buffer_size=4"):
        DQNConfig(num_envs=8, buffer_size=4).validate()
    with pytest.raises(ConfigError, match="env='Nope-v0'"):
        DQNConfig(env_id="Nope-v0").validate()


def test_training_keeps_pruned_groups_zero_in_online_and_target_networks():
    config = DQNConfig(num_envs=4, total_timesteps=4 * 300, buffer_size=500, batch_size=32,
                       learning_starts=100, target_update_every=20, hidden_sizes=(32, 16),
                       eval_episodes=2)
    # adaptive at c_final 1 prunes hard within a few hundred steps: the masking is what is tested
    hp = set_hparam(set_hparam(DQNHParams(), "prune_every", 2), "c_final", 1.0)
    hp = set_hparam(hp, "threshold_rule", THRESHOLD_NAMES.index("adaptive"))
    state, metrics, _ = jax.jit(make_train(config))(jax.random.PRNGKey(0), hp)
    assert int(metrics["q_alive_neurons"][-1]) < 48
    assert np.all(np.diff(np.asarray(metrics["q_alive_neurons"])) <= 0)
    assert float(metrics["loss"][-1]) != 0.0  # learning happened
    chain = networks(config)["q"]
    pmask = pruner_param_mask(chain_layers(state.params, chain), state.dsp.pruners["q"])
    adam = state.dsp.optimizer[1][0]
    for tree in (state.params, state.target_params, adam.mu, adam.nu):
        tree = chain_layers(tree, chain)
        for leaf, m in zip(jax.tree.leaves(tree), jax.tree.leaves(pmask)):
            assert np.all(np.asarray(leaf)[np.asarray(m) == 0] == 0.0)


@pytest.mark.parametrize("tau", [1.0, 0.3])
def test_target_network_is_a_hard_copy_at_tau_one_and_a_blend_below(tau):
    config = DQNConfig(num_envs=2, total_timesteps=2 * 60, buffer_size=100, batch_size=16,
                       learning_starts=20, target_update_every=1, hidden_sizes=(8,),
                       eval_episodes=1)
    hp = set_hparam(DQNHParams(tau=tau), "method", "dense")
    state, _, _ = jax.jit(make_train(config))(jax.random.PRNGKey(0), hp)
    same = [np.array_equal(t, p) for t, p in zip(jax.tree.leaves(state.target_params),
                                                 jax.tree.leaves(state.params))]
    assert all(same) if tau == 1.0 else not any(same)


@pytest.fixture(scope="module")
def default_runs():
    """The defaults (DSP, the default method) on seeds 0-11 in one population, as
    experiments/dqn_cartpole/sweep.md measured them."""
    config = DQNConfig()
    members = build_population(DQNHParams(), {"method": ["dsp"]}, range(12))
    return config, run_population(make_train, config, members, progress=False)


@pytest.mark.slow
def test_defaults_remove_most_neurons_and_the_compact_network_plays_the_same(default_runs):
    config, result = default_runs
    removed = result.metrics["q_neurons_removed"][:, -1]
    # The relative rule stops by itself: 30-42 % of the neurons over seeds 0-11 (AMD EPYC), and no
    # layer at the floor (4 neurons).
    assert np.all(removed >= 0.2), removed
    assert not np.any(result.metrics["q_floored_layer0"][:, -1]), result.metrics["q_alive_layer0"][:, -1]
    assert not np.any(result.metrics["q_floored_layer1"][:, -1]), result.metrics["q_alive_layer1"][:, -1]
    obs = jax.random.normal(jax.random.PRNGKey(2), (256, 4))
    for i in range(len(removed)):
        member = jax.tree.map(lambda x: x[i], result.final_state)
        q = chain_layers(member.params, networks(config)["q"])
        small = compact(q, member.dsp.pruners["q"].neuron_masks)
        np.testing.assert_array_equal(np.argmax(chain_apply(small, obs, config.activation)[0], -1),
                                      np.argmax(chain_apply(q, obs, config.activation)[0], -1))


@pytest.mark.slow
def test_defaults_learn_cartpole_on_most_seeds(default_runs):
    """DQN with DSP, the defaults, reaches 475 on CartPole-v1 on 10 of seeds 0-11 (AMD EPYC; with
    the adaptive rule and its floor of 32 before, 9 of 12 in experiments/dqn_cartpole/sweep.md,
    then 10). One seed's
    return depends on the CPU and on the population it is trained in (XLA fuses a different
    program), so the check is on the count, with room for seed noise: at least 7 of 12."""
    _, result = default_runs
    returns = result.eval_returns.mean(1)
    assert int(np.sum(returns >= 475.0)) >= 7, returns
