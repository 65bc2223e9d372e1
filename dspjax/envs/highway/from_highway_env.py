"""Bridges to highway-env itself: ``params_from_config`` reads a highway-env config into
``EnvParams``; ``state_from_highway_env`` imports a live highway-env scene into ``EnvState``, so both
can be stepped from the same state (the exactness test does this after highway-env's reset).
Imports highway-env lazily; nothing else in the package needs it."""

from __future__ import annotations

import numpy as np

from dspjax.envs.highway.params import EnvParams
from dspjax.envs.highway.state import EnvState


def params_from_config(config: dict, *, others_check_collisions: bool) -> EnvParams:
    """``EnvParams`` from a HighwayEnv config dict. ``others_check_collisions`` is a property of the
    env class (False for ``HighwayEnvFast``), not a config key."""
    return EnvParams(
        lanes_count=int(config["lanes_count"]), vehicles_count=int(config["vehicles_count"]),
        simulation_frequency=int(config["simulation_frequency"]), policy_frequency=int(config["policy_frequency"]),
        others_check_collisions=others_check_collisions,
        initial_lane_id=-1 if config["initial_lane_id"] is None else int(config["initial_lane_id"]),
        duration=float(config["duration"]), ego_spacing=float(config["ego_spacing"]),
        vehicles_density=float(config["vehicles_density"]), collision_reward=float(config["collision_reward"]),
        right_lane_reward=float(config["right_lane_reward"]), high_speed_reward=float(config["high_speed_reward"]),
        reward_speed_range=tuple(float(v) for v in config["reward_speed_range"]),
        normalize_reward=bool(config["normalize_reward"]), offroad_terminal=bool(config["offroad_terminal"]))


def params_from_highway_env(env) -> EnvParams:
    """``EnvParams`` of a (possibly wrapped) highway-env HighwayEnv / HighwayEnvFast."""
    from highway_env.envs.highway_env import HighwayEnvFast
    env = env.unwrapped
    return params_from_config(env.config, others_check_collisions=not isinstance(env, HighwayEnvFast))


def state_from_highway_env(env, params: EnvParams) -> EnvState:
    """The full state of a highway-env scene: every vehicle's position, heading, speed, target lane,
    target speed, IDM exponent, MOBIL timer, crashed flag and pending impact, and the env's time and
    frame count. Checks the scene has the shape this port assumes (the ego first, then IDM vehicles
    on the one straight road; collision checks as ``params`` says)."""
    import jax.numpy as jnp
    from highway_env.vehicle.behavior import IDMVehicle
    from highway_env.vehicle.controller import MDPVehicle
    env = env.unwrapped
    vehicles = env.road.vehicles
    if len(vehicles) != params.num_vehicles or vehicles[0] is not env.vehicle or env.road.objects:
        raise ValueError("scene is not [ego, others...] with no objects")
    if not isinstance(vehicles[0], MDPVehicle) or not all(type(v) is IDMVehicle for v in vehicles[1:]):
        raise ValueError("expected an MDPVehicle ego and IDMVehicle others")
    if not np.array_equal(vehicles[0].target_speeds, [20.0, 25.0, 30.0]):
        raise ValueError("the ego's target speeds must be the defaults [20, 25, 30]")
    for i, v in enumerate(vehicles):
        expected = i == 0 or params.others_check_collisions
        if v.check_collisions != expected or (i > 0 and not v.enable_lane_change) or v.route:
            raise ValueError(f"vehicle {i}: collision checks, lane changes or route differ from the port's")
    f = np.float64
    impact = [np.zeros(2) if v.impact is None else np.asarray(v.impact, f) for v in vehicles]
    return EnvState(
        position=jnp.asarray(np.stack([np.asarray(v.position, f) for v in vehicles])),
        heading=jnp.asarray(np.array([v.heading for v in vehicles], f)),
        speed=jnp.asarray(np.array([v.speed for v in vehicles], f)),
        target_lane=jnp.asarray(np.array([v.target_lane_index[2] for v in vehicles]), jnp.int32),
        target_speed=jnp.asarray(np.array([v.target_speed for v in vehicles], f)),
        delta=jnp.asarray(np.array([getattr(v, "DELTA", IDMVehicle.DELTA) for v in vehicles], f)),
        timer=jnp.asarray(np.array([getattr(v, "timer", 0.0) for v in vehicles], f)),
        crashed=jnp.asarray(np.array([v.crashed for v in vehicles], bool)),
        impact=jnp.asarray(np.stack(impact)),
        has_impact=jnp.asarray(np.array([v.impact is not None for v in vehicles], bool)),
        time=jnp.asarray(f(env.time)), steps=jnp.asarray(env.steps, jnp.int32))
