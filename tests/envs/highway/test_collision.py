"""The collision pass tests only the pairs that pass the distance pre-check, gathered a chunk at a
time (``_gathered_pair_tests``): its results must be those of the separating-axis test run on every
pair and masked, for any chunk size, with crowded scenes that need several chunks."""

import jax.numpy as jnp
import numpy as np
import pytest

from dspjax.envs.highway.collision import _gathered_pair_tests, are_polygons_intersecting, polygons


@pytest.mark.parametrize(("rows", "chunk_size"), [(1, 1), (1, 2), (1, 5), (24, 7), (24, 64)])
def test_gathered_pair_tests_equal_every_pair_tested_and_masked(rows, chunk_size):
    rng = np.random.default_rng(chunk_size * 100 + rows)
    n = 24
    position = jnp.asarray(np.stack([rng.uniform(0, 20, n), rng.uniform(0, 5, n)], -1), jnp.float32)
    heading = jnp.asarray(rng.uniform(-0.2, 0.2, n), jnp.float32)
    displacement = jnp.asarray(rng.uniform(-2, 2, (n, 2)), jnp.float32)
    poly = polygons(position, heading)
    # As in handle_collisions: pairs i < j only. Continuous lateral positions keep the centres off
    # the separating axes (where the translation's sign is a coin toss of rounding).
    tested = jnp.asarray((rng.random((rows, n)) < 0.6) & (np.arange(rows)[:, None] < np.arange(n)[None, :]))
    got = _gathered_pair_tests(poly, displacement, tested, chunk_size)
    hit, will, shift = are_polygons_intersecting(poly[:rows, None], poly[None, :], displacement[:rows, None],
                                                 displacement[None, :])
    assert int(jnp.sum(tested)) > 2 * chunk_size  # several chunks
    assert bool(jnp.any(hit & tested)) and bool(jnp.any(will & tested))  # the scenes do collide
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(hit & tested))
    np.testing.assert_array_equal(np.asarray(got[1]), np.asarray(will & tested))
    # The same arithmetic per pair, but XLA may fuse (and contract to FMAs) the gathered and the
    # broadcast forms differently: translations come from projections of coordinates (corners,
    # moved by their displacement) of at most SCALE metres on unit normals, each good to a few
    # float32 ulps of SCALE.
    scale = float(np.abs(np.asarray(poly)).max() + np.abs(np.asarray(displacement)).max())
    np.testing.assert_allclose(np.asarray(got[2])[np.asarray(tested)], np.asarray(shift)[np.asarray(tested)],
                               rtol=0, atol=8 * np.finfo(np.float32).eps * scale)
    np.testing.assert_array_equal(np.asarray(got[2])[~np.asarray(tested)], 0.0)
