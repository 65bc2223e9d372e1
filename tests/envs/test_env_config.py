"""env_config: a top-level key the environment does not know is refused with the valid keys
listed (and the closest one suggested), so is any config for an environment that takes none; a
nested value is the environment's own business; an override puts its top-level keys on top."""

import json
import sys
from pathlib import Path

import pytest

from dspjax.envs import make_vec_env, override_env_config
from dspjax.envs.env_config import check_env_config
from dspjax.hparams import ConfigError

HERE = Path(__file__).parent


def test_an_unknown_highway_key_is_refused_with_the_valid_keys_and_the_closest_one():
    with pytest.raises(ConfigError) as error:
        make_vec_env("highway-fast-v0", 1, '{"duration": 5, "vehicle_density": 2}')
    message = str(error.value)
    assert message.startswith("env_config: unknown key 'vehicle_density' for highway-fast-v0 "
                              "(did you mean 'vehicles_density'?); valid keys: action, ")
    import gymnasium as gym
    valid = sorted(gym.make("highway-fast-v0").unwrapped.default_config())
    assert message.endswith("valid keys: " + ", ".join(valid))
    with pytest.raises(ConfigError, match=r"unknown key 'zzz' for merge-v1; valid keys: action, "):
        make_vec_env("merge-v1", 1, '{"zzz": 1}')


def test_known_top_level_keys_pass_and_nested_values_are_left_to_the_environment():
    env = make_vec_env("highway-fast-v0", 1, json.dumps(
        {"duration": 6, "observation": {"type": "Kinematics", "vehicles_count": 3}}))
    assert (env.observation_size, env.max_episode_steps) == (15, 6)
    check_env_config("intersection-v1", {"action": {"type": "DiscreteMetaAction", "anything": 1}})


@pytest.mark.parametrize("env_id,creator", [("LunarLander-v3", "LunarLander"),
                                            ("gymnasium:CartPole-v1", "CartPoleEnv")])
def test_an_environment_without_a_config_argument_refuses_any_config(env_id, creator):
    name = env_id.removeprefix("gymnasium:")
    with pytest.raises(ConfigError, match=rf"env_config: {name} takes no config \({creator} has no "
                                          r"config argument; got keys 'gravity'\)"):
        make_vec_env(env_id, 1, '{"gravity": -5}')
    assert make_vec_env(env_id, 1, "{}").action_space.n > 0  # an empty config is no config


def test_a_config_argument_without_default_config_takes_any_key():
    sys.path.insert(0, str(HERE))
    try:
        assert make_vec_env("raising_env:Raising-v0", 1, '{"raise_at_step": 7}').observation_size == 3
    finally:
        sys.path.remove(str(HERE))


def test_an_override_puts_its_top_level_keys_over_the_base():
    assert json.loads(override_env_config('{"duration": 5, "lanes_count": 2}',
                                          '{"lanes_count": 4, "vehicles_density": 2}')) == {
        "duration": 5, "lanes_count": 4, "vehicles_density": 2}
    assert json.loads(override_env_config('{"observation": {"type": "Kinematics", "vehicles_count": 3}}',
                                          '{"observation": {"type": "TimeToCollision"}}')) == {
        "observation": {"type": "TimeToCollision"}}  # nested values are replaced whole
    assert override_env_config("", "") == ""
    assert json.loads(override_env_config("", '{"duration": 3}')) == {"duration": 3}
    with pytest.raises(ConfigError, match="env_config: not valid JSON"):
        override_env_config('{"duration": 5}', "{nope")
