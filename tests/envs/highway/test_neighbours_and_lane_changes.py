"""The two parts of a frame that are computed differently from highway-env's loops, against loops in
NumPy written from the spec (§6): the neighbour search (front and rear vehicle of every vehicle on
every lane, ties included) and the in-order resolution of lane-change targets (abort chains
included). Inputs are drawn to make ties and chains common, which real episodes rarely produce."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dspjax.envs.highway.idm import neighbours
from dspjax.envs.highway.mobil import resolve_target_lanes


def neighbours_reference(position, lanes_count):
    """``Road.neighbour_vehicles`` for every (me, lane), by loops: v != me is on lane k when
    |y - 4k| <= 3 and -5 <= x < 10005; front = smallest x_v >= x_me (ties: the later v), rear =
    largest x_v < x_me (ties: the earlier v)."""
    n = len(position)
    out = {name: np.zeros((n, lanes_count), dtype) for name, dtype in
           (("front", int), ("has_front", bool), ("rear", int), ("has_rear", bool))}
    for me in range(n):
        for k in range(lanes_count):
            front = rear = None
            for v in range(n):
                x, y = position[v]
                if v == me or not (abs(y - 4 * k) <= 3 and -5 <= x < 10005):
                    continue
                if position[me][0] <= x and (front is None or x <= position[front][0]):
                    front = v
                if x < position[me][0] and (rear is None or x > position[rear][0]):
                    rear = v
            out["has_front"][me, k], out["has_rear"][me, k] = front is not None, rear is not None
            out["front"][me, k] = front if front is not None else 0
            out["rear"][me, k] = rear if rear is not None else 0
    return out


@pytest.mark.parametrize("seed", range(5))
def test_neighbours_match_loops_with_ties(seed):
    rng = np.random.default_rng(seed)
    n, lanes = 12, 3
    x = rng.choice([0.0, 10.0, 20.0, 30.0, -7.0], size=n)  # few values: many ties, some off the road
    y = rng.choice([0.0, 2.5, 3.5, 4.0, 8.0, 11.5], size=n)  # between lanes too
    position = np.stack([x, y], axis=-1).astype(np.float32)
    ours = neighbours(jnp.asarray(position), lanes)
    reference = neighbours_reference(position, lanes)
    for name in ("has_front", "has_rear"):
        np.testing.assert_array_equal(np.asarray(getattr(ours, name)), reference[name], err_msg=name)
    for name in ("front", "rear"):
        present = reference["has_" + name]
        np.testing.assert_array_equal(np.asarray(getattr(ours, name))[present], reference[name][present],
                                      err_msg=name)


def resolve_reference(target_lane, lane, changing, fires, mobil_target, may_abort):
    """The list-order loop of ``change_lane_policy``'s target updates."""
    targets = np.array(target_lane)
    for i in range(len(lane)):
        if changing[i]:
            if np.any(may_abort[i] & (targets == targets[i])):
                targets[i] = lane[i]
        elif fires[i]:
            targets[i] = mobil_target[i]
    return targets


@pytest.mark.parametrize("seed", range(20))
def test_target_lanes_resolve_like_the_in_order_loop(seed):
    rng = np.random.default_rng(seed)
    n = 15
    lane = rng.integers(0, 3, n)
    target_lane = np.clip(lane + rng.choice([-1, 0, 1], n), 0, 2)
    changing = (lane != target_lane) & (rng.random(n) < 0.9)
    fires = ~changing & (rng.random(n) < 0.5)
    mobil_target = np.clip(lane + rng.choice([-1, 0, 1], n), 0, 2)
    may_abort = (rng.random((n, n)) < 0.4) & ~np.eye(n, dtype=bool)
    args = (target_lane, lane, changing, fires, mobil_target, may_abort)
    ours = jax.jit(resolve_target_lanes)(*map(jnp.asarray, args))
    np.testing.assert_array_equal(np.asarray(ours), resolve_reference(*args))


def test_abort_chains_are_followed_to_the_end():
    """Vehicle i may abort only because of vehicle i - 1, all changing to lane 1 from lane 0: vehicle 0
    keeps its change (nothing before it), 1 aborts (0 targets lane 1), 2 keeps (1 now targets lane
    0), 3 aborts, ... — each decision flips with the one before it, the longest chain there is."""
    n = 8
    lane, target_lane = np.zeros(n, int), np.ones(n, int)
    may_abort = np.eye(n, k=-1, dtype=bool)
    args = (target_lane, lane, np.ones(n, bool), np.zeros(n, bool), lane, may_abort)
    ours = np.asarray(resolve_target_lanes(*map(jnp.asarray, args)))
    np.testing.assert_array_equal(ours, resolve_reference(*args))
    np.testing.assert_array_equal(ours, [1, 0, 1, 0, 1, 0, 1, 0])
