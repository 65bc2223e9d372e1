"""Neuron-importance group-sparse regularizer and its proximal form (METHOD.md §3) against NumPy."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dspjax.pruning.importance import IMPORTANCE_NAMES, NONE, TAYLOR
from dspjax.pruning.regularizer import (
    group_sparse_penalty,
    penalty_weights,
    proximal_group_shrink,
    regularization_strength,
)

# A few widths, so that JAX's compiled programs are reused across examples (compiling dominates).
WIDTH, N_IN, N_OUT = st.sampled_from([1, 2, 5, 8]), st.sampled_from([1, 3]), st.sampled_from([1, 2])


def neuron_groups(p, l, j):
    """Index the group g_{l,j} of a float64 NumPy params tuple: [(layer, name, index), ...]."""
    n_prev = p[l]["kernel"].shape[0]
    n_next = p[l + 1]["kernel"].shape[1]
    return ([(l, "kernel", (i, j)) for i in range(n_prev)] + [(l, "bias", (j,))]
            + [(l + 1, "kernel", (j, k)) for k in range(n_next)])


def all_groups(p):
    return [[neuron_groups(p, l, j) for j in range(p[l]["bias"].shape[0])] for l in range(len(p) - 1)]


def group_vector(p, members):
    return np.array([p[layer][name][idx] for layer, name, idx in members])


def reference_penalty(p, alphas, lam_t):
    total = 0.0
    for l, groups in enumerate(all_groups(p)):
        for j, members in enumerate(groups):
            g = group_vector(p, members)
            total += alphas[l][j] * np.sqrt(g.size) * np.linalg.norm(g)
    return lam_t * total


def reference_penalty_grad(p, alphas, lam_t):
    grad = tuple({k: np.zeros_like(v) for k, v in layer.items()} for layer in p)
    for l, groups in enumerate(all_groups(p)):
        for j, members in enumerate(groups):
            g = group_vector(p, members)
            norm = np.linalg.norm(g)
            if norm == 0.0:
                continue
            for layer, name, idx in members:
                grad[layer][name][idx] += lam_t * alphas[l][j] * np.sqrt(g.size) * p[layer][name][idx] / norm
    return grad


def reference_shrink(p, alphas, lam_t, eta):
    """Each parameter is multiplied by the factor of every group it belongs to (overlaps)."""
    out = tuple({k: v.copy() for k, v in layer.items()} for layer in p)
    for l, groups in enumerate(all_groups(p)):
        for j, members in enumerate(groups):
            g = group_vector(p, members)  # norms from the parameters before the step
            norm = np.linalg.norm(g)
            factor = max(0.0, 1.0 - eta * lam_t * alphas[l][j] * np.sqrt(g.size) / norm) if norm > 0 else 0.0
            for layer, name, idx in members:
                out[layer][name][idx] *= factor
    return out


def test_regularization_strength_linear_warmup():
    lam = 0.5
    for progress, expected in [(0.0, 0.0), (0.05, 0.25), (0.1, 0.5), (0.2, 0.5), (1.0, 0.5)]:
        np.testing.assert_allclose(regularization_strength(lam, progress, 0.1), expected, rtol=1e-6)
    # no warm-up: full strength from the start
    np.testing.assert_allclose(regularization_strength(lam, 0.0, 0.0), lam)
    np.testing.assert_allclose(regularization_strength(lam, 0.3, 0.0), lam)


def test_regularization_strength_is_switched_off_from_reg_end():
    lam = 0.5
    for progress, expected in [(0.05, 0.25), (0.34, 0.5), (0.35, 0.0), (0.9, 0.0)]:
        np.testing.assert_allclose(regularization_strength(lam, progress, 0.1, 0.35), expected, rtol=1e-6)
    np.testing.assert_allclose(regularization_strength(lam, 1.0, 0.1, 1.0), lam)  # 1: never off


@pytest.mark.parametrize("kind", range(len(IMPORTANCE_NAMES)))
def test_penalty_weights(kind):
    scores = (jnp.array([0.0, 0.5, 1.0, 0.2]), jnp.array([1.0, 0.3]))
    masks = (jnp.array([True, True, True, False]), jnp.array([True, True]))
    delta = 0.1
    got = penalty_weights(scores, masks, jnp.float32(delta), jnp.int32(kind))
    for s, m, a in zip(scores, masks, got):
        alive_value = np.ones(len(s)) if kind == NONE else 1.0 - np.asarray(s) + delta
        np.testing.assert_allclose(a, np.where(m, alive_value, 0.0), rtol=1e-6)
    # least / most important alive neuron: (1 + δ) / δ times harder
    if kind != NONE:
        np.testing.assert_allclose(got[0][0] / got[0][2], (1 + delta) / delta, rtol=1e-5)


def test_penalty_weights_are_constants():
    masks = (jnp.array([True, True, False]),)
    grad = jax.grad(lambda s: jnp.sum(penalty_weights((s,), masks, 0.1, jnp.int32(TAYLOR))[0]))(
        jnp.array([0.1, 0.7, 0.4]))
    np.testing.assert_array_equal(grad, 0.0)


@settings(max_examples=25, deadline=None)
@given(hidden=st.lists(WIDTH, min_size=1, max_size=3), n_in=N_IN, n_out=N_OUT, seed=st.integers(0, 2 ** 16),
       lam_t=st.floats(0.0, 2.0))
def test_group_sparse_penalty_matches_numpy(hidden, n_in, n_out, seed, lam_t, make_mlp, np_params):
    rng = np.random.default_rng(seed)
    params = make_mlp(rng, (n_in, *hidden, n_out))
    alphas = tuple(np.where(rng.random(n) < 0.3, 0.0, rng.random(n) + 0.1).astype(np.float32) for n in hidden)
    got = group_sparse_penalty(params, tuple(map(jnp.asarray, alphas)), jnp.float32(lam_t))
    ref = reference_penalty(np_params(params), alphas, lam_t)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)


def test_penalty_gradient_finite_and_correct_with_a_zero_group(make_mlp, np_params):
    """A pruned group has norm exactly 0: the gradient must be finite (safe_sqrt), and 0 there."""
    rng = np.random.default_rng(1)
    params = make_mlp(rng, (3, 5, 4, 2))
    # zero the whole group of neuron (0, 1) and of neuron (1, 3)
    k0 = params[0]["kernel"].at[:, 1].set(0.0)
    b0 = params[0]["bias"].at[1].set(0.0)
    k1 = params[1]["kernel"].at[1, :].set(0.0).at[:, 3].set(0.0)
    b1 = params[1]["bias"].at[3].set(0.0)
    k2 = params[2]["kernel"].at[3, :].set(0.0)
    params = ({"kernel": k0, "bias": b0}, {"kernel": k1, "bias": b1}, {"kernel": k2, "bias": params[2]["bias"]})
    assert np.asarray(group_sparse_penalty(params, (jnp.ones(5), jnp.ones(4)), 1.0)) > 0
    alphas = (np.array([1.1, 0.7, 0.3, 1.0, 0.5], np.float32), np.array([0.2, 0.9, 1.1, 0.6], np.float32))
    lam_t = 0.3
    grad = jax.grad(group_sparse_penalty)(params, tuple(map(jnp.asarray, alphas)), jnp.float32(lam_t))
    for leaf in jax.tree.leaves(grad):
        assert np.all(np.isfinite(leaf))
    np.testing.assert_array_equal(grad[0]["kernel"][:, 1], 0.0)
    chex.assert_trees_all_close(grad, reference_penalty_grad(np_params(params), alphas, lam_t),
                                rtol=1e-4, atol=1e-6)


def test_penalty_gradient_matches_analytic_on_random_params(make_mlp, np_params):
    rng = np.random.default_rng(2)
    params = make_mlp(rng, (4, 6, 3))
    alphas = (rng.random(6).astype(np.float32),)
    grad = jax.grad(group_sparse_penalty)(params, (jnp.asarray(alphas[0]),), jnp.float32(0.7))
    chex.assert_trees_all_close(grad, reference_penalty_grad(np_params(params), alphas, 0.7),
                                rtol=1e-4, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(hidden=st.lists(WIDTH, min_size=1, max_size=3), n_in=N_IN, n_out=N_OUT, seed=st.integers(0, 2 ** 16),
       step=st.sampled_from([0.0, 0.01, 0.1, 0.5, 3.0]))
def test_proximal_group_shrink_matches_numpy(hidden, n_in, n_out, seed, step, make_mlp, np_params):
    rng = np.random.default_rng(seed)
    params = make_mlp(rng, (n_in, *hidden, n_out))
    alphas = tuple(np.where(rng.random(n) < 0.3, 0.0, rng.random(n) + 0.1).astype(np.float32) for n in hidden)
    lam_t = 0.2
    got = proximal_group_shrink(params, tuple(map(jnp.asarray, alphas)), jnp.float32(lam_t), jnp.float32(step))
    chex.assert_trees_all_equal_shapes(got, params)
    chex.assert_trees_all_close(got, reference_shrink(np_params(params), alphas, lam_t, step),
                                rtol=1e-5, atol=1e-6)


def test_proximal_shrink_kills_a_weak_group_exactly_and_keeps_zero_groups_zero(make_mlp):
    rng = np.random.default_rng(3)
    params = make_mlp(rng, (3, 4, 2))
    # neuron 0 tiny, neuron 3 exactly zero
    k0 = params[0]["kernel"].at[:, 0].multiply(1e-3).at[:, 3].set(0.0)
    b0 = params[0]["bias"].at[0].multiply(1e-3).at[3].set(0.0)
    k1 = params[1]["kernel"].at[0, :].multiply(1e-3).at[3, :].set(0.0)
    params = ({"kernel": k0, "bias": b0}, {"kernel": k1, "bias": params[1]["bias"]})
    out = proximal_group_shrink(params, (jnp.ones(4),), jnp.float32(0.01), jnp.float32(1.0))
    for leaf in jax.tree.leaves(out):
        assert np.all(np.isfinite(leaf))
    for j in (0, 3):
        np.testing.assert_array_equal(out[0]["kernel"][:, j], 0.0)
        assert out[0]["bias"][j] == 0.0
        np.testing.assert_array_equal(out[1]["kernel"][j, :], 0.0)
    # strong neurons shrink but survive; output biases are in no group and are untouched
    assert np.all(np.abs(np.asarray(out[0]["kernel"][:, 1])) < np.abs(np.asarray(params[0]["kernel"][:, 1])))
    assert np.all(np.asarray(out[0]["kernel"][:, 1]) != 0.0)
    np.testing.assert_array_equal(out[1]["bias"], params[1]["bias"])


def test_proximal_shrink_with_zero_strength_is_identity(make_mlp):
    params = make_mlp(np.random.default_rng(4), (3, 5, 4, 2))
    out = proximal_group_shrink(params, (jnp.ones(5), jnp.ones(4)), jnp.float32(0.0), jnp.float32(0.1))
    chex.assert_trees_all_close(out, params, rtol=0, atol=0)
