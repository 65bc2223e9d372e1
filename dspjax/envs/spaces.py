"""What an environment's actions are: the one description envs, agents, the bridge, evaluation,
export and the run directory read.

``ActionSpace`` is either *discrete* (``n`` actions, an integer each; the policy outputs ``n``
scores and acts by their argmax) or a *box* (a float vector of ``size`` dimensions within ``low``
and ``high``; the policy outputs ``size`` numbers, the mean action, which is clipped to the bounds
before it reaches the environment). Every batched environment tells its ``action_space``.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

DISCRETE, BOX = "discrete", "box"


@dataclasses.dataclass(frozen=True)
class ActionSpace:
    """``ActionSpace.discrete(n)`` or ``ActionSpace.box(low, high)`` (static: hashable, not a pytree)."""
    kind: str
    n: int = 0            # discrete: the number of actions
    low: tuple = ()       # box: the lower bound of each dimension
    high: tuple = ()      # box: the upper bound of each dimension

    @classmethod
    def discrete(cls, n: int) -> ActionSpace:
        return cls(DISCRETE, n=int(n))

    @classmethod
    def box(cls, low, high) -> ActionSpace:
        low = np.asarray(low, np.float64).reshape(-1)
        high = np.asarray(high, np.float64).reshape(-1)
        return cls(BOX, low=tuple(map(float, low)), high=tuple(map(float, high)))

    @classmethod
    def from_gymnasium(cls, space) -> ActionSpace:
        """From a ``gymnasium.spaces.Discrete`` or a ``Box``; ValueError for any other space."""
        import gymnasium as gym
        if isinstance(space, gym.spaces.Discrete):
            return cls.discrete(space.n)
        if isinstance(space, gym.spaces.Box):
            return cls.box(space.low, space.high)
        raise ValueError(f"action space {space} is neither Discrete nor Box")

    @classmethod
    def from_gymnax(cls, space) -> ActionSpace:
        """From a gymnax ``Discrete`` or ``Box`` space (gymnax keeps scalar bounds for a whole box)."""
        if hasattr(space, "n"):
            return cls.discrete(space.n)
        size = math.prod(space.shape) if space.shape else 1
        return cls.box(np.broadcast_to(space.low, (size,)), np.broadcast_to(space.high, (size,)))

    @classmethod
    def from_json(cls, record: dict) -> ActionSpace:
        """From ``to_json``'s dict (an exported policy's manifest)."""
        if record["type"] == DISCRETE:
            return cls.discrete(record["n"])
        return cls.box(record["low"], record["high"])

    def to_json(self) -> dict:
        """``{"type": "discrete", "n"}`` or ``{"type": "box", "low", "high"}``: the ``action_space``
        of an exported policy's manifest (``policy_file.Policy.act`` reads it)."""
        return {"type": self.kind, "n": self.n} if self.is_discrete else \
            {"type": self.kind, "low": list(self.low), "high": list(self.high)}

    @property
    def is_discrete(self) -> bool:
        return self.kind == DISCRETE

    @property
    def size(self) -> int:
        """How many numbers the policy network outputs: the action scores (discrete) or the mean
        action (box)."""
        return self.n if self.is_discrete else len(self.low)

    def greedy(self, outputs):
        """The deterministic action of a policy network's outputs (the last axis): their argmax
        (discrete), or the mean action clipped to the bounds (box). Works on JAX and NumPy arrays."""
        xp = jnp if isinstance(outputs, jnp.ndarray) else np
        if self.is_discrete:
            return xp.argmax(outputs, axis=-1)
        return self.clip(outputs)

    def clip(self, actions):
        """Box actions clipped to the bounds (what the environment is given); discrete ones as they are."""
        if self.is_discrete:
            return actions
        xp = jnp if isinstance(actions, jnp.ndarray) else np
        return xp.clip(actions, xp.asarray(self.low, xp.float32), xp.asarray(self.high, xp.float32))

    def batch_shape(self, num_envs: int) -> tuple:
        """The shape of one batched step's actions: ``(num_envs,)`` or ``(num_envs, size)``."""
        return (num_envs,) if self.is_discrete else (num_envs, self.size)

    @property
    def dtype(self):
        return jnp.int32 if self.is_discrete else jnp.float32

    def __str__(self) -> str:
        if self.is_discrete:
            return f"Discrete({self.n})"
        low, high = (f"{min(b):g}" if min(b) == max(b) else str(list(b)) for b in (self.low, self.high))
        return f"Box({self.size},) in [{low}, {high}]"
