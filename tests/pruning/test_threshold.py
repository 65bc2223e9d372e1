"""Cubic ramp, window progress and the dynamic threshold rules (METHOD.md §4) against NumPy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dspjax.pruning.threshold import (
    ADAPTIVE,
    NORM,
    RELATIVE,
    RELATIVE_NORM,
    SCHEDULE,
    THRESHOLD_NAMES,
    adaptive_threshold,
    cubic_ramp,
    dynamic_threshold,
    relative_to_max,
    schedule_threshold,
    top_k_threshold,
    window_progress,
)


def ref_ramp(p):
    return 1.0 - (1.0 - p) ** 3


def ref_adaptive(s, m, c_t):
    alive = [s[j] for j in range(len(s)) if m[j]]
    return c_t * (sum(alive) / len(alive) if alive else 0.0)


def ref_schedule(s, m, k_t):
    keep = math.ceil(k_t * len(s) - 1e-6)
    alive = sorted((s[j] for j in range(len(s)) if m[j]), reverse=True)
    keep = min(max(keep, 1), len(s))
    return alive[keep - 1] if keep <= len(alive) else -np.inf


def ref_relative_to_max(v, m):
    top = max((v[j] for j in range(len(v)) if m[j]), default=0.0)
    return np.array([v[j] / (top + 1e-12) if m[j] else 0.0 for j in range(len(v))], np.float32)


def test_cubic_ramp_values():
    np.testing.assert_allclose(cubic_ramp(jnp.array([0.0, 0.5, 1.0, 0.25])),
                               [0.0, 0.875, 1.0, 1 - 0.75 ** 3], rtol=1e-6)
    ps = jnp.linspace(0.0, 1.0, 101)
    r = np.asarray(cubic_ramp(ps))
    assert np.all(np.diff(r) > 0)  # strictly rising
    assert np.all(np.diff(r, 2) < 1e-6)  # fast at first, then slower (concave)


def test_window_progress():
    start, end = 0.2, 0.6
    for t, expected in [(0.0, 0.0), (0.2, 0.0), (0.3, 0.25), (0.4, 0.5), (0.6, 1.0), (0.9, 1.0)]:
        np.testing.assert_allclose(window_progress(t, start, end), expected, rtol=1e-6, atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(t=st.floats(0, 1), start=st.floats(0, 0.9), width=st.floats(0.01, 1.0))
def test_window_progress_matches_numpy(t, start, width):
    end = min(start + width, 1.0)
    ref = min(max((t - start) / (end - start), 0.0), 1.0)
    np.testing.assert_allclose(window_progress(jnp.float32(t), jnp.float32(start), jnp.float32(end)),
                               ref, rtol=1e-4, atol=1e-5)


def test_top_k_threshold():
    v = jnp.array([0.3, 0.9, 0.1, 0.5, 0.7])
    m = jnp.array([True, False, True, True, True])
    for k, expected in [(1, 0.7), (2, 0.5), (3, 0.3), (4, 0.1), (0, 0.7)]:
        np.testing.assert_allclose(top_k_threshold(v, m, k), expected)
    assert top_k_threshold(v, m, 5) == -np.inf  # fewer than k alive: keep all


def test_adaptive_threshold_is_c_times_alive_mean():
    s = jnp.array([1.0, 0.2, 0.6, 0.9])
    m = jnp.array([True, True, True, False])
    np.testing.assert_allclose(adaptive_threshold(s, m, 0.5), 0.5 * 1.8 / 3, rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(n=st.sampled_from([1, 2, 3, 5, 8, 13]), seed=st.integers(0, 2 ** 16), p=st.floats(0, 1),
       c_final=st.floats(0, 1), k_final=st.floats(0.01, 1), tau_final=st.floats(0, 1),
       c_relative=st.floats(0, 1))
def test_dynamic_threshold_rules_match_numpy(n, seed, p, c_final, k_final, tau_final, c_relative):
    rng = np.random.default_rng(seed)
    s = rng.random(n).astype(np.float32)
    mag = rng.random(n).astype(np.float32)
    m = rng.random(n) < 0.7
    m[rng.integers(n)] = True
    args = ((jnp.asarray(s),), (jnp.asarray(mag),), (jnp.asarray(m),), jnp.float32(p),
            jnp.float32(c_final), jnp.float32(k_final), jnp.float32(tau_final), jnp.float32(c_relative))
    p32 = float(np.float32(p))
    ramp = ref_ramp(p32)
    fn = jax.jit(dynamic_threshold)
    ((values, tau),) = fn(jnp.int32(ADAPTIVE), *args)
    np.testing.assert_array_equal(values, s)
    np.testing.assert_allclose(tau, ref_adaptive(s, m, float(np.float32(c_final)) * ramp), rtol=1e-4, atol=1e-6)
    ((values, tau),) = fn(jnp.int32(NORM), *args)
    np.testing.assert_array_equal(values, mag)
    np.testing.assert_allclose(tau, float(np.float32(tau_final)) * ramp, rtol=1e-4, atol=1e-6)
    ((values, tau),) = fn(jnp.int32(SCHEDULE), *args)
    np.testing.assert_array_equal(values, s)
    k_t = 1.0 - (1.0 - float(np.float32(k_final))) * ramp
    expected = ref_schedule(s, m, k_t)
    if abs(k_t * n - round(k_t * n)) > 1e-3:  # away from float32 rounding at an exact integer
        np.testing.assert_array_equal(tau, expected)
    c_rel_t = float(np.float32(c_relative)) * ramp
    ((values, tau),) = fn(jnp.int32(RELATIVE), *args)
    np.testing.assert_array_equal(values, s)
    np.testing.assert_allclose(tau, c_rel_t, rtol=1e-4, atol=1e-6)
    ((values, tau),) = fn(jnp.int32(RELATIVE_NORM), *args)
    np.testing.assert_allclose(values, ref_relative_to_max(mag, m), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(tau, c_rel_t, rtol=1e-4, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(n=st.sampled_from([1, 2, 3, 5, 8, 13]), seed=st.integers(0, 2 ** 16), k_t=st.floats(0.01, 1.0))
def test_schedule_threshold_leaves_the_scheduled_fraction_alive(n, seed, k_t):
    """With distinct scores, keeping s >= τ leaves ceil(k_t · n) alive (or every alive one)."""
    rng = np.random.default_rng(seed)
    s = rng.permutation(n).astype(np.float32) / n  # distinct
    m = rng.random(n) < 0.8
    tau = schedule_threshold(jnp.asarray(s), jnp.asarray(m), jnp.float32(k_t))
    kept = np.sum(m & (s >= np.asarray(tau)))
    keep = math.ceil(float(np.float32(k_t)) * n - 1e-6)
    if abs(float(np.float32(k_t)) * n - round(float(np.float32(k_t)) * n)) > 1e-4:
        assert kept == min(max(keep, 1), m.sum())


def test_threshold_rules_at_the_window_ends():
    s = (jnp.array([0.1, 0.4, 1.0, 0.7]),)
    mag = (jnp.array([0.02, 0.08, 0.2, 0.01]),)
    m = (jnp.ones(4, bool),)
    # p = 0: every rule keeps everything
    for rule in range(len(THRESHOLD_NAMES)):
        ((values, tau),) = dynamic_threshold(jnp.int32(rule), s, mag, m, 0.0, 0.9, 0.25, 0.05, 0.1)
        assert np.all(np.asarray(values) >= np.asarray(tau))
    # p = 1: the final thresholds
    ((_, tau),) = dynamic_threshold(jnp.int32(ADAPTIVE), s, mag, m, 1.0, 0.9, 0.25, 0.05)
    np.testing.assert_allclose(tau, 0.9 * 2.2 / 4, rtol=1e-6)
    ((_, tau),) = dynamic_threshold(jnp.int32(SCHEDULE), s, mag, m, 1.0, 0.9, 0.25, 0.05)
    np.testing.assert_allclose(tau, 1.0)  # keep ceil(0.25 · 4) = 1
    ((_, tau),) = dynamic_threshold(jnp.int32(NORM), s, mag, m, 1.0, 0.9, 0.25, 0.05)
    np.testing.assert_allclose(tau, 0.05, rtol=1e-6)
    ((values, tau),) = dynamic_threshold(jnp.int32(RELATIVE), s, mag, m, 1.0, 0.9, 0.25, 0.05, 0.2)
    np.testing.assert_allclose(tau, 0.2, rtol=1e-6)  # prunes the 0.1 only
    ((values, tau),) = dynamic_threshold(jnp.int32(RELATIVE_NORM), s, mag, m, 1.0, 0.9, 0.25, 0.05, 0.2)
    np.testing.assert_allclose(values, [0.1, 0.4, 1.0, 0.05], rtol=1e-6)  # norms / the largest
    np.testing.assert_allclose(tau, 0.2, rtol=1e-6)


def test_relative_to_max_ignores_pruned_neurons():
    v = jnp.array([0.3, 0.9, 0.1, 0.6])
    m = jnp.array([True, False, True, True])
    np.testing.assert_allclose(relative_to_max(v, m), [0.5, 0.0, 1 / 6, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(relative_to_max(v, jnp.zeros(4, bool)), np.zeros(4))


def _prune_until_fixed(rule, s, c_final, steps=50):
    """Re-applies a rule's final threshold (p = 1) with fixed importances, as a pruning step every
    ``prune_every`` updates after ``prune_end`` would; returns the alive count at each step."""
    m = np.ones(len(s), bool)
    counts = []
    for _ in range(steps):
        ((values, tau),) = dynamic_threshold(jnp.int32(rule), (jnp.asarray(s),), (jnp.asarray(s),),
                                             (jnp.asarray(m),), 1.0, c_final, 0.5, 0.0, c_final)
        m = m & (np.asarray(values) >= np.asarray(tau))
        counts.append(int(m.sum()))
    return counts


def test_relative_rule_reaches_a_fixed_point_where_adaptive_ratchets():
    """§4: cutting the tail raises the alive mean (adaptive cuts again), but not the alive max."""
    raw = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.01], np.float32)
    s = raw / raw.max()
    adaptive = _prune_until_fixed(ADAPTIVE, s, 0.9)
    assert adaptive == [6, 4, 3] + [2] * 47  # ratchets: cut after cut, down to the top two
    relative = _prune_until_fixed(RELATIVE, s, 0.15)
    assert relative[0] == relative[-1] == 9  # one cut, then a fixed point
    relative_norm = _prune_until_fixed(RELATIVE_NORM, s, 0.15)
    assert relative_norm[0] == relative_norm[-1] == 9


def test_dynamic_threshold_vmaps_over_the_rule_code():
    rng = np.random.default_rng(0)
    s = (jnp.asarray(rng.random(6).astype(np.float32)), jnp.asarray(rng.random(3).astype(np.float32)))
    mag = (jnp.asarray(rng.random(6).astype(np.float32)), jnp.asarray(rng.random(3).astype(np.float32)))
    m = (jnp.asarray(rng.random(6) < 0.7), jnp.ones(3, bool))
    rules = jnp.arange(len(THRESHOLD_NAMES), dtype=jnp.int32)
    batched = jax.jit(jax.vmap(lambda r: dynamic_threshold(r, s, mag, m, 0.5, 0.8, 0.3, 0.1, 0.2)))(rules)
    for i in range(len(THRESHOLD_NAMES)):
        single = dynamic_threshold(jnp.int32(i), s, mag, m, 0.5, 0.8, 0.3, 0.1, 0.2)
        for (bv, bt), (sv, st_) in zip(batched, single):
            np.testing.assert_array_equal(bv[i], sv)
            np.testing.assert_allclose(bt[i], st_, rtol=1e-6)
