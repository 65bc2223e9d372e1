"""Neuron groups with cross-layer coupling (METHOD.md §1) against a NumPy loop over neurons."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dspjax.pruning.groups import group_norms, group_sizes, group_sq_norms, hidden_sizes, param_masks, safe_sqrt

# A few widths, so that JAX's compiled programs are reused across examples (compiling dominates).
WIDTH, N_IN, N_OUT = st.sampled_from([1, 2, 5, 8]), st.sampled_from([1, 3]), st.sampled_from([1, 2])
SIZES = [(3, 5, 2), (4, 8, 6, 3), (2, 3, 4, 5, 1)]


def reference_groups(params):
    """Every hidden neuron's group g_{l,j} = (W_l[:, j], b_l[j], W_{l+1}[j, :]) as flat vectors."""
    groups = []
    for l in range(len(params) - 1):
        w, b, w_next = (np.asarray(params[l]["kernel"], np.float64), np.asarray(params[l]["bias"], np.float64),
                        np.asarray(params[l + 1]["kernel"], np.float64))
        groups.append([np.concatenate([w[:, j], [b[j]], w_next[j, :]]) for j in range(w.shape[1])])
    return groups


@pytest.mark.parametrize("sizes", SIZES)
def test_hidden_and_group_sizes(sizes, make_mlp):
    params = make_mlp(np.random.default_rng(0), sizes)
    assert hidden_sizes(params) == tuple(sizes[1:-1])
    groups = reference_groups(params)
    expected = tuple(sizes[l] + 1 + sizes[l + 2] for l in range(len(sizes) - 2))
    assert group_sizes(params) == expected
    assert tuple(len(g[0]) for g in groups) == expected


@pytest.mark.parametrize("sizes", SIZES)
def test_group_norms_match_numpy(sizes, make_mlp):
    params = make_mlp(np.random.default_rng(1), sizes)
    sq, norms = group_sq_norms(params), group_norms(params)
    assert len(sq) == len(norms) == len(sizes) - 2
    for l, groups in enumerate(reference_groups(params)):
        chex.assert_shape([sq[l], norms[l]], (sizes[l + 1],))
        np.testing.assert_allclose(sq[l], [np.sum(g ** 2) for g in groups], rtol=1e-5)
        np.testing.assert_allclose(norms[l], [np.linalg.norm(g) for g in groups], rtol=1e-5)


def test_group_norm_of_a_zeroed_neuron_is_zero_and_others_unchanged(make_mlp):
    params = make_mlp(np.random.default_rng(2), (4, 6, 5, 2))
    before = group_norms(params)
    # zero neuron 2 of hidden layer 0: its column and bias in layer 0, its row in layer 1
    zeroed = (dict(kernel=params[0]["kernel"].at[:, 2].set(0.0), bias=params[0]["bias"].at[2].set(0.0)),
              dict(kernel=params[1]["kernel"].at[2, :].set(0.0), bias=params[1]["bias"]),
              params[2])
    after = group_norms(zeroed)
    assert after[0][2] == 0.0
    np.testing.assert_allclose(np.delete(after[0], 2), np.delete(before[0], 2), rtol=1e-6)
    # the layer-1 groups lost W_1[2, :] (coupling across layers): norms drop exactly by that row
    expected = np.sqrt(np.asarray(before[1], np.float64) ** 2 - np.asarray(params[1]["kernel"][2, :], np.float64) ** 2)
    np.testing.assert_allclose(after[1], expected, rtol=1e-5)


def test_safe_sqrt_value_and_gradient_at_zero():
    x = jnp.array([0.0, 4.0, 2.25])
    np.testing.assert_allclose(safe_sqrt(x), [0.0, 2.0, 1.5])
    grad = jax.grad(lambda v: jnp.sum(safe_sqrt(v)))(x)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, [0.0, 0.25, 1.0 / 3.0], rtol=1e-6)


def test_group_norm_gradient_is_finite_on_a_zero_group(make_mlp):
    params = make_mlp(np.random.default_rng(3), (3, 4, 2))
    params = (dict(kernel=params[0]["kernel"].at[:, 1].set(0.0), bias=params[0]["bias"].at[1].set(0.0)),
              dict(kernel=params[1]["kernel"].at[1, :].set(0.0), bias=params[1]["bias"]))
    grads = jax.grad(lambda p: jnp.sum(group_norms(p)[0]))(params)
    for leaf in jax.tree.leaves(grads):
        assert np.all(np.isfinite(leaf))
    np.testing.assert_array_equal(grads[0]["kernel"][:, 1], 0.0)
    assert grads[0]["bias"][1] == 0.0


def reference_param_masks(params, neuron_masks, weight_masks=None):
    n = len(params)
    out = []
    for l, layer in enumerate(params):
        n_in, n_out = layer["kernel"].shape
        kernel = np.zeros((n_in, n_out))
        bias = np.zeros(n_out)
        for j in range(n_out):
            out_alive = l == n - 1 or neuron_masks[l][j]
            bias[j] = float(out_alive)
            for i in range(n_in):
                in_alive = l == 0 or neuron_masks[l - 1][i]
                w_alive = weight_masks is None or weight_masks[l][i, j]
                kernel[i, j] = float(in_alive and out_alive and w_alive)
        out.append({"kernel": kernel, "bias": bias})
    return tuple(out)


@settings(max_examples=20, deadline=None)
@given(hidden=st.lists(WIDTH, min_size=1, max_size=3), n_in=N_IN, n_out=N_OUT, seed=st.integers(0, 2 ** 16),
       with_weights=st.booleans())
def test_param_masks_match_numpy(hidden, n_in, n_out, seed, with_weights, make_mlp):
    rng = np.random.default_rng(seed)
    sizes = (n_in, *hidden, n_out)
    params = make_mlp(rng, sizes)
    neuron_masks = tuple(rng.random(n) < 0.5 for n in hidden)
    weight_masks = (tuple(rng.random(layer["kernel"].shape) < 0.7 for layer in params)
                    if with_weights else None)
    masks = param_masks(params, tuple(jnp.asarray(m) for m in neuron_masks),
                        None if weight_masks is None else tuple(jnp.asarray(m) for m in weight_masks))
    chex.assert_trees_all_equal_shapes(masks, params)
    chex.assert_trees_all_close(masks, reference_param_masks(params, neuron_masks, weight_masks))
