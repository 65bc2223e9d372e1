"""Any gymnasium environment (highway-env's among them) inside the jitted loop: the bridge.

``HostVecEnv`` implements the batched interface of ``vec_env`` with ``jax.pure_callback``: ``reset``
and ``step`` each make one host call that steps the whole batch, and under ``vmap`` (a population)
``vmap_method="broadcast_all"`` turns the members' calls into that same one call, so every
environment of every member is stepped together by a ``HostEnvPool`` of worker processes. The
pool is made at the first reset (its size is only known then: members x ``num_envs``) and lives
until ``close_host_envs()`` or the end of the process.

Reproducibility: ``reset(key)`` draws one integer seed per environment from ``key`` and seeds each
environment with it; later episodes come from each environment's own seeded generator, so a run
depends on its keys alone, not on the number of workers. ``step`` ignores its key.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import logging
import math
import os
import time
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from dspjax.envs.env_config import check_env_config, merged_config
from dspjax.envs.gymnax_env import gymnax_env_ids
from dspjax.envs.host_pool import HostEnvError, HostEnvPool, env_timeout, make_gymnasium_env
from dspjax.envs.spaces import ActionSpace
from dspjax.envs.vec_env import VecEnvState, initial_state, record_step
from dspjax.hparams import ConfigError

GYMNASIUM_PREFIX = "gymnasium:"
HIGHWAY_IDS = ("highway-v0", "highway-fast-v0", "merge-v1", "roundabout-v1", "intersection-v1")
# Step limit for gymnasium ids that set none (episodes of merge-v1 end by reaching the merge).
DEFAULT_MAX_EPISODE_STEPS = 1000


@functools.cache
def _probe(env_id: str, env_config: str) -> tuple[int, ActionSpace, int]:
    """``(observation size, action space, episode step limit)`` of one probe environment."""
    import gymnasium as gym
    config = merged_config(env_id, env_config)
    check_env_config(env_id, config)
    try:
        env = make_gymnasium_env(env_id, config)
    except ConfigError:
        raise
    except gym.error.Error as e:
        raise ConfigError(f"env={env_id!r}: unknown environment ({e}); use a gymnax id ("
                          + ", ".join(gymnax_env_ids()) + "), a registered gymnasium id (e.g. "
                          "LunarLander-v3, " + ", ".join(HIGHWAY_IDS) + ") or gymnasium:<id>") from None
    except Exception as e:  # noqa: BLE001 - e.g. a config key the environment rejects
        raise ConfigError(f"env={env_id!r} with env_config {env_config or '{}'}: cannot be made "
                          f"({type(e).__name__}: {e})") from None
    try:
        try:
            action_space = ActionSpace.from_gymnasium(env.action_space)
        except ValueError:
            raise ConfigError(f"env={env_id!r}: action space {env.action_space} is neither Discrete "
                              "nor Box, the two dspjax's agents act in") from None
        env.reset(seed=0)  # a bad config value often shows only here
        obs_size = int(np.prod(env.observation_space.shape))
        limit = env.spec.max_episode_steps if env.spec is not None else None
        if limit is None:
            config = getattr(env.unwrapped, "config", {})
            limit = (int(np.ceil(config["duration"] * config["policy_frequency"]))
                     if config.get("duration") and config.get("policy_frequency")
                     else DEFAULT_MAX_EPISODE_STEPS)
        return obs_size, action_space, int(limit)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - e.g. a config value of the wrong type
        raise ConfigError(f"env={env_id!r} with env_config {env_config or '{}'}: cannot be reset "
                          f"({type(e).__name__}: {e})") from None
    finally:
        env.close()


class _PoolSlot:
    """The pool behind one ``HostVecEnv`` (made at the first reset, sized to the whole batch)."""

    def __init__(self):
        self.pool: HostEnvPool | None = None


_SLOTS: weakref.WeakSet[_PoolSlot] = weakref.WeakSet()
_ERRORS: list[HostEnvError] = []
IDLE_CHECK_SECONDS = 1.0  # how often a host call checks the workers of the other (idle) pools
_last_idle_check = [0.0]


def _check_idle_pools(calling: HostEnvPool | None) -> None:
    """Reports a dead worker of any pool but ``calling`` now (``HostEnvPool.check_workers``), at most once every
    ``IDLE_CHECK_SECONDS``: a pool that waits (the evaluation environments, while training steps
    others) would otherwise notice only at its next call, after the training it ends is spent."""
    now = time.monotonic()
    if now - _last_idle_check[0] < IDLE_CHECK_SECONDS:
        return
    _last_idle_check[0] = now
    for slot in list(_SLOTS):
        if slot.pool is not None and slot.pool is not calling:
            slot.pool.check_workers()


def close_host_envs() -> None:
    """Closes every bridged environment pool of this process (their workers end)."""
    for slot in list(_SLOTS):
        if slot.pool is not None:
            slot.pool.close()
            slot.pool = None


def take_host_error() -> HostEnvError | None:
    """The error a bridged environment raised inside a compiled program, if any (then cleared).
    JAX wraps exceptions raised in callbacks; callers re-raise this one, which names the env."""
    error = _ERRORS[-1] if _ERRORS else None
    _ERRORS.clear()
    return error


class _QuietHostEnvErrors(logging.Filter):
    """JAX logs every exception raised in a callback with its traceback before wrapping it; ours
    is re-raised whole by the caller (``take_host_error``), so its log record is dropped."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], HostEnvError))


