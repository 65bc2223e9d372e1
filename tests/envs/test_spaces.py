"""ActionSpace: read from gymnasium and gymnax spaces, told by every kind of batched env, and
round-tripped through a run directory's JSON."""

import gymnasium as gym
import numpy as np
import pytest

from dspjax.envs import ActionSpace, make_vec_env


def test_from_gymnasium_spaces():
    assert ActionSpace.from_gymnasium(gym.spaces.Discrete(4)) == ActionSpace.discrete(4)
    box = ActionSpace.from_gymnasium(gym.spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, 2.0])))
    assert (box.kind, box.size, box.low, box.high) == ("box", 2, (-1.0, 0.0), (1.0, 2.0))
    with pytest.raises(ValueError, match="neither Discrete nor Box"):
        ActionSpace.from_gymnasium(gym.spaces.MultiBinary(3))


@pytest.mark.parametrize("env_id, expected", [
    ("CartPole-v1", ActionSpace.discrete(2)),
    ("Pendulum-v1", ActionSpace.box([-2.0], [2.0])),
    ("MountainCarContinuous-v0", ActionSpace.box([-1.0], [1.0])),
    ("jax:highway-fast-v0", ActionSpace.discrete(5)),
    ("gymnasium:Pendulum-v1", ActionSpace.box([-2.0], [2.0])),
    ("LunarLander-v3", ActionSpace.discrete(4)),
])
def test_every_kind_of_env_tells_its_action_space(env_id, expected):
    assert make_vec_env(env_id, 1, num_workers=0).action_space == expected


@pytest.mark.parametrize("space", [ActionSpace.discrete(3), ActionSpace.box([-2.0, 0.0], [2.0, 1.5])])
def test_json_round_trip(space):
    assert ActionSpace.from_json(space.to_json()) == space
    assert space.size == (3 if space.is_discrete else 2)
