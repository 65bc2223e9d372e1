"""highway-env's scalar helpers (``highway_env.utils``), elementwise and in the same operation order."""

from __future__ import annotations

import jax.numpy as jnp


def divide(a, b):
    """``a / b`` rounded as IEEE division, like numpy. XLA's algebraic simplifier turns a division by
    a constant or by a broadcast value into a multiplication by its reciprocal, which is off by an
    ulp for about a third of the inputs; ulps matter where highway-env compares against an exact
    boundary (a vehicle pushed by a collision exactly to |r| = 3 of a lane). Adding ``0 * a`` makes the
    divisor an array of ``a``'s shape that the simplifier cannot see through (``a`` is finite here)."""
    return a / (b + 0.0 * a)


def not_zero(x, eps: float = 1e-2):
    """``x`` if ``|x| > eps``, else ``eps`` with the sign of ``x`` (``+eps`` for 0) (spec §5)."""
    return jnp.where(jnp.abs(x) > eps, x, jnp.where(x >= 0, eps, -eps))


def wrap_to_pi(x):
    """``((x + pi) mod 2 pi) - pi`` with numpy's floor-mod (spec §5)."""
    return jnp.remainder(x + jnp.pi, 2 * jnp.pi) - jnp.pi


def lmap(v, x, y):
    """Linear map of ``v`` from interval ``x`` to interval ``y``: ``y0 + (v - x0) * (y1 - y0) / (x1 - x0)``."""
    return y[0] + divide((v - x[0]) * (y[1] - y[0]), x[1] - x[0])
