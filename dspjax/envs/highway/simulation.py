"""One simulation frame: every vehicle acts in list order, then every vehicle moves, then collisions
are checked (``Road.act``, ``Road.step``; spec §7)."""

from __future__ import annotations

import jax.numpy as jnp

from dspjax.envs.highway import kinematics
from dspjax.envs.highway.collision import handle_collisions
from dspjax.envs.highway.idm import ACC_MAX, Traffic, idm_acceleration, neighbours
from dspjax.envs.highway.mobil import lane_change_policy
from dspjax.envs.highway.params import EnvParams
from dspjax.envs.highway.road import closest_lane
from dspjax.envs.highway.state import EnvState


def road_act(state: EnvState, params: EnvParams):
    """``road.act()``: the ego's controls, then each other vehicle's lane-change policy, steering and
    IDM acceleration (a crashed one does nothing: ``clip_actions`` brakes it). Returns the state with
    the new target lanes and timers, and the (steering, acceleration) commands (spec §5, §6)."""
    n = params.num_vehicles
    lane = closest_lane(state.position, state.heading, params.lanes_count)
    traffic = Traffic.of(state.position, state.heading, state.speed, state.target_speed)
    near = neighbours(state.position, params.lanes_count)
    is_other = jnp.arange(n) > 0
    target_lane, timer = lane_change_policy(traffic, near, state.position, lane, state.target_lane, state.timer,
                                            state.delta, is_other & ~state.crashed, params.lanes_count)
    steering = kinematics.steering_control(state.position, state.speed, state.heading, target_lane)
    me = jnp.arange(n)
    on_lane = idm_acceleration(traffic, me, near.front[me, lane], near.has_front[me, lane], state.delta)
    on_target = idm_acceleration(traffic, me, near.front[me, target_lane], near.has_front[me, target_lane],
                                 state.delta)
    idm = jnp.where(lane != target_lane, jnp.minimum(on_lane, on_target), on_lane)
    idm = jnp.clip(idm, -ACC_MAX, ACC_MAX)
    ego = kinematics.speed_control(state.target_speed, state.speed)
    acceleration = jnp.where(is_other, idm, ego)
    return state.replace(target_lane=target_lane, timer=timer), steering, acceleration


def road_step(state: EnvState, steering, acceleration, params: EnvParams) -> EnvState:
    """``road.step(dt)``: the others' timers grow by dt, every vehicle moves (bicycle model, pending
    impacts applied), then collisions are handled (spec §4, §7)."""
    dt = params.dt
    is_other = jnp.arange(params.num_vehicles) > 0
    timer = jnp.where(is_other, state.timer + dt, state.timer)
    steering, acceleration = kinematics.clip_actions(steering, acceleration, state.speed, state.crashed)
    position, heading, speed = kinematics.bicycle_step(state.position, state.heading, state.speed, steering,
                                                       acceleration, state.impact, state.has_impact, dt)
    crashed = state.crashed | state.has_impact
    crashed, impact, has_impact = handle_collisions(position, heading, speed, crashed, dt,
                                                    params.others_check_collisions)
    return state.replace(position=position, heading=heading, speed=speed, timer=timer, crashed=crashed,
                         impact=impact, has_impact=has_impact, steps=state.steps + 1)


def frame(state: EnvState, params: EnvParams) -> EnvState:
    """One simulation frame of length ``1 / simulation_frequency``."""
    state, steering, acceleration = road_act(state, params)
    return road_step(state, steering, acceleration, params)
