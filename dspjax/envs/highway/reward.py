"""Reward terms, scalar reward and episode flags (``HighwayEnv._rewards``, ``_reward``,
``_is_terminated``, ``_is_truncated``; spec §9)."""

from __future__ import annotations

import jax.numpy as jnp

from dspjax.envs.highway.numerics import divide, lmap
from dspjax.envs.highway.params import EnvParams


def reward_terms(speed, heading, target_lane, crashed, on_road, params: EnvParams):
    """The info["rewards"] dict of the ego: collision, right lane (of the *target* lane), high forward
    speed scaled over reward_speed_range and clipped, on road."""
    forward_speed = speed * jnp.cos(heading)
    scaled_speed = lmap(forward_speed, params.reward_speed_range, (0, 1))
    dtype = forward_speed.dtype
    return {"collision_reward": crashed.astype(dtype),
            "right_lane_reward": divide(target_lane.astype(dtype), max(params.lanes_count - 1, 1)),
            "high_speed_reward": jnp.clip(scaled_speed, 0, 1),
            "on_road_reward": on_road.astype(dtype)}


def reward(terms, params: EnvParams):
    """Weighted sum of the terms (on_road's weight is 0), mapped from [collision_reward,
    high_speed_reward + right_lane_reward] to [0, 1] when normalize_reward, times on_road."""
    total = (0 + params.collision_reward * terms["collision_reward"]
             + params.right_lane_reward * terms["right_lane_reward"]
             + params.high_speed_reward * terms["high_speed_reward"]
             + 0 * terms["on_road_reward"])
    normalised = lmap(total, (params.collision_reward, params.high_speed_reward + params.right_lane_reward), (0, 1))
    total = jnp.where(params.normalize_reward, normalised, total)
    return total * terms["on_road_reward"]


def is_terminated(crashed, on_road, params: EnvParams):
    return crashed | (params.offroad_terminal & ~on_road)


def is_truncated(time, params: EnvParams):
    return time >= params.duration
