"""Environments behind one batched interface: gymnax (pure JAX) and any gymnasium environment
(highway-env's, LunarLander-v3, ...) bridged into the jitted loop by a host callback.

``make_vec_env(env_id, num_envs)`` picks the right one or refuses the id: gymnax ids,
``jax:highway-fast-v0`` / ``jax:highway-v0`` (dspjax's own port, ``envs.highway``) and brax's
``brax:hopper``, ``brax:walker2d``, ... (``envs.brax_env``) stay in JAX;
any other registered gymnasium id, or ``gymnasium:<id>`` to force gymnasium's own version of a
gymnax id, goes through the bridge (``host_env.HostVecEnv``).
"""

import dataclasses

from dspjax.envs.brax_env import BRAX_PREFIX, BraxVecEnv, brax_env_ids
from dspjax.envs.env_config import override_env_config, parse_env_config
from dspjax.envs.evaluate import evaluate_policy
from dspjax.envs.gymnax_env import GymnaxVecEnv, VecEnvState, gymnax_env_ids
from dspjax.envs.highway_vec_env import JAX_PREFIX, HighwayVecEnv, jax_highway_env_ids
from dspjax.envs.host_env import (
    GYMNASIUM_PREFIX,
    HostEnvError,
    HostVecEnv,
    close_host_envs,
    take_host_error,
)
from dspjax.envs.spaces import ActionSpace
from dspjax.hparams import ConfigError


def make_vec_env(env_id: str, num_envs: int, env_config: str = "", num_workers: int | None = None):
    """A batched environment for ``env_id``; raises ConfigError naming the known ids.

    ``env_config`` (JSON object text) applies to bridged gymnasium environments, where it is passed
    to ``gymnasium.make(env_id, config=...)`` (highway-env), and to the ``jax:`` highway ids, where it
    overrides the config keys the port supports; ``num_workers`` applies to bridged ones only:
    ``num_workers`` worker processes step the environments (None: one per CPU core; 0: in-process).
    """
    if env_id.startswith(JAX_PREFIX):
        return HighwayVecEnv(env_id, num_envs, env_config)
    if env_id.startswith(BRAX_PREFIX):
        return BraxVecEnv(env_id, num_envs, env_config)
    if env_id in gymnax_env_ids():
        if env_config.strip():
            raise ConfigError(f"env_config: {env_id} is a gymnax environment, which takes no "
                              f"config; use gymnasium:{env_id} for gymnasium's version")
        return GymnaxVecEnv(env_id, num_envs)
    return HostVecEnv(env_id.removeprefix(GYMNASIUM_PREFIX), num_envs, env_config, num_workers)


def config_vec_env(config, num_envs: int):
    """``make_vec_env`` for an agent config's ``env_id``, ``env_config`` and ``env_workers``."""
    return make_vec_env(config.env_id, num_envs, config.env_config, config.env_workers)


def with_env_config(config, env_config: str | None):
    """``config`` with ``env_config``'s top-level keys put over its own ``env_config`` (``dspjax
    eval --env-config``), checked like any env_config (ConfigError); ``config`` when None."""
    if env_config is None:
        return config
    config = dataclasses.replace(config, env_config=override_env_config(config.env_config, env_config))
    make_vec_env(config.env_id, 1, config.env_config, 0)  # refuses a bad one; makes nothing yet
    return config


def with_env_id(config, env_id: str | None):
    """``config`` on environment ``env_id`` instead of its own (``dspjax eval --env``: a policy
    trained on ``jax:highway-fast-v0`` evaluated on highway-env's own ``highway-fast-v0``, or the
    other way round). Refused (ConfigError) unless both have the same observation size and number
    action space; ``config`` when None."""
    if env_id is None or env_id == config.env_id:
        return config
    old = make_vec_env(config.env_id, 1, config.env_config, 0)  # probes only; steps nothing
    new = make_vec_env(env_id, 1, config.env_config, 0)
    if (new.observation_size, new.action_space) != (old.observation_size, old.action_space):
        raise ConfigError(f"env={env_id!r}: its observations ({new.observation_size} numbers) and "
                          f"actions ({new.action_space}) must be those of the run's {config.env_id} "
                          f"({old.observation_size}, {old.action_space})")
    return dataclasses.replace(config, env_id=env_id)


def known_env_ids() -> tuple[str, ...]:
    """The gymnax ids, the pure-JAX highway ids and brax's (``brax:hopper``, ...); every registered
    gymnasium id is accepted too (through the bridge)."""
    return gymnax_env_ids() + jax_highway_env_ids() + brax_env_ids()


__all__ = ["ActionSpace", "BraxVecEnv", "ConfigError", "GymnaxVecEnv", "HighwayVecEnv", "HostEnvError",
           "HostVecEnv", "VecEnvState", "close_host_envs", "config_vec_env", "evaluate_policy",
           "gymnax_env_ids", "known_env_ids", "make_vec_env", "override_env_config", "parse_env_config",
           "take_host_error", "with_env_config", "with_env_id"]
