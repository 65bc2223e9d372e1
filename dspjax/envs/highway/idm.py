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
    x_v < x_me, ties to the earlier vehicle. Both orders are one: vehicles ranked by x, ties by
    decreasing index; the front is the lowest-ranked vehicle ahead, the rear the highest-ranked behind.
    """
    n = position.shape[0]
    x = position[:, 0]
    index = jnp.arange(n, dtype=jnp.int32)
    # Integer min / max reductions over the leading axis of a (v, me, k) layout: on XLA's CPU backend
    # they vectorize over (me, k), where a float min / max (NaN-propagating) or an argmin runs several
    # times slower.
    precedes = (x[:, None] < x[None, :]) | ((x[:, None] == x[None, :]) & (index[:, None] > index[None, :]))
    rank = jnp.sum(precedes, axis=0, dtype=jnp.int32)                               # (v,)
    vehicle_of_rank = jnp.zeros(n, jnp.int32).at[rank].set(index)
    member = on_lane(position[:, None, :], jnp.arange(lanes_count)[None, :], NEIGHBOUR_LANE_MARGIN)  # (v, k)
    candidate = ~jnp.eye(n, dtype=bool)[:, :, None] & member[:, None, :]          # (v, me, k)
    ahead = x[None, :, None] <= x[:, None, None]
    front_rank = jnp.min(jnp.where(candidate & ahead, rank[:, None, None], n), axis=0)
    rear_rank = jnp.max(jnp.where(candidate & ~ahead, rank[:, None, None], -1), axis=0)
    has_front, has_rear = front_rank < n, rear_rank >= 0
    return Neighbours(jnp.where(has_front, vehicle_of_rank[jnp.minimum(front_rank, n - 1)], n - 1), has_front,
                      jnp.where(has_rear, vehicle_of_rank[jnp.maximum(rear_rank, 0)], 0), has_rear)


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
