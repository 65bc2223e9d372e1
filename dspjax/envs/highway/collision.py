"""Collisions between vehicles: rotated rectangles, separating-axis test with prediction over one
frame, and the impacts it produces (``RoadObject.handle_collisions``, ``_is_colliding``,
``utils.are_polygons_intersecting``; spec §7).

Pairs (i, j), i < j, are tested in lexicographic order after every vehicle has moved. A pair that
intersects crashes both vehicles at once; a pair that will intersect within the frame (at constant
velocity) gives i the impact +translation / 2 and j the impact -translation / 2, applied at the
next kinematic step. Later pairs overwrite earlier impacts.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from dspjax.envs.highway.kinematics import LENGTH, WIDTH, velocity
from dspjax.envs.highway.numerics import divide

DIAGONAL = math.sqrt(LENGTH**2 + WIDTH**2)
# Separating-axis tests per chunk when only the tested pairs are gathered: all pairs (highway-v0)
# have a few dozen tested per frame; the ego's pairs alone (highway-fast-v0) rarely more than one.
PAIR_CHUNK = 64
EGO_PAIR_CHUNK = 1
_CORNERS = ((-LENGTH / 2, -WIDTH / 2), (-LENGTH / 2, WIDTH / 2), (LENGTH / 2, WIDTH / 2), (LENGTH / 2, -WIDTH / 2))


def polygons(position, heading):
    """``RoadObject.polygon``: the 4 corners rotated by the heading and offset by the position, closed
    by repeating the first corner. (..., 5, 2)."""
    c, s = jnp.cos(heading)[..., None], jnp.sin(heading)[..., None]
    px = jnp.asarray([p[0] for p in _CORNERS + _CORNERS[:1]])
    py = jnp.asarray([p[1] for p in _CORNERS + _CORNERS[:1]])
    x = c * px - s * py + position[..., 0:1]
    y = s * px + c * py + position[..., 1:2]
    return jnp.stack([x, y], axis=-1)


def edge_normals(polygon):
    """Unit normals (-(y2 - y1), x2 - x1) / norm of the 4 edges of closed polygons. (..., 4, 2)."""
    p1, p2 = polygon[..., :-1, :], polygon[..., 1:, :]
    normal = jnp.stack([-p2[..., 1] + p1[..., 1], p2[..., 0] - p1[..., 0]], axis=-1)
    return divide(normal, jnp.sqrt(normal[..., 0:1] ** 2 + normal[..., 1:2] ** 2))


def _project(polygon, normals):
    """Min and max over the 5 points of ``polygon`` (..., 5, 2) projected on each of ``normals``
    (..., E, 2). Returns two (..., E)."""
    dots = (polygon[..., None, :, 0] * normals[..., :, None, 0]
            + polygon[..., None, :, 1] * normals[..., :, None, 1])
    return dots.min(-1), dots.max(-1)


def _interval_distance(min_a, max_a, min_b, max_b):
    return jnp.where(min_a < min_b, min_b - max_a, min_a - max_b)


def are_polygons_intersecting(poly_a, poly_b, displacement_a, displacement_b):
    """``utils.are_polygons_intersecting`` on broadcast batches of pairs: whether the polygons
    intersect, whether they will within the displacements, and the translation that separates them
    (along the axis of least overlap, the first such of a's 4 then b's 4 edges). (...), (...), (..., 2).

    highway-env breaks out of the edge loop once both flags are false; the flags are the same as
    over all 8 edges, and the translation is only used when the pair will intersect, in which case
    it never breaks.
    """
    normals = jnp.concatenate(jnp.broadcast_arrays(edge_normals(poly_a), edge_normals(poly_b)), axis=-2)
    min_a, max_a = _project(poly_a, normals)
    min_b, max_b = _project(poly_b, normals)
    intersecting = ~jnp.any(_interval_distance(min_a, max_a, min_b, max_b) > 0, axis=-1)
    relative = displacement_a - displacement_b
    velocity_projection = normals[..., 0] * relative[..., None, 0] + normals[..., 1] * relative[..., None, 1]
    min_a = jnp.where(velocity_projection < 0, min_a + velocity_projection, min_a)
    max_a = jnp.where(velocity_projection < 0, max_a, max_a + velocity_projection)
    distance = _interval_distance(min_a, max_a, min_b, max_b)
    will_intersect = ~jnp.any(distance > 0, axis=-1)
    best = jnp.argmin(jnp.abs(distance), axis=-1)
    min_distance = jnp.take_along_axis(jnp.abs(distance), best[..., None], -1)
    normal = jnp.take_along_axis(normals, best[..., None, None], -2)[..., 0, :]
    centre = _centre(poly_a) - _centre(poly_b)
    sign = jnp.where(centre[..., 0] * normal[..., 0] + centre[..., 1] * normal[..., 1] > 0, 1.0, -1.0)
    return intersecting, will_intersect, min_distance * sign[..., None] * normal


def _centre(polygon):
    """``polygon[:-1].mean(axis=0)``, summed in numpy's order."""
    return (((polygon[..., 0, :] + polygon[..., 1, :]) + polygon[..., 2, :]) + polygon[..., 3, :]) / 4


