"""Longitudinal behaviour of the other vehicles: neighbour search and the Intelligent Driver Model
(``Road.neighbour_vehicles``, ``IDMVehicle.acceleration``, ``IDMVehicle.desired_gap``; spec §6)."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from dspjax.envs.highway.kinematics import velocity
from dspjax.envs.highway.numerics import divide, not_zero
from dspjax.envs.highway.road import SPEED_LIMIT, on_lane

COMFORT_ACC_MAX = 3.0
COMFORT_ACC_MIN = -5.0
ACC_MAX = 6.0
DISTANCE_WANTED = 10.0  # 5 + LENGTH
TIME_WANTED = 1.5
NEIGHBOUR_LANE_MARGIN = 1.0


class Traffic(NamedTuple):
    """Per-vehicle quantities the behaviour rules read during one frame's ``road.act()`` (N,)."""
    x: jnp.ndarray
    speed: jnp.ndarray
    target_speed: jnp.ndarray
    velocity: jnp.ndarray   # (N, 2)
    direction: jnp.ndarray  # (N, 2) (cos h, sin h)

    @classmethod
    def of(cls, position, heading, speed, target_speed):
        direction = jnp.stack([jnp.cos(heading), jnp.sin(heading)], axis=-1)
        return cls(position[:, 0], speed, target_speed, velocity(speed, heading), direction)


class Neighbours(NamedTuple):
    """Front and rear vehicle of every vehicle on every lane, (N, lanes) indices and presence."""
    front: jnp.ndarray
    has_front: jnp.ndarray
    rear: jnp.ndarray
    has_rear: jnp.ndarray


def neighbours(position, lanes_count: int) -> Neighbours:
    """``Road.neighbour_vehicles(me, lane)`` for every vehicle and lane at once (spec §6).

    A vehicle v != me is on lane k when |y_v - 4k| <= 3 and -5 <= x_v < 10005 (it may be on two
    lanes). Front: the smallest x_v with x_me <= x_v, ties to the later vehicle; rear: the largest
    x_v < x_me, ties to the earlier vehicle.
    """
    n = position.shape[0]
    x = position[:, 0]
    lanes = jnp.arange(lanes_count)
    # Laid out (v, me, k) and reduced over the leading axis with plain min / max (then the index by a
    # second reduction): on XLA's CPU backend this vectorizes over (me, k), where an argmin over a
    # trailing axis (a variadic reduction) runs several times slower.
    member = on_lane(position[:, None, :], lanes[None, :], NEIGHBOUR_LANE_MARGIN)  # (v, k)
    other = ~jnp.eye(n, dtype=bool)                                                # (v, me)
    candidate = other[:, :, None] & member[:, None, :]                              # (v, me, k)
    xv = x[:, None, None]
    ahead = candidate & (x[None, :, None] <= xv)
    behind = candidate & (xv < x[None, :, None])
    v = jnp.arange(n, dtype=jnp.int32)[:, None, None]
    front_x = jnp.min(jnp.where(ahead, xv, jnp.inf), axis=0)
    rear_x = jnp.max(jnp.where(behind, xv, -jnp.inf), axis=0)
    front = jnp.max(jnp.where(ahead & (xv == front_x), v, 0), axis=0)
    rear = jnp.min(jnp.where(behind & (xv == rear_x), v, n - 1), axis=0)
    has_front, has_rear = ahead.any(0), behind.any(0)
    return Neighbours(jnp.where(has_front, front, n - 1), has_front, jnp.where(has_rear, rear, 0), has_rear)


def desired_gap(traffic: Traffic, me, front):
    """``IDMVehicle.desired_gap``: 10 + 1.5 v + v dv / (2 sqrt(15)), dv the closing speed along my
    heading; no floor at zero (spec §6)."""
    ab = -COMFORT_ACC_MAX * COMFORT_ACC_MIN
    dvel = traffic.velocity[me] - traffic.velocity[front]
    dv = dvel[..., 0] * traffic.direction[me, 0] + dvel[..., 1] * traffic.direction[me, 1]
    v = traffic.speed[me]
    return DISTANCE_WANTED + v * TIME_WANTED + divide(v * dv, 2 * jnp.sqrt(ab))


def idm_acceleration(traffic: Traffic, me, front, has_front, delta, has_me=True):
    """``IDMVehicle.acceleration(ego_vehicle=me, front_vehicle=front)`` with exponent ``delta`` (the
    *calling* vehicle's), 0 where ``me`` is absent. The gap is centre to centre (spec §6)."""
    target = jnp.clip(traffic.target_speed[me], 0, SPEED_LIMIT)
    speed = traffic.speed[me]
    ratio = divide(jnp.maximum(speed, 0), jnp.abs(not_zero(target)))
    acceleration = COMFORT_ACC_MAX * (1 - jnp.power(ratio, delta))
    gap = traffic.x[front] - traffic.x[me]
    braking = COMFORT_ACC_MAX * jnp.power(divide(desired_gap(traffic, me, front), not_zero(gap)), 2)
    acceleration = jnp.where(has_front, acceleration - braking, acceleration)
    return jnp.where(has_me, acceleration, 0.0)
