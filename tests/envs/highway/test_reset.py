"""``reset`` draws scenes by highway-env's spawning rules (spec §3): the same rules hold for JAX resets
and for highway-env's own (imported), and the distributions agree (means within 5 standard errors)."""

import math

import jax
import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pytest.importorskip("highway_env")

from dspjax.envs import highway as hw  # noqa: E402
from dspjax.envs.highway.from_highway_env import params_from_highway_env, state_from_highway_env  # noqa: E402

N_JAX, N_HIGHWAY_ENV = 512, 64


def _check_spawn_rules(state, params):
    """Assert spec §3's rules on one scene (numpy arrays). Rules hold to float64 rounding (1e-9)."""
    x, y = state["position"][:, 0], state["position"][:, 1]
    lane, speed = state["target_lane"], state["speed"]
    n = params.lanes_count
    assert x.shape == (params.vehicles_count + 1,)
    assert np.all((0 <= lane) & (lane < n)) and np.array_equal(y, 4.0 * lane)
    assert np.all(state["heading"] == 0) and not state["crashed"].any()
    assert np.all(np.diff(x) > 0)  # increasing in list order: the ego is the rearmost
    ego_offset = params.ego_spacing * 37.0 * math.exp(-n / 8)
    assert 3.9 * ego_offset - 1e-9 <= x[0] <= 4.1 * ego_offset + 1e-9
    assert speed[0] == 25.0 and state["target_speed"][0] == 25.0
    others = slice(1, None)
    assert np.all((21.0 <= speed[others]) & (speed[others] <= 24.0))
    assert np.array_equal(state["target_speed"][others], speed[others])
    assert np.all((3.5 <= state["delta"][others]) & (state["delta"][others] <= 4.5))
    offset = (12 + speed[others]) * math.exp(-n / 8) / params.vehicles_density
    gap = np.diff(x)
    assert np.all((0.9 * offset - 1e-9 <= gap) & (gap <= 1.1 * offset + 1e-9))
    np.testing.assert_allclose(state["timer"][others], ((x[others] + 4 * lane[others]) * np.pi) % 1.0, atol=1e-9)


def _as_numpy(state):
    return {k: np.asarray(getattr(state, k)) for k in ("position", "heading", "speed", "target_lane", "target_speed",
                                                        "delta", "timer", "crashed")}


def _summary(states):
    """Per-scene statistics whose means are compared: ego x, last x, mean lane, mean speed, ego lane."""
    return np.array([[s["position"][0, 0], s["position"][-1, 0], s["target_lane"][1:].mean(),
                      s["speed"][1:].mean(), s["target_lane"][0]] for s in states])


@pytest.mark.parametrize("env_id", ["highway-fast-v0", "highway-v0"])
def test_reset_follows_highway_env_spawning(env_id):
    env = gym.make(env_id)
    params = params_from_highway_env(env)
    with jax.enable_x64(True):
        references = []
        for seed in range(N_HIGHWAY_ENV):
            env.reset(seed=seed)
            references.append(_as_numpy(state_from_highway_env(env, params)))
        obs, states = jax.jit(jax.vmap(hw.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(0), N_JAX), params)
    env.close()
    ours = [_as_numpy(jax.tree.map(lambda a, i=i: a[i], states)) for i in range(N_JAX)]
    for scene in references + ours:
        _check_spawn_rules(scene, params)
    assert obs.shape == (N_JAX, 5, 5) and obs.dtype == np.float32 and np.all(obs[:, 0, 0] == 1)
    a, b = _summary(ours), _summary(references)
    standard_error = np.sqrt(a.var(0) / len(a) + b.var(0) / len(b))
    assert np.all(np.abs(a.mean(0) - b.mean(0)) < 5 * standard_error), (a.mean(0), b.mean(0), standard_error)


def test_reset_obeys_initial_lane_id():
    params = hw.highway_fast_v0_params(initial_lane_id=2)
    _, states = jax.vmap(hw.reset, in_axes=(0, None))(jax.random.split(jax.random.key(1), 16), params)
    assert np.all(np.asarray(states.target_lane[:, 0]) == 2)
