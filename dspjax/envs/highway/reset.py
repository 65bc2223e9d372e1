"""Initial states drawn like highway-env's reset (``HighwayEnv._create_vehicles``,
``Vehicle.create_random``, ``IDMVehicle.randomize_behavior``; spec §3), with ``jax.random``: same
distribution, not the same numbers as numpy's PCG64 stream.

The ego (25 m/s, random lane) is placed at 3 offsets plus 0.9-1.1 offset; each other vehicle gets a
random lane, a speed in [21, 24] m/s and is placed 0.9-1.1 of its own offset ahead of the vehicle
placed before it (the frontmost so far), so the ego is the rearmost and x increases in list order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dspjax.envs.highway.params import EnvParams
from dspjax.envs.highway.road import LANE_WIDTH, SPEED_LIMIT
from dspjax.envs.highway.state import EnvState

EGO_SPEED = 25.0
DELTA = 4.0                 # IDMVehicle.DELTA, kept by the ego slot (unused there)
DELTA_RANGE = (3.5, 4.5)
SPEED_RANGE = (0.7 * SPEED_LIMIT, 0.8 * SPEED_LIMIT)
OFFSET_RANGE = (0.9, 1.1)


def spawn_offset(spacing, speed, lanes_count: int):
    """``create_random``'s longitudinal offset: spacing (12 + v) exp(-n / 8)."""
    return spacing * (12 + 1.0 * speed) * jnp.exp(-5 / 40 * lanes_count)


def sample_initial_state(key, params: EnvParams) -> EnvState:
    n_lanes, n_others = params.lanes_count, params.vehicles_count
    dtype = jnp.zeros(()).dtype
    k_lane, k_ego, k_lanes, k_speed, k_offset, k_delta = jax.random.split(key, 6)
    ego_lane = jnp.where(params.initial_lane_id >= 0, params.initial_lane_id,
                         jax.random.randint(k_lane, (), 0, n_lanes))
    ego_offset = spawn_offset(params.ego_spacing, EGO_SPEED, n_lanes)
    ego_x = 3 * ego_offset + ego_offset * jax.random.uniform(k_ego, (), dtype, *OFFSET_RANGE)
    lanes = jax.random.randint(k_lanes, (n_others,), 0, n_lanes)
    speeds = jax.random.uniform(k_speed, (n_others,), dtype, *SPEED_RANGE)
    offsets = spawn_offset(1 / params.vehicles_density, speeds, n_lanes)
    xs = ego_x + jnp.cumsum(offsets * jax.random.uniform(k_offset, (n_others,), dtype, *OFFSET_RANGE))
    deltas = jax.random.uniform(k_delta, (n_others,), dtype, *DELTA_RANGE)
    lane = jnp.concatenate([ego_lane[None], lanes]).astype(jnp.int32)
    x = jnp.concatenate([ego_x[None], xs])
    y = lane * LANE_WIDTH
    speed = jnp.concatenate([jnp.full((1,), EGO_SPEED, dtype), speeds])
    timer = jnp.concatenate([jnp.zeros((1,), dtype), jnp.remainder((xs + lanes * LANE_WIDTH) * jnp.pi, 1.0)])
    n = n_others + 1
    return EnvState(position=jnp.stack([x, y], axis=-1).astype(dtype), heading=jnp.zeros((n,), dtype), speed=speed,
                    target_lane=lane, target_speed=speed, delta=jnp.concatenate([jnp.full((1,), DELTA, dtype), deltas]),
                    timer=timer, crashed=jnp.zeros((n,), bool), impact=jnp.zeros((n, 2), dtype),
                    has_impact=jnp.zeros((n,), bool), time=jnp.zeros((), dtype), steps=jnp.zeros((), jnp.int32))
