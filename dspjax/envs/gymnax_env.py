"""Pure-JAX environments from gymnax behind dspjax's batched environment interface
(``vec_env``): ``vmap`` over gymnax's own reset and step, which already auto-reset."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from dspjax.envs.spaces import ActionSpace
from dspjax.envs.vec_env import VecEnvState, initial_state, record_step
from dspjax.hparams import ConfigError


def gymnax_env_ids() -> tuple[str, ...]:
    """Ids of the gymnax environments dspjax runs: every one with discrete actions, and the
    classic-control ones with box actions (Pendulum-v1, MountainCarContinuous-v0)."""
    import gymnax
    return tuple(e for e in gymnax.registered_envs if e not in
                 ("Reacher-misc", "Swimmer-misc", "PointRobot-misc", "GaussianBandit-misc"))


@dataclasses.dataclass(frozen=True)
class GymnaxVecEnv:
    """``num_envs`` copies of gymnax environment ``env_id`` (static: not a pytree)."""
    env_id: str
    num_envs: int
    state_on_host = False  # the whole environment state is a JAX pytree (checkpoints hold it)

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
    def action_space(self) -> ActionSpace:
        return ActionSpace.from_gymnax(self._env.action_space(self._params))

    @property
    def max_episode_steps(self) -> int:
        return int(self._params.max_steps_in_episode)

    def _flat(self, obs):
        return obs.reshape(self.num_envs, -1).astype(jnp.float32)

    def reset(self, key):
        keys = jax.random.split(key, self.num_envs)
        obs, env_state = jax.vmap(self._env.reset, in_axes=(0, None))(keys, self._params)
        return self._flat(obs), initial_state(env_state, self.num_envs)

    def step(self, key, state: VecEnvState, actions):
        keys = jax.random.split(key, self.num_envs)
        obs, env_state, reward, terminated, truncated, env_info = jax.vmap(
            self._env.step, in_axes=(0, 0, 0, None))(keys, state.env_state, actions, self._params)
        return record_step(state, env_state, self._flat(obs), reward, terminated, truncated,
                           self._flat(env_info["final_observation"]))
