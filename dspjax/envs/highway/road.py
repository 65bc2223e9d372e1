"""The straight highway: ``lanes_count`` parallel lanes from x = 0 to x = 10000 (spec §2).

Lane k is the StraightLane from (0, 4k) to (10000, 4k), so a world position (x, y) has lane
coordinates s = x and r = y - 4k exactly. Lane 0 is the leftmost (smallest y); "right" is +1.
"""

from __future__ import annotations

import jax.numpy as jnp

from dspjax.envs.highway.numerics import wrap_to_pi

LANE_WIDTH = 4.0          # AbstractLane.DEFAULT_WIDTH
ROAD_LENGTH = 10000.0     # straight_road_network's default length
LANE_VEHICLE_LENGTH = 5.0  # AbstractLane.VEHICLE_LENGTH: margin of on_lane / is_reachable_from
SPEED_LIMIT = 30.0        # every lane's speed_limit


def lateral(y, lane):
    """Lateral coordinate r of world ordinate ``y`` on lane ``lane`` (broadcasts)."""
    return y - lane * LANE_WIDTH


def closest_lane(position, heading, lanes_count: int):
    """``RoadNetwork.get_closest_lane_index``: argmin over lanes of the heading-weighted L1 distance,
    ties to the lower lane (spec §2). ``position`` (..., 2), ``heading`` (...) -> int32 (...)."""
    x, y = position[..., 0:1], position[..., 1:2]
    lanes = jnp.arange(lanes_count)
    angle = jnp.abs(wrap_to_pi(heading[..., None] - 0.0))
    distance = (jnp.abs(lateral(y, lanes)) + jnp.maximum(x - ROAD_LENGTH, 0.0) + jnp.maximum(0.0 - x, 0.0)
                + 1.0 * angle)
    return jnp.argmin(distance, axis=-1).astype(jnp.int32)


def on_lane(position, lane, margin: float = 0.0):
    """``StraightLane.on_lane``: |r| <= width / 2 + margin and -5 <= s < 10005 (spec §2)."""
    x, y = position[..., 0], position[..., 1]
    return ((jnp.abs(lateral(y, lane)) <= LANE_WIDTH / 2 + margin)
            & (-LANE_VEHICLE_LENGTH <= x) & (x < ROAD_LENGTH + LANE_VEHICLE_LENGTH))


def is_reachable_from(position, lane):
    """``StraightLane.is_reachable_from``: |r| <= 2 width and 0 <= s < 10005 (spec §2)."""
    x, y = position[..., 0], position[..., 1]
    return ((jnp.abs(lateral(y, lane)) <= 2 * LANE_WIDTH)
            & (0 <= x) & (x < ROAD_LENGTH + LANE_VEHICLE_LENGTH))


def on_road(position, heading, lanes_count: int):
    """``RoadObject.on_road``: on its closest lane with no margin (spec §2)."""
    return on_lane(position, closest_lane(position, heading, lanes_count))
