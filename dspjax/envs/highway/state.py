"""The full simulation state of a highway episode as a pytree of fixed-size arrays.

Vehicle 0 is the ego (highway-env's ``MDPVehicle``); vehicles 1..N-1 are the others (``IDMVehicle``)
in ``road.vehicles`` order, which is the order every sequential rule of highway-env follows (spec §3,
§7). Vehicles are never added or removed, so the arrays have a static length. A vehicle's current
lane is not stored: highway-env recomputes it from the position after every move, so
``road.closest_lane(position, heading)`` gives it exactly (spec §2).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct


@struct.dataclass
class EnvState:
    position: jnp.ndarray       # (N, 2) world x (along the road), y (to the right)
    heading: jnp.ndarray        # (N,) radians, never wrapped
    speed: jnp.ndarray          # (N,) m/s
    target_lane: jnp.ndarray    # (N,) int32 lane the lateral controller steers to
    target_speed: jnp.ndarray   # (N,) speed the longitudinal controller tracks (constant for the others)
    delta: jnp.ndarray          # (N,) IDM acceleration exponent, randomised per vehicle (unused for the ego)
    timer: jnp.ndarray          # (N,) seconds since the last MOBIL decision (unused for the ego)
    crashed: jnp.ndarray        # (N,) bool
    impact: jnp.ndarray         # (N, 2) displacement applied at the next kinematic step (spec §7)
    has_impact: jnp.ndarray     # (N,) bool: an impact is pending (applying it also sets crashed)
    time: jnp.ndarray           # () seconds of policy time: += 1 / policy_frequency per step
    steps: jnp.ndarray          # () int32 simulation frames since reset
