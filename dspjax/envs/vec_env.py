"""The batched environment interface every agent steps, and its episode bookkeeping.

A batched env steps ``num_envs`` copies of one environment. ``reset(key) -> (obs, state)`` and
``step(key, state, actions) -> (obs, state, reward, terminated, truncated, info)`` work on the whole
batch with gymnasium's semantics: finished episodes auto-reset (the returned ``obs`` is then the
first of the next episode, the last one is ``info["final_observation"]``, needed to bootstrap a
truncated episode), and ``info`` reports the return and length of every episode that just ended.
Observations are flattened float32; actions are one int32 per environment (discrete) or a float32
vector (box). It also tells ``observation_size`` and ``max_episode_steps`` as Python ints and its
``action_space`` (``spaces.ActionSpace``). gymnax environments (``GymnaxVecEnv``) and host-bridged
gymnasium ones (``HostVecEnv``) implement it, so agents never know which kind they step.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import struct


@struct.dataclass
class VecEnvState:
    env_state: Any
    episode_return: jnp.ndarray
    episode_length: jnp.ndarray


def initial_state(env_state, num_envs: int) -> VecEnvState:
    zeros = jnp.zeros((num_envs,), jnp.float32)
    return VecEnvState(env_state, zeros, zeros.astype(jnp.int32))


def record_step(state: VecEnvState, env_state, obs, reward, terminated, truncated, final_obs):
    """The interface's ``step`` result from one raw batched step: truncation only where not also
    terminated, and the return and length of the episodes that ended."""
    reward = reward.astype(jnp.float32)
    terminated = terminated.astype(bool)
    truncated = truncated.astype(bool) & ~terminated
    done = terminated | truncated
    ep_return = state.episode_return + reward
    ep_length = state.episode_length + 1
    info = {"episode_return": jnp.where(done, ep_return, 0.0),
            "episode_length": jnp.where(done, ep_length, 0),
            "episode_done": done,
            "final_observation": final_obs}
    new_state = VecEnvState(env_state, jnp.where(done, 0.0, ep_return), jnp.where(done, 0, ep_length))
    return obs, new_state, reward, terminated, truncated, info
