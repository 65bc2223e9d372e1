"""Running statistics for PPO's observation normalization and reward scaling, as the usual JAX PPO
baselines do for MuJoCo.

``RunningMeanStd`` merges batches into a mean and variance (Chan et al.'s parallel update: exact
for the concatenation of all batches seen, up to float32 rounding). ``RewardScaler`` keeps each
environment's discounted return ``G_t = r_t + γ G_{t−1}`` (restarted after an episode ends) and
divides rewards by the running standard deviation of ``G``: the scale of the value targets then
stays near 1 whatever the task's reward scale, while the sign and relative size of rewards (and so
the optimal policy) are unchanged. ``normalize`` maps observations to ``(obs − mean) / std`` with
the running statistics (not clipped, so that ``folded_first_layer`` can fold the map into the first
Dense layer: the network that ships then takes raw observations and stays a plain MLP).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

EPSILON = 1e-8


@struct.dataclass
class RunningMeanStd:
    """Mean and (population) variance of every sample merged so far; ``count`` starts at a tiny
    positive number so that the first merge needs no special case."""
    mean: jnp.ndarray
    var: jnp.ndarray
    count: jnp.ndarray

    @classmethod
    def create(cls, shape=()) -> RunningMeanStd:
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.array(1e-4, jnp.float32))

    def update(self, batch) -> RunningMeanStd:
        """The statistics with ``batch`` (samples on axis 0) merged in."""
        batch_mean, batch_var, n = jnp.mean(batch, 0), jnp.var(batch, 0), batch.shape[0]
        total = self.count + n
        delta = batch_mean - self.mean
        mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta ** 2 * self.count * n / total
        return RunningMeanStd(mean, m2 / total, total)


@struct.dataclass
class RewardScaler:
    """Each environment's running discounted return and the statistics of those returns."""
    returns: jnp.ndarray
    stats: RunningMeanStd

    @classmethod
    def create(cls, num_envs: int) -> RewardScaler:
        return cls(jnp.zeros((num_envs,), jnp.float32), RunningMeanStd.create())

    def scale(self, reward, done, gamma) -> tuple[RewardScaler, jnp.ndarray]:
        """``(scaler, reward / std(G))`` after one step of every environment: ``G ← r + γ G``
        enters the statistics, then restarts at 0 where the episode ended (``done``)."""
        returns = reward + gamma * self.returns
        stats = self.stats.update(returns)
        scaled = reward / jnp.sqrt(stats.var + EPSILON)
        return RewardScaler(jnp.where(done, 0.0, returns), stats), scaled


def normalize(stats: RunningMeanStd, obs):
    """``(obs − mean) / sqrt(var + ε)`` with the running statistics of the observations."""
    return (obs - stats.mean) / jnp.sqrt(stats.var + EPSILON)


def folded_first_layer(layer: dict, stats: RunningMeanStd) -> dict:
    """The first Dense layer ``{"kernel", "bias"}`` with ``normalize`` folded in: on a raw ``x`` it
    computes what ``layer`` computes on ``normalize(stats, x)``, ``x @ (W / s) + (b − (μ / s) @ W)``
    for ``s = sqrt(var + ε)``. A pruned neuron's column of ``W`` and its bias stay exactly 0, and
    statistics never updated (mean 0, variance 1) give ``layer`` back bit for bit."""
    scale = jnp.sqrt(stats.var + EPSILON)
    kernel = layer["kernel"]
    return {"kernel": kernel / scale[:, None], "bias": layer["bias"] - (stats.mean / scale) @ kernel}
