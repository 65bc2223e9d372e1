"""The ego's DiscreteMetaAction (``MDPVehicle.act``, ``ControlledVehicle.act``; spec §5):
0 LANE_LEFT, 1 IDLE, 2 LANE_RIGHT, 3 FASTER, 4 SLOWER. It sets the ego's target lane or target
speed once per policy step; the controllers then track the targets every frame."""

from __future__ import annotations

import jax.numpy as jnp

from dspjax.envs.highway.numerics import divide
from dspjax.envs.highway.road import is_reachable_from

LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER = range(5)
TARGET_SPEEDS = (20.0, 25.0, 30.0)  # MDPVehicle.DEFAULT_TARGET_SPEEDS = linspace(20, 30, 3)


def speed_to_index(speed):
    """``MDPVehicle.speed_to_index``: the nearest target speed's index, rounding half to even."""
    n = len(TARGET_SPEEDS)
    x = divide(speed - TARGET_SPEEDS[0], TARGET_SPEEDS[-1] - TARGET_SPEEDS[0])
    return jnp.clip(jnp.round(x * (n - 1)), 0, n - 1).astype(jnp.int32)


def apply_meta_action(action, position, speed, target_lane, target_speed, lanes_count: int):
    """The ego's new (target_lane, target_speed) after ``action``. FASTER/SLOWER step from the index of
    the *current speed*; lane changes step from the *target lane* and are refused unless the new
    lane is reachable from the current position (spec §5)."""
    speeds = jnp.asarray(TARGET_SPEEDS, dtype=jnp.result_type(speed))
    step = jnp.where(action == FASTER, 1, jnp.where(action == SLOWER, -1, 0))
    speed_index = jnp.clip(speed_to_index(speed) + step, 0, len(TARGET_SPEEDS) - 1)
    target_speed = jnp.where(step != 0, speeds[speed_index], target_speed)
    side = jnp.where(action == LANE_LEFT, -1, jnp.where(action == LANE_RIGHT, 1, 0))
    candidate = jnp.clip(target_lane + side, 0, lanes_count - 1).astype(target_lane.dtype)
    target_lane = jnp.where((side != 0) & is_reachable_from(position, candidate), candidate, target_lane)
    return target_lane, target_speed
