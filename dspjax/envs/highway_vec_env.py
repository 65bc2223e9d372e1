"""The pure-JAX highway-env port (``dspjax.envs.highway``) behind dspjax's batched environment
interface (``vec_env``): ``jax:highway-fast-v0`` and ``jax:highway-v0``, stepped inside the jitted
loop with no host callback. Finished episodes auto-reset like gymnax's (a fresh scene drawn with
``jax.random``). ``env_config`` overrides highway-env config keys the port supports."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from dspjax.envs.env_config import parse_env_config
from dspjax.envs.highway import ENV_PARAMS, NUM_ACTIONS, EnvParams
from dspjax.envs.highway import reset as highway_reset
from dspjax.envs.highway import step as highway_step
from dspjax.envs.highway.observation import OBSERVATION_SHAPE
from dspjax.envs.spaces import ActionSpace
from dspjax.envs.vec_env import VecEnvState, initial_state, record_step
from dspjax.hparams import ConfigError

JAX_PREFIX = "jax:"
CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(EnvParams) if f.name != "others_check_collisions")


def jax_highway_env_ids() -> tuple[str, ...]:
    return tuple(JAX_PREFIX + name for name in ENV_PARAMS)


def highway_params(env_id: str, env_config: str = "") -> EnvParams:
    """``EnvParams`` of ``jax:<highway id>`` with ``env_config``'s keys over its defaults."""
    name = env_id.removeprefix(JAX_PREFIX)
    if name not in ENV_PARAMS:
        raise ConfigError(f"env={env_id!r}: unknown; pure-JAX ids are " + ", ".join(jax_highway_env_ids()))
    config = parse_env_config(env_config)
    unknown = [k for k in config if k not in CONFIG_KEYS]
    if unknown:
        raise ConfigError(f"env_config: {env_id} does not support {', '.join(map(repr, unknown))}; supported keys: "
                          + ", ".join(CONFIG_KEYS))
    if "initial_lane_id" in config and config["initial_lane_id"] is None:
        config["initial_lane_id"] = -1
    if "reward_speed_range" in config:
        config["reward_speed_range"] = tuple(float(v) for v in config["reward_speed_range"])
    return ENV_PARAMS[name](**config)


@dataclasses.dataclass(frozen=True)
class HighwayVecEnv:
    """``num_envs`` copies of the JAX highway env ``env_id`` (``jax:highway-fast-v0`` / ``jax:highway-v0``)."""
    env_id: str
    num_envs: int
    env_config: str = ""
    state_on_host = False  # the whole environment state is a JAX pytree (checkpoints hold it)

    def __post_init__(self):
        object.__setattr__(self, "params", highway_params(self.env_id, self.env_config))

    @property
    def observation_size(self) -> int:
        return math.prod(OBSERVATION_SHAPE)

    @property
    def action_space(self) -> ActionSpace:
        return ActionSpace.discrete(NUM_ACTIONS)

    @property
    def max_episode_steps(self) -> int:
        return self.params.max_episode_steps

    def _flat(self, obs):
        return obs.reshape(self.num_envs, -1).astype(jnp.float32)

    def reset(self, key):
        keys = jax.random.split(key, self.num_envs)
        obs, env_state = jax.vmap(highway_reset, in_axes=(0, None))(keys, self.params)
        return self._flat(obs), initial_state(env_state, self.num_envs)

    def step(self, key, state: VecEnvState, actions):
        keys = jax.random.split(key, self.num_envs)
        obs, env_state, reward, terminated, truncated, _ = jax.vmap(highway_step, in_axes=(0, 0, 0, None))(
            keys, state.env_state, actions, self.params)
        reset_obs, reset_state = jax.vmap(highway_reset, in_axes=(0, None))(keys, self.params)
        done = terminated | truncated
        env_state = jax.tree.map(lambda r, s: jnp.where(done.reshape((-1,) + (1,) * (s.ndim - 1)), r, s),
                                 reset_state, env_state)
        next_obs = jnp.where(done[:, None, None], reset_obs, obs)
        return record_step(state, env_state, self._flat(next_obs), reward, terminated, truncated, self._flat(obs))

