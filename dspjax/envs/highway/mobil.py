"""Lateral behaviour of the other vehicles: MOBIL lane changes, the lane-change abort rule and the
decision timer (``IDMVehicle.change_lane_policy``, ``IDMVehicle.mobil``; spec §6, §7).

Everything a decision reads (positions, speeds, lanes, target speeds) is fixed during a frame's
``road.act()``, except other vehicles' target lanes, which the abort rule reads while earlier
vehicles in list order have already acted. MOBIL is therefore evaluated for all vehicles in
parallel, and the target lanes are resolved as the fixed point of the in-order decisions
(``resolve_target_lanes``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dspjax.envs.highway.idm import Neighbours, Traffic, desired_gap, idm_acceleration
from dspjax.envs.highway.road import is_reachable_from

POLITENESS = 0.0
LANE_CHANGE_MIN_ACC_GAIN = 0.2
LANE_CHANGE_MAX_BRAKING_IMPOSED = 2.0
LANE_CHANGE_DELAY = 1.0


def mobil(traffic: Traffic, near: Neighbours, lane, candidate, delta):
    """``IDMVehicle.mobil(candidate)`` for every vehicle (the "no route" branch; spec §6): refuse if
    the new follower would brake harder than 2 m/s² behind me, else accept if my own acceleration
    gains at least 0.2 m/s². With POLITENESS 0 the followers' terms drop out of the gain."""
    me = jnp.arange(lane.shape[0])
    new_front, has_new_front = near.front[me, candidate], near.has_front[me, candidate]
    new_rear, has_new_rear = near.rear[me, candidate], near.has_rear[me, candidate]
    new_rear_braking = idm_acceleration(traffic, new_rear, me, True, delta, has_me=has_new_rear)
    unsafe = new_rear_braking < -LANE_CHANGE_MAX_BRAKING_IMPOSED
    old_front, has_old_front = near.front[me, lane], near.has_front[me, lane]
    gain = (idm_acceleration(traffic, me, new_front, has_new_front, delta)
            - idm_acceleration(traffic, me, old_front, has_old_front, delta))
    return ~unsafe & ~(gain < LANE_CHANGE_MIN_ACC_GAIN)


def mobil_target_lane(traffic: Traffic, near: Neighbours, position, lane, delta, lanes_count: int):
    """The lane a vehicle decides to move to when its timer fires: the left lane (lane - 1) then the
    right lane (lane + 1) are tried, each if it exists, is reachable and the speed is at least 1 m/s;
    the right one, tried last, wins over the left (spec §6)."""
    target = lane
    for side in (-1, 1):
        candidate = lane + side
        exists = (candidate >= 0) & (candidate < lanes_count)
        candidate_index = jnp.clip(candidate, 0, lanes_count - 1)
        ok = (exists & is_reachable_from(position, candidate_index) & ~(jnp.abs(traffic.speed) < 1)
              & mobil(traffic, near, lane, candidate_index, delta))
        target = jnp.where(ok, candidate, target)
    return target


def abort_candidates(traffic: Traffic, lane, target_lane):
    """(me, v): v could make me abort my lane change: v is not on my target lane, v is ahead of me
    by less than my desired gap to it (0 < x_v - x_me < d*). v also has to target my target lane,
    which is checked in order by ``resolve_target_lanes`` (spec §6)."""
    n = lane.shape[0]
    me, v = jnp.meshgrid(jnp.arange(n), jnp.arange(n), indexing="ij")
    d = traffic.x[v] - traffic.x[me]
    return (me != v) & (lane[v] != target_lane[me]) & (0 < d) & (d < desired_gap(traffic, me, v))


def resolve_target_lanes(target_lane, lane, changing, fires, mobil_target, may_abort):
    """The target lanes after every vehicle acted in list order: a vehicle changing lane aborts
    (target := lane) when a ``may_abort`` vehicle targets the same lane, reading the updated targets
    of vehicles before it and the old ones after it; a vehicle whose timer fires takes its MOBIL
    target (spec §6, §7).

    Vehicle i's decision is ``decide_i(new targets of v < i, old targets of v > i)``. Rather than
    a scan over vehicles, every vehicle decides at once from the current guess, repeated until the
    guess no longer changes (``decide_all``): a fixed point satisfies every ``decide_i``, and those
    equations have one solution (solve them for i = 0, 1, ... in turn), so the fixed point is the
    sequential result; after k rounds the first k vehicles are final, so it takes at most N + 1
    rounds, and usually two (abort chains are rare)."""
    n = lane.shape[0]
    after = jnp.arange(n)[None, :] > jnp.arange(n)[:, None]     # (i, v): v acts after i

    def decide_all(targets):
        seen = jnp.where(after, target_lane[None, :], targets[None, :])  # what i reads of v
        abort = jnp.any(may_abort & (seen == target_lane[:, None]), axis=1)
        return jnp.where(changing, jnp.where(abort, lane, target_lane),
                         jnp.where(fires, mobil_target, target_lane))

    _, targets = jax.lax.while_loop(lambda guesses: jnp.any(guesses[0] != guesses[1]),
                                    lambda guesses: (guesses[1], decide_all(guesses[1])),
                                    (target_lane, decide_all(target_lane)))
    return targets


def lane_change_policy(traffic: Traffic, near: Neighbours, position, lane, state_target_lane, timer, delta,
                       deciding, lanes_count: int):
    """``change_lane_policy`` of every vehicle in ``deciding`` (not crashed, not the ego), in list
    order. Returns the new target lanes and timers: the timer is reset to 0 when it fires
    (``timer > LANE_CHANGE_DELAY`` while not changing lane), whatever MOBIL decides."""
    changing = deciding & (lane != state_target_lane)
    fires = deciding & ~changing & (timer > LANE_CHANGE_DELAY)
    mobil_target = mobil_target_lane(traffic, near, position, lane, delta, lanes_count)
    may_abort = abort_candidates(traffic, lane, state_target_lane)
    targets = resolve_target_lanes(state_target_lane, lane, changing, fires, mobil_target, may_abort)
    return targets, jnp.where(fires, 0.0, timer)