def _last_true(mask, axis):
    """Index of the last True along ``axis`` (0 where none) and whether there is one."""
    size = mask.shape[axis]
    return size - 1 - jnp.argmax(jnp.flip(mask, axis), axis=axis), jnp.any(mask, axis=axis)


def _gathered_pair_tests(poly, displacement, tested, chunk_size: int):
    """``are_polygons_intersecting`` on every (row, column) pair of ``tested`` (rows, N), untested
    pairs giving False / 0, computed only on the tested pairs: they are gathered ``chunk_size`` at a
    time (in flat order, by rank) and the results scattered back, looping until every tested pair is
    done. Each pair's arithmetic is that of the test on all pairs (up to XLA's fusion choices, i.e.
    float rounding); under ``vmap`` the loop runs as many chunks as the busiest scene needs."""
    rows, n = tested.shape
    flat = tested.reshape(-1)
    rank = jnp.cumsum(flat) - 1
    count = jnp.sum(flat)
    pair_ids = jnp.arange(rows * n)

    def chunk(carry):
        c, intersecting, will_intersect, translation = carry
        slot = jnp.where(flat & (rank >= c * chunk_size), rank - c * chunk_size, chunk_size)
        pair = jnp.full(chunk_size, rows * n).at[slot].set(pair_ids, mode="drop")  # rows * n: empty slot
        i, j = jnp.minimum(pair, rows * n - 1) // n, pair % n
        hit, will, shift = are_polygons_intersecting(poly[i], poly[j], displacement[i], displacement[j])
        return (c + 1, intersecting.at[pair].set(hit, mode="drop"), will_intersect.at[pair].set(will, mode="drop"),
                translation.at[pair].set(shift, mode="drop"))

    init = (0, jnp.zeros(rows * n, bool), jnp.zeros(rows * n, bool), jnp.zeros((rows * n, 2), poly.dtype))
    _, intersecting, will_intersect, translation = jax.lax.while_loop(
        lambda carry: carry[0] * chunk_size < count, chunk, init)
    return intersecting.reshape(rows, n), will_intersect.reshape(rows, n), translation.reshape(rows, n, 2)


def handle_collisions(position, heading, speed, crashed, dt, others_check_collisions: bool):
    """``Road.step``'s collision pass after the moves (spec §7). Returns crashed, impact (N, 2) and
    has_impact: intersecting pairs crash now; for vehicle k the impact of the last pair in
    lexicographic order that will intersect wins: its largest j > k (+translation / 2), else its
    largest i < k (-translation / 2). Without ``others_check_collisions`` only the ego's pairs
    (0, j) are tested, as in highway-fast-v0.

    Only pairs that pass highway-env's distance pre-check are tested, gathered
    (``_gathered_pair_tests``): a few dozen per frame instead of 2601 with all pairs (highway-v0,
    51 x 51), usually none or one of the ego's 20 (highway-fast-v0)."""
    n = position.shape[0]
    poly = polygons(position, heading)
    displacement = velocity(speed, heading) * dt
    rows = n if others_check_collisions else 1
    a = slice(0, rows)
    delta = position[None, :, :] - position[a, None, :]
    far = (jnp.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)
           > (DIAGONAL + DIAGONAL) / 2 + speed[a, None] * dt)
    tested = (jnp.arange(rows)[:, None] < jnp.arange(n)[None, :]) & ~far
    chunk_size = EGO_PAIR_CHUNK if rows == 1 else PAIR_CHUNK
    intersecting, will_intersect, translation = _gathered_pair_tests(poly, displacement, tested, chunk_size)
    intersecting = jnp.zeros((n, n), bool).at[a].set(intersecting)
    will_intersect = jnp.zeros((n, n), bool).at[a].set(will_intersect)
    translation = jnp.zeros((n, n, 2), translation.dtype).at[a].set(translation)
    crashed = crashed | intersecting.any(0) | intersecting.any(1)
    j, as_first = _last_true(will_intersect, axis=1)
    i, as_second = _last_true(will_intersect, axis=0)
    k = jnp.arange(n)
    impact = jnp.where(as_first[:, None], translation[k, j] / 2,
                       jnp.where(as_second[:, None], -translation[i, k] / 2, 0.0))
    return crashed, impact, as_first | as_second
