"""highway-v0 / highway-fast-v0 as pure functions, gymnax style: ``reset(key, params)`` and
``step(key, state, action, params)``, jittable and vmappable. ``step`` does not auto-reset (the
batched adapter does); it uses no randomness (spec §10), the key is kept for the interface.
Computation follows the default float dtype: enable ``jax_enable_x64`` for highway-env's float64."""

from __future__ import annotations

import jax

from dspjax.envs.highway.meta_action import apply_meta_action
from dspjax.envs.highway.observation import observe
from dspjax.envs.highway.params import EnvParams
from dspjax.envs.highway.reset import sample_initial_state
from dspjax.envs.highway.reward import is_terminated, is_truncated, reward, reward_terms
from dspjax.envs.highway.road import on_road
from dspjax.envs.highway.simulation import frame
from dspjax.envs.highway.state import EnvState

NUM_ACTIONS = 5


def observation(state: EnvState, params: EnvParams):
    """The (5, 5) float32 Kinematics observation of ``state`` (spec §8)."""
    return observe(state.position, state.heading, state.speed, params.lanes_count)


def reset(key, params: EnvParams):
    """(observation, state) of a new episode drawn from highway-env's initial distribution (spec §3)."""
    state = sample_initial_state(key, params)
    return observation(state, params), state


def step(key, state: EnvState, action, params: EnvParams):
    """One policy step (spec §7): the ego's meta-action, ``frames_per_step`` simulation frames, then
    observation, reward, terminated, truncated and info (spec §8, §9)."""
    del key
    time = state.time + 1 / params.policy_frequency
    target_lane, target_speed = apply_meta_action(action, state.position[0], state.speed[0], state.target_lane[0],
                                                  state.target_speed[0], params.lanes_count)
    state = state.replace(time=time, target_lane=state.target_lane.at[0].set(target_lane),
                          target_speed=state.target_speed.at[0].set(target_speed))
    state = jax.lax.fori_loop(0, params.frames_per_step, lambda _, s: frame(s, params), state)
    ego_on_road = on_road(state.position[0], state.heading[0], params.lanes_count)
    terms = reward_terms(state.speed[0], state.heading[0], state.target_lane[0], state.crashed[0], ego_on_road,
                         params)
    info = {"speed": state.speed[0], "crashed": state.crashed[0], "rewards": terms}
    terminated = is_terminated(state.crashed[0], ego_on_road, params)
    return observation(state, params), state, reward(terms, params), terminated, is_truncated(state.time, params), info


__all__ = ["NUM_ACTIONS", "EnvParams", "EnvState", "observation", "reset", "step"]
