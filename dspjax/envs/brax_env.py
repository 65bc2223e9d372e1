"""brax's environments (``brax:hopper``, ``brax:walker2d``, ...) behind dspjax's batched interface
(``vec_env``): pure JAX, so they run inside the population program like gymnax's.

brax's own environments neither auto-reset nor truncate; here an episode ends when brax says
``done`` (the hopper or walker fell: *terminated*) or after ``MAX_EPISODE_STEPS`` steps
(*truncated*, as gymnasium's MuJoCo ids), and every finished environment restarts at once from a
fresh ``reset`` (new reset noise each episode). The reset and the stepped states are merged leaf by
leaf, so their structures and dtypes must agree: they are checked when the env is made, and a brax
environment whose ``step`` adds state that ``reset`` lacks is refused rather than recompiled.

``--env-config`` passes keyword arguments to brax's environment, e.g. ``{"backend": "spring"}``
(brax's default, ``generalized``, is the most accurate and the slowest to compile on a CPU).
"""

from __future__ import annotations

import dataclasses
import inspect

import jax
import jax.numpy as jnp

from dspjax.envs.env_config import parse_env_config
from dspjax.envs.spaces import ActionSpace
from dspjax.envs.vec_env import VecEnvState, initial_state, record_step
from dspjax.hparams import ConfigError

BRAX_PREFIX = "brax:"
MAX_EPISODE_STEPS = 1000  # gymnasium's Hopper-v5 and Walker2d-v5


def brax_env_ids() -> tuple[str, ...]:
    """``brax:<name>`` for every environment brax registers."""
    from brax import envs
    return tuple(BRAX_PREFIX + name for name in sorted(envs._envs))


def _keyword_arguments(cls) -> list[str]:
    """The keyword arguments ``cls(...)`` takes, following ``**kwargs`` up the class's bases (a
    brax env hands them to ``PipelineEnv``); empty where that cannot be told."""
    names = []
    for base in cls.__mro__:
        if "__init__" not in vars(base):
            continue
        try:
            parameters = inspect.signature(base.__init__).parameters.values()
        except (TypeError, ValueError):
            return []
        names += [p.name for p in parameters if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                  and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
    return []


def _make(name: str, env_config: str):
    from brax import envs
    if name not in envs._envs:
        raise ConfigError(f"env={BRAX_PREFIX + name!r}: unknown brax environment; brax ids are "
                          + ", ".join(brax_env_ids()))
    kwargs = parse_env_config(env_config)
    accepted = _keyword_arguments(envs._envs[name])
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown and accepted:
        raise ConfigError(f"env_config: unknown key(s) {', '.join(map(repr, unknown))} for "
                          f"{BRAX_PREFIX + name}; valid keys: {', '.join(accepted)}")
    try:
        return envs.get_environment(name, **kwargs)
    except Exception as e:  # noqa: BLE001 - e.g. an unknown backend
        raise ConfigError(f"env={BRAX_PREFIX + name!r} with env_config {env_config or '{}'}: cannot "
                          f"be made ({type(e).__name__}: {e})") from None


@dataclasses.dataclass(frozen=True)
class BraxVecEnv:
    """``num_envs`` copies of brax environment ``env_id`` (``brax:<name>``; static: not a pytree)."""
    env_id: str
    num_envs: int
    env_config: str = ""
    state_on_host = False  # the whole environment state is a JAX pytree (checkpoints hold it)

    def __post_init__(self):
        env = _make(self.env_id.removeprefix(BRAX_PREFIX), self.env_config)
        object.__setattr__(self, "_env", env)
        reset = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
        stepped = jax.eval_shape(env.step, reset, jnp.zeros((env.action_size,), jnp.float32))
        shapes = lambda tree: jax.tree.map(lambda x: (x.shape, x.dtype), tree)
        if jax.tree.structure(reset) != jax.tree.structure(stepped) or shapes(reset) != shapes(stepped):
            raise ConfigError(f"env={self.env_id!r}: brax's step returns a state of another structure "
                              "than its reset, which the auto-reset cannot merge")

    @property
    def observation_size(self) -> int:
        return int(self._env.observation_size)

    @property
    def action_space(self) -> ActionSpace:
        ctrl_range = self._env.sys.actuator.ctrl_range  # (actuators, 2): each actuator's low, high
        return ActionSpace.box(ctrl_range[:, 0], ctrl_range[:, 1])

    @property
    def max_episode_steps(self) -> int:
        return MAX_EPISODE_STEPS

    def _reset_all(self, key):
        return jax.vmap(self._env.reset)(jax.random.split(key, self.num_envs))

    def reset(self, key):
        states = self._reset_all(key)
        return states.obs, initial_state((states, jnp.zeros((self.num_envs,), jnp.int32)), self.num_envs)

    def step(self, key, state: VecEnvState, actions):
        states, t = state.env_state
        stepped = jax.vmap(self._env.step)(states, actions)
        t = t + 1
        terminated = stepped.done > 0.5
        truncated = t >= MAX_EPISODE_STEPS
        done = terminated | truncated
        fresh = self._reset_all(key)
        merged = jax.tree.map(
            lambda r, s: jnp.where(done.reshape((-1,) + (1,) * (s.ndim - 1)), r, s).astype(s.dtype),
            fresh, stepped)
        return record_step(state, (merged, jnp.where(done, 0, t)), merged.obs, stepped.reward,
                           terminated, truncated, stepped.obs)
