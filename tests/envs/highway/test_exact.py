"""Step-exactness against highway-env 1.12.1 itself: reset highway-env with a seed, import its whole
scene into the JAX state, then step both with the same random actions until truncation (stepping on
after a crash, so post-crash dynamics are covered too), comparing at every step every vehicle's
position, heading, speed, target lane and crashed flag, and the observation, reward, terminated and
truncated.

Tolerance: 1e-6 (the port's requirement). The port computes in float64 like highway-env, with the same
operation order and IEEE-exact division (``numerics.divide``); what remains are XLA's own tan, arcsin,
arctan and pow, a few ulps from glibc's, which measured at most ~1e-11 over 20 + 20 full episodes.
Observations are float32 in both (one float32 ulp is 6e-8).

Known divergences (xfail, each checked to be exactly its case; anything else fails):
- the ego's lane-change reachability test |y - 4 lane| <= 8 evaluated with y on the boundary (see
  ``_on_reachability_boundary``);
- a continuous mismatch confined to vehicles that were nearly stopped (|v| < 1 m/s) at the step's
  start: there highway-env's steering loop (gains ~ 1/v, clipped arcsin) grows last-bit noise about
  tenfold per frame (highway-v0 seed 18, a vehicle braking to a stop behind a crash, steering
  3.7e-14 -> saturated in 12 frames in highway-env itself), so no float64 re-implementation whose
  arcsin/tan differ in the last bit can follow it.

Seeds: ``HIGHWAY_EXACT_SEEDS_FAST`` (default 20) and ``HIGHWAY_EXACT_SEEDS_V0`` (default 1: highway-env
itself takes ~0.2 s per highway-v0 step, 40 steps an episode); set both to 20 for the full check.
"""

import os

import jax
import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pytest.importorskip("highway_env")

from dspjax.envs import highway as hw  # noqa: E402
from dspjax.envs.highway.from_highway_env import params_from_highway_env, state_from_highway_env  # noqa: E402

TOLERANCE = 1e-6
SLOW = 1.0  # m/s: below it the lateral controller (gains ~ 1/speed) amplifies ulps ~10x per frame
SEEDS = {"highway-fast-v0": int(os.environ.get("HIGHWAY_EXACT_SEEDS_FAST", 20)),
         "highway-v0": int(os.environ.get("HIGHWAY_EXACT_SEEDS_V0", 1))}


def _vehicle_arrays(env):
    vehicles = env.unwrapped.road.vehicles
    return {"position": np.stack([v.position for v in vehicles]),
            "heading": np.array([v.heading for v in vehicles], float),
            "speed": np.array([v.speed for v in vehicles], float),
            "target_lane": np.array([v.target_lane_index[2] for v in vehicles]),
            "crashed": np.array([v.crashed for v in vehicles])}


def _on_reachability_boundary(ego_before, action):
    """Whether ``action`` asked for a lane two lanes away from the ego's position at exactly the
    reachability limit |y - 4 lane| = 8 (to 1e-12). highway-env's ego lands on y = 4k exactly or a
    few ulps off depending on the last bits of arcsin/tan/arctan during the lane change, which differ
    between numpy (SVML on AVX-512, glibc elsewhere) and XLA; the decision on the boundary then differs.
    """
    y, target = ego_before
    side = {0: -1, 2: 1}.get(action)
    return side is not None and abs(abs(y - 4 * (target + side)) - 8) < 1e-12


def _run_episode(env, seed, step, observe):
    """Max abs error over one episode; asserts the discrete quantities are equal at every step."""
    obs, _ = env.reset(seed=seed)
    params = params_from_highway_env(env)
    state = state_from_highway_env(env, params)
    worst = float(np.abs(np.asarray(observe(state, params)) - obs).max())
    actions = np.random.default_rng(10_000 + seed)
    truncated, t = False, 0
    while not truncated:
        action = int(actions.integers(hw.NUM_ACTIONS))
        ego = env.unwrapped.vehicle
        ego_before = (float(ego.position[1]), int(ego.target_lane_index[2]))
        speed_before = _vehicle_arrays(env)["speed"]
        obs, reward, terminated, truncated, _ = env.step(action)
        jobs, state, jreward, jterminated, jtruncated, _ = step(jax.random.key(0), state, action, params)
        where = f"{env.spec.id} seed {seed} step {t}"
        ref = _vehicle_arrays(env)
        if state.target_lane[0] != ref["target_lane"][0] and _on_reachability_boundary(ego_before, action):
            pytest.xfail(f"{where}: known divergence, ego lane change decided on |y - 4 lane| = 8 exactly "
                         f"({ego_before})")
        assert bool(jterminated) == terminated and bool(jtruncated) == truncated, where
        np.testing.assert_array_equal(np.asarray(state.target_lane), ref["target_lane"], err_msg=where)
        np.testing.assert_array_equal(np.asarray(state.crashed), ref["crashed"], err_msg=where)
        errors = [np.abs(np.asarray(getattr(state, k)) - ref[k]).max() for k in ("position", "heading", "speed")]
        off = np.abs(np.asarray(state.position) - ref["position"]).max(1) > TOLERANCE
        if off.any() and np.all(np.abs(speed_before[off]) < SLOW):
            pytest.xfail(f"{where}: known divergence, vehicles {np.nonzero(off)[0]} near-stopped (speeds "
                         f"{speed_before[off]}): highway-env's own steering amplifies last-bit noise there")
        errors += [np.abs(np.asarray(jobs) - obs).max(), abs(float(jreward) - reward)]
        assert max(errors) <= TOLERANCE, (where, errors)
        worst = max(worst, *map(float, errors))
        t += 1
    assert t == int(env.unwrapped.config["duration"])
    return worst


_STEP, _OBSERVE = jax.jit(hw.step), jax.jit(hw.observation)
_ENVS = {}


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("env_id,seed", [(e, s) for e, n in SEEDS.items() for s in range(n)])
def test_steps_match_highway_env(x64, env_id, seed):
    if env_id not in _ENVS:
        _ENVS[env_id] = gym.make(env_id)
    worst = _run_episode(_ENVS[env_id], seed, _STEP, _OBSERVE)
    print(f"{env_id} seed {seed}: max abs error {worst:.3g}")


def test_import_rejects_a_scene_it_cannot_represent():
    env = gym.make("highway-fast-v0")
    env.reset(seed=0)
    params = params_from_highway_env(env)
    env.unwrapped.road.vehicles[3].check_collisions = True  # highway-v0's rule in a fast scene
    with pytest.raises(ValueError, match="collision"):
        state_from_highway_env(env, params)