atexit.register(close_host_envs)
logging.getLogger("jax._src.callback").addFilter(_QuietHostEnvErrors())


@dataclasses.dataclass(frozen=True, eq=False)
class HostVecEnv:
    """``num_envs`` copies of gymnasium env ``env_id`` stepped on the host (static: not a pytree).

    ``env_config``: JSON object text or a ``.json`` path, passed as ``gymnasium.make(...,
    config=...)``; ``num_workers``: worker processes (None: one per CPU core, at most one per
    environment; 0: stepped in this process); ``timeout``: seconds a worker may show no sign of
    life before it is taken as hung (None: ``$DSPJAX_ENV_TIMEOUT``, else 60; ``host_pool``).
    """
    env_id: str
    num_envs: int
    env_config: str = ""
    num_workers: int | None = None
    timeout: float | None = None
    state_on_host = True  # the environments' state lives in worker processes, not in the JAX state

    def __post_init__(self):
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"env_workers={self.num_workers}: must be >= 0 (0 = in-process)")
        try:
            object.__setattr__(self, "_timeout", env_timeout(self.timeout))
        except ValueError as e:
            raise ConfigError(str(e)) from None
        obs_size, action_space, limit = _probe(self.env_id, self.env_config)
        object.__setattr__(self, "observation_size", obs_size)
        object.__setattr__(self, "action_space", action_space)
        object.__setattr__(self, "max_episode_steps", limit)
        slot = _PoolSlot()
        _SLOTS.add(slot)
        object.__setattr__(self, "_slot", slot)

    # host side ---------------------------------------------------------------------------------
    def _pool(self, total: int) -> HostEnvPool:
        slot = self._slot
        if slot.pool is None or slot.pool.closed or slot.pool.num_envs != total:
            if slot.pool is not None:
                slot.pool.close()
            workers = self.num_workers if self.num_workers is not None else (os.cpu_count() or 1)
            slot.pool = HostEnvPool(self.env_id, total, merged_config(self.env_id, self.env_config),
                                    min(workers, total), self.max_episode_steps, self._timeout)
        return slot.pool

    def _host(self, fn, *args):
        try:
            _check_idle_pools(self._slot.pool)
            return fn(*args)
        except HostEnvError as e:
            _ERRORS.append(e)
            raise

    def _host_reset(self, seeds):
        seeds = np.asarray(seeds)
        obs = self._host(lambda: self._pool(seeds.size).reset(seeds.reshape(-1)))
        return obs.reshape(*seeds.shape, self.observation_size), np.zeros(seeds.shape[:-1], np.int32)

    def _host_step(self, counter_and_actions):
        counter_and_actions = np.asarray(counter_and_actions)
        counter = counter_and_actions[..., 0]
        actions = counter_and_actions[..., 1:].reshape(*counter.shape, *self.action_space.batch_shape(self.num_envs))
        pool = self._slot.pool
        shape = actions.shape[:counter.ndim + 1]  # (members..., num_envs)
        if pool is None or pool.num_envs != math.prod(shape):
            raise HostEnvError(f"environment {self.env_id!r}: stepped before reset")
        obs, reward, terminated, truncated, final_obs = self._host(
            pool.step, actions.reshape(math.prod(shape), *actions.shape[counter.ndim + 1:]))
        return (np.asarray(counter, np.int32) + 1, obs.reshape(*shape, -1), reward.reshape(shape),
                terminated.reshape(shape), truncated.reshape(shape), final_obs.reshape(*shape, -1))

    # device side -------------------------------------------------------------------------------
    def reset_seeds(self, key):
        """The integer seed of each environment that ``reset(key)`` uses."""
        return jax.random.randint(key, (self.num_envs,), 0, np.iinfo(np.int32).max, jnp.int32)

    def reset(self, key):
        seeds = self.reset_seeds(key)
        # The step counter comes out of the host call and goes into the next one: every call
        # then depends on the one before, so none is reordered, hoisted or dropped by the
        # compiler, even where a policy ignores the observations.
        obs, counter = jax.pure_callback(
            self._host_reset,
            (jax.ShapeDtypeStruct((self.num_envs, self.observation_size), jnp.float32),
             jax.ShapeDtypeStruct((), jnp.int32)),
            seeds, vmap_method="broadcast_all")
        return obs, initial_state(counter, self.num_envs)

    def step(self, key, state: VecEnvState, actions):
        del key  # the host environments draw from their own seeded generators
        n, d = self.num_envs, self.observation_size
        shapes = (jax.ShapeDtypeStruct((), jnp.int32),
                  jax.ShapeDtypeStruct((n, d), jnp.float32), jax.ShapeDtypeStruct((n,), jnp.float32),
                  jax.ShapeDtypeStruct((n,), jnp.bool_), jax.ShapeDtypeStruct((n,), jnp.bool_),
                  jax.ShapeDtypeStruct((n, d), jnp.float32))
        # One input array (the counter, then the actions): JAX moves each callback input to a
        # device array before the call, a fixed cost per input that dominates cheap environments.
        # Box actions go as float32, the counter with them (its value only orders the calls).
        dtype = self.action_space.dtype
        counter_and_actions = jnp.concatenate([state.env_state[None].astype(dtype),
                                               actions.astype(dtype).reshape(-1)])
        counter, obs, reward, terminated, truncated, final_obs = jax.pure_callback(
            self._host_step, shapes, counter_and_actions, vmap_method="broadcast_all")
        return record_step(state, counter, obs, reward, terminated, truncated, final_obs)
