"""Pure-JAX environments from gymnax behind dspjax's batched environment interface.

A batched env steps ``num_envs`` copies of one environment. ``reset(key) -> (obs, state)`` and
``step(key, state, actions) -> (obs, state, reward, terminated, truncated, info)`` work on the whole
batch with gymnasium's semantics: finished episodes auto-reset (the returned ``obs`` is then the
first of the next episode, the last one is ``info["final_observation"]``, needed to bootstrap a
truncated episode), and ``info`` reports the return and length of every episode that just ended. Observations are flattened
float32. Host-bridged gymnasium environments implement the same interface, so agents never know
which kind they step.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from dspjax.hparams import ConfigError


@struct.dataclass
class VecEnvState:
    env_state: Any
    episode_return: jnp.ndarray
    episode_length: jnp.ndarray


def gymnax_env_ids() -> tuple[str, ...]:
    """Ids of the gymnax environments with discrete actions."""
    import gymnax
    return tuple(e for e in gymnax.registered_envs if e not in
                 ("Pendulum-v1", "MountainCarContinuous-v0", "Reacher-misc", "Swimmer-misc",
                  "PointRobot-misc", "GaussianBandit-misc"))


@dataclasses.dataclass(frozen=True)
class GymnaxVecEnv:
    """``num_envs`` copies of gymnax environment ``env_id`` (static: not a pytree)."""
    env_id: str
    num_envs: int

    def __post_init__(self):
        if self.env_id not in gymnax_env_ids():
            raise ConfigError(f"env={self.env_id!r}: unknown environment; gymnax ids are "
                              + ", ".join(gymnax_env_ids()))
        import gymnax
        env, params = gymnax.make(self.env_id)
        object.__setattr__(self, "_env", env)
        object.__setattr__(self, "_params", params)

    @property
    def observation_size(self) -> int:
        shape = self._env.observation_space(self._params).shape
        return math.prod(shape)  # static Python ints, usable while tracing

    @property
    def num_actions(self) -> int:
        return int(self._env.action_space(self._params).n)

    @property
    def max_episode_steps(self) -> int:
        return int(self._params.max_steps_in_episode)

    def _flat(self, obs):
        return obs.reshape(self.num_envs, -1).astype(jnp.float32)

    def reset(self, key):
        keys = jax.random.split(key, self.num_envs)
        obs, env_state = jax.vmap(self._env.reset, in_axes=(0, None))(keys, self._params)
        zeros = jnp.zeros((self.num_envs,), jnp.float32)
        return self._flat(obs), VecEnvState(env_state, zeros, zeros.astype(jnp.int32))

    def step(self, key, state: VecEnvState, actions):
        keys = jax.random.split(key, self.num_envs)
        obs, env_state, reward, terminated, truncated, env_info = jax.vmap(
            self._env.step, in_axes=(0, 0, 0, None))(keys, state.env_state, actions, self._params)
        reward = reward.astype(jnp.float32)
        terminated = terminated.astype(bool)
        truncated = truncated.astype(bool) & ~terminated
        done = terminated | truncated
        ep_return = state.episode_return + reward
        ep_length = state.episode_length + 1
        info = {"episode_return": jnp.where(done, ep_return, 0.0),
                "episode_length": jnp.where(done, ep_length, 0),
                "episode_done": done,
                "final_observation": self._flat(env_info["final_observation"])}
        new_state = VecEnvState(env_state, jnp.where(done, 0.0, ep_return),
                                jnp.where(done, 0, ep_length))
        return self._flat(obs), new_state, reward, terminated, truncated, info
