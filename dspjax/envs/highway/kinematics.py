"""Vehicle motion: the kinematic bicycle model and the low-level controllers every vehicle uses
(``vehicle/kinematics.py: Vehicle``, ``vehicle/controller.py: ControlledVehicle``; spec §4, §5).

All functions are elementwise over vehicles.
"""

from __future__ import annotations

import jax.numpy as jnp

from dspjax.envs.highway.numerics import divide, not_zero, wrap_to_pi
from dspjax.envs.highway.road import lateral

LENGTH = 5.0
WIDTH = 2.0
MAX_SPEED = 40.0
MIN_SPEED = -40.0

TAU_ACC = 0.6
TAU_HEADING = 0.2
TAU_LATERAL = 0.6
KP_A = 1 / TAU_ACC
KP_HEADING = 1 / TAU_HEADING
KP_LATERAL = 1 / TAU_LATERAL
MAX_STEERING_ANGLE = jnp.pi / 3


def steering_control(position, speed, heading, target_lane):
    """``ControlledVehicle.steering_control``: lateral position -> lateral speed -> heading -> heading
    rate -> steering angle, clipped to +-pi/3 (spec §5). Lanes are straight, so the lane heading is 0."""
    lateral_speed_command = -KP_LATERAL * lateral(position[..., 1], target_lane)
    heading_command = jnp.arcsin(jnp.clip(divide(lateral_speed_command, not_zero(speed)), -1, 1))
    heading_ref = 0.0 + jnp.clip(heading_command, -jnp.pi / 4, jnp.pi / 4)
    heading_rate_command = KP_HEADING * wrap_to_pi(heading_ref - heading)
    slip_angle = jnp.arcsin(jnp.clip(divide(LENGTH / 2, not_zero(speed)) * heading_rate_command, -1, 1))
    steering_angle = jnp.arctan(2 * jnp.tan(slip_angle))
    return jnp.clip(steering_angle, -MAX_STEERING_ANGLE, MAX_STEERING_ANGLE)


def speed_control(target_speed, speed):
    """``ControlledVehicle.speed_control``: proportional, not clipped (spec §5)."""
    return KP_A * (target_speed - speed)


def clip_actions(steering, acceleration, speed, crashed):
    """``Vehicle.clip_actions``: a crashed vehicle brakes (a = -speed) straight; beyond +-40 m/s the
    acceleration may only bring the speed back (spec §4)."""
    steering = jnp.where(crashed, 0.0, steering)
    acceleration = jnp.where(crashed, -1.0 * speed, acceleration)
    acceleration = jnp.where(speed > MAX_SPEED, jnp.minimum(acceleration, 1.0 * (MAX_SPEED - speed)),
                             jnp.where(speed < MIN_SPEED, jnp.maximum(acceleration, 1.0 * (MIN_SPEED - speed)),
                                       acceleration))
    return steering, acceleration


def bicycle_step(position, heading, speed, steering, acceleration, impact, has_impact, dt):
    """``Vehicle.step`` after ``clip_actions``: move along heading + slip angle, then apply a pending
    impact, then turn and accelerate with the old speed (spec §4). Returns position, heading, speed."""
    beta = jnp.arctan(1 / 2 * jnp.tan(steering))
    angle = heading + beta
    velocity = jnp.stack([speed * jnp.cos(angle), speed * jnp.sin(angle)], axis=-1)
    position = position + velocity * dt
    position = jnp.where(has_impact[..., None], position + impact, position)
    heading = heading + divide(speed * jnp.sin(beta), LENGTH / 2) * dt
    speed = speed + acceleration * dt
    return position, heading, speed


def velocity(speed, heading):
    """``Vehicle.velocity``: speed along the heading, without the slip angle (spec §4). (..., 2)."""
    return jnp.stack([speed * jnp.cos(heading), speed * jnp.sin(heading)], axis=-1)
