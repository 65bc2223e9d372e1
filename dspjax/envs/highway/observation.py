"""The Kinematics observation: the ego and the 4 nearest vehicles ahead, [presence, x, y, vx, vy],
normalised to [-1, 1] and clipped (``KinematicObservation.observe``, ``Road.close_objects_to``;
spec §8)."""

from __future__ import annotations

import jax.numpy as jnp

from dspjax.envs.highway.kinematics import LENGTH, MAX_SPEED, velocity
from dspjax.envs.highway.numerics import lmap
from dspjax.envs.highway.road import LANE_WIDTH

OBSERVED_VEHICLES = 5
OBSERVATION_SHAPE = (OBSERVED_VEHICLES, 5)  # rows: vehicles; columns: presence, x, y, vx, vy
PERCEPTION_DISTANCE = 5.0 * MAX_SPEED  # AbstractEnv.PERCEPTION_DISTANCE


def feature_ranges(lanes_count: int):
    """Normalisation ranges of x, y, vx, vy, fixed at the first observation (spec §8)."""
    return ((-5.0 * MAX_SPEED, 5.0 * MAX_SPEED), (-LANE_WIDTH * lanes_count, LANE_WIDTH * lanes_count),
            (-2 * MAX_SPEED, 2 * MAX_SPEED), (-2 * MAX_SPEED, 2 * MAX_SPEED))


def observe(position, heading, speed, lanes_count: int):
    """(5, 5) float32. Row 0 is the ego in absolute coordinates; rows 1-4 are the other vehicles
    within 200 m (Euclidean) and not more than 10 m behind, sorted by |x - x_ego| (ties in list
    order), relative to the ego; missing rows are zeros (spec §8)."""
    features = jnp.concatenate([position, velocity(speed, heading)], axis=-1)  # (N, 4): x, y, vx, vy
    dx = position[1:, 0] - position[0, 0]
    dy = position[1:, 1] - position[0, 1]
    visible = (jnp.sqrt(dx**2 + dy**2) < PERCEPTION_DISTANCE) & (-2 * LENGTH < dx)
    others = features[1:]
    missing = OBSERVED_VEHICLES - 1 - others.shape[0]
    if missing > 0:  # fewer other vehicles than rows: pad with invisible ones
        others = jnp.concatenate([others, jnp.zeros((missing, 4), others.dtype)])
        visible, dx = jnp.concatenate([visible, jnp.zeros(missing, bool)]), jnp.pad(dx, (0, missing))
    order = jnp.argsort(jnp.where(visible, jnp.abs(dx), jnp.inf), stable=True)[:OBSERVED_VEHICLES - 1]
    rows = jnp.concatenate([features[:1], others[order] - features[:1]])
    ranges = feature_ranges(lanes_count)
    normalised = jnp.stack([jnp.clip(lmap(rows[:, f], ranges[f], (-1, 1)), -1, 1) for f in range(4)], axis=-1)
    present = jnp.concatenate([jnp.ones((1,), bool), visible[order]])
    obs = jnp.concatenate([jnp.ones((OBSERVED_VEHICLES, 1), normalised.dtype), normalised], axis=-1)
    return jnp.where(present[:, None], obs, 0.0).astype(jnp.float32)
