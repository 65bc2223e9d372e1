"""The agent table: each agent's classes, networks, greedy policy and CLI options, read by
everything above the agents."""

import dataclasses

import jax
import numpy as np
import pytest

from dspjax.agents.dqn import DQNConfig, DQNHParams
from dspjax.agents.ppo import PPOConfig, PPOHParams
from dspjax.envs import ActionSpace
from dspjax.hparams import ConfigError
from dspjax.networks import init_layers
from dspjax.train.algos import ALGOS, get_algo


def test_both_agents_are_registered_with_their_networks():
    assert get_algo("ppo").config_cls is PPOConfig and get_algo("ppo").hparams_cls is PPOHParams
    assert get_algo("dqn").config_cls is DQNConfig and get_algo("dqn").hparams_cls is DQNHParams
    assert get_algo("ppo").networks == ("actor", "critic") and get_algo("ppo").policy_network == "actor"
    assert list(get_algo("ppo").declare(PPOConfig())) == ["actor", "critic"]
    assert get_algo("dqn").networks == ("q",) and get_algo("dqn").policy_network == "q"
    assert get_algo("sac").networks == ("actor", "q1", "q2") and get_algo("sac").policy_network == "actor"
    with pytest.raises(ConfigError, match="algo='td3': must be one of ppo, dqn, sac"):
        get_algo("td3")


@pytest.mark.parametrize("name", list(ALGOS))
def test_every_option_sets_a_field_of_the_agents_config(name):
    algo = ALGOS[name]
    fields = {f.name for f in dataclasses.fields(algo.config_cls)}
    flags = [opt.flag for opt in algo.options]
    assert len(flags) == len(set(flags))
    assert {opt.field for opt in algo.options} <= fields
    assert {"env_id", "env_config", "env_workers", "total_timesteps"} <= {o.field for o in algo.options}


@pytest.mark.parametrize("name", ["ppo", "dqn"])  # the agents for discrete actions
def test_greedy_policy_is_the_argmax_of_the_policy_networks_output(name):
    params = init_layers(jax.random.PRNGKey(0), (4, 8, 3))
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (16, 4)))
    h = np.tanh(obs @ np.asarray(params[0]["kernel"]) + np.asarray(params[0]["bias"]))
    if name == "dqn":  # its default activation
        h = np.maximum(obs @ np.asarray(params[0]["kernel"]) + np.asarray(params[0]["bias"]), 0)
    out = h @ np.asarray(params[1]["kernel"]) + np.asarray(params[1]["bias"])
    activation = "relu" if name == "dqn" else "tanh"
    actions = ALGOS[name].greedy_policy(activation, ActionSpace.discrete(3))(params, obs)
    np.testing.assert_array_equal(np.asarray(actions), out.argmax(-1))
    config = ALGOS[name].config(env_id="Acrobot-v1", activation=activation)  # 3 actions
    keyed = ALGOS[name].evaluation_policy("greedy", config)(params, obs, jax.random.PRNGKey(3))
    np.testing.assert_array_equal(np.asarray(keyed), out.argmax(-1))


def test_ppos_greedy_box_action_is_the_actors_output_clipped_and_it_is_not_sampled():
    params = init_layers(jax.random.PRNGKey(0), (3, 8, 1))
    obs = 3 * np.asarray(jax.random.normal(jax.random.PRNGKey(1), (64, 3)))
    params = (params[0], {"kernel": 40 * params[1]["kernel"], "bias": params[1]["bias"]})  # some |mean| > 2
    h = np.tanh(obs @ np.asarray(params[0]["kernel"]) + np.asarray(params[0]["bias"]))
    mean = h @ np.asarray(params[1]["kernel"]) + np.asarray(params[1]["bias"])
    assert (np.abs(mean) > 2).any() and (np.abs(mean) < 2).any()
    config = ALGOS["ppo"].config(env_id="Pendulum-v1")  # torque in [-2, 2]
    greedy = ALGOS["ppo"].evaluation_policy("greedy", config)(params, obs, None)
    np.testing.assert_allclose(np.asarray(greedy), np.clip(mean, -2, 2), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="policy=sample: for discrete actions; these are Box"):
        ALGOS["ppo"].evaluation_policy("sample", config)


def test_sacs_greedy_box_action_is_the_rescaled_tanh_of_the_actors_first_outputs():
    params = init_layers(jax.random.PRNGKey(0), (3, 8, 2))  # Pendulum: 1 mean, 1 log-std output
    obs = 3 * np.asarray(jax.random.normal(jax.random.PRNGKey(1), (64, 3)))
    h = np.maximum(obs @ np.asarray(params[0]["kernel"]) + np.asarray(params[0]["bias"]), 0)
    out = h @ np.asarray(params[1]["kernel"]) + np.asarray(params[1]["bias"])
    config = ALGOS["sac"].config(env_id="Pendulum-v1")  # torque in [-2, 2], relu
    greedy = ALGOS["sac"].evaluation_policy("greedy", config)(params, obs, None)
    np.testing.assert_allclose(np.asarray(greedy), 2 * np.tanh(out[:, :1]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="policy=sample: sac is evaluated by its greedy action"):
        ALGOS["sac"].evaluation_policy("sample", config)


def test_ppo_samples_from_the_actors_softmax_and_dqn_has_no_sampled_policy():
    params = init_layers(jax.random.PRNGKey(0), (4, 8, 3))
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (1, 4)))
    logits = np.tanh(obs @ np.asarray(params[0]["kernel"]) + np.asarray(params[0]["bias"])) \
        @ np.asarray(params[1]["kernel"]) + np.asarray(params[1]["bias"])
    probs = np.exp(logits[0] - logits[0].max())
    probs /= probs.sum()
    sample = jax.vmap(lambda k: ALGOS["ppo"].sampled_policy("tanh", ActionSpace.discrete(3))(params, obs, k)[0])
    actions = np.asarray(sample(jax.random.split(jax.random.PRNGKey(2), 20_000)))
    freq = np.bincount(actions, minlength=3) / len(actions)
    np.testing.assert_allclose(freq, probs, atol=0.015)  # 20k draws: std <= 0.0036 per action
    assert ALGOS["dqn"].sampled_policy is None


def test_config_from_a_run_directory_dict():
    algo = get_algo("dqn")
    saved = dataclasses.asdict(DQNConfig(hidden_sizes=(8, 4), buffer_size=64))
    saved["hidden_sizes"] = list(saved["hidden_sizes"])   # as JSON gives it back
    saved["field_of_a_later_version"] = 1
    assert algo.config_from_dict(saved) == DQNConfig(hidden_sizes=(8, 4), buffer_size=64)
    with pytest.raises(ConfigError, match="buffer_size: not a config field of ppo"):
        get_algo("ppo").config(buffer_size=10)


def test_ppo_defaults_to_its_box_hyperparameters_where_the_actions_are_a_box():
    from dspjax.agents.ppo import PPO_BOX, PPOHParams

    ppo = ALGOS["ppo"]
    assert ppo.defaults(env_id="Pendulum-v1")[1] is PPO_BOX
    assert ppo.defaults(env_id="CartPole-v1")[1] == PPOHParams()
    assert PPO_BOX != PPOHParams() and float(PPO_BOX.dsp.lam) != float(PPOHParams().dsp.lam)
    for name in ("dqn", "sac"):  # no box defaults of their own: their class defaults
        algo = ALGOS[name]
        env = "CartPole-v1" if name == "dqn" else "Pendulum-v1"
        assert algo.defaults(env_id=env) == (algo.config(env_id=env), algo.hparams_cls())
