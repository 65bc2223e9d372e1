"""Neuron importance measures, EMA and normalised scores (METHOD.md §2) against NumPy.

The references below are a float64 NumPy forward pass and backprop of a tanh MLP (checked itself
by finite differences), and plain loops over neurons.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dspjax.pruning.chain import chain_apply, output_jacobians
from dspjax.pruning.importance import (
    ACTIVATION,
    EPS,
    IMPORTANCE_NAMES,
    MAGNITUDE,
    NONE,
    OUTPUT,
    RANDOM,
    TAYLOR,
    activation_importance,
    batch_importance,
    ema_importance,
    init_importance,
    magnitude_importance,
    normalised_scores,
    output_importance,
    taylor_importance,
)

SIZES = [(3, 5, 2), (4, 7, 6, 3), (2, 3, 4, 5, 2)]


def zero_probes(params, batch_shape):
    return tuple(jnp.zeros(batch_shape + (layer["bias"].shape[-1],)) for layer in params[:-1])


def np_forward_probed(params, x, probes=None):
    """Float64 tanh MLP with perturbations ``probes[l]`` added to the hidden activations."""
    h, hiddens = np.asarray(x, np.float64), []
    for l, layer in enumerate(params[:-1]):
        h = np.tanh(h @ layer["kernel"] + layer["bias"])
        if probes is not None:
            h = h + probes[l]
        hiddens.append(h)
    return h @ params[-1]["kernel"] + params[-1]["bias"], hiddens


def np_output_jacobians(params, x):
    """Per-sample ∂f/∂h_l by backprop, each (batch, n_out, n_l):
    ∂f/∂h_L = W_{L+1}ᵀ and ∂f/∂h_l = (∂f/∂h_{l+1} ⊙ (1 − h_{l+1}²)) W_{l+1}ᵀ."""
    _, hiddens = np_forward_probed(params, x)
    batch, n_out = x.shape[0], params[-1]["kernel"].shape[1]
    jac = np.broadcast_to(params[-1]["kernel"].T, (batch, n_out, hiddens[-1].shape[1])).copy()
    jacs = [jac]
    for l in range(len(hiddens) - 2, -1, -1):
        jac = (jac * (1.0 - hiddens[l + 1] ** 2)[:, None, :]) @ params[l + 1]["kernel"].T
        jacs.insert(0, jac)
    return jacs


@pytest.mark.parametrize("sizes", SIZES)
def test_numpy_reference_jacobian_matches_finite_differences(sizes, make_mlp, np_params):
    """The reference itself is right: central differences in float64 on the hidden probes."""
    rng = np.random.default_rng(0)
    params = np_params(make_mlp(rng, sizes))
    x = rng.normal(size=(3, sizes[0]))
    jacs = np_output_jacobians(params, x)
    eps = 1e-6
    for l, n in enumerate(sizes[1:-1]):
        for j in range(n):
            plus = [np.zeros((3, m)) for m in sizes[1:-1]]
            minus = [np.zeros((3, m)) for m in sizes[1:-1]]
            plus[l][:, j], minus[l][:, j] = eps, -eps
            fd = (np_forward_probed(params, x, plus)[0] - np_forward_probed(params, x, minus)[0]) / (2 * eps)
            np.testing.assert_allclose(jacs[l][:, :, j], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("sizes", SIZES)
def test_output_importance_of_mlp_matches_numpy(sizes, make_mlp, np_params):
    rng = np.random.default_rng(1)
    params = make_mlp(rng, sizes)
    x = rng.normal(size=(6, sizes[0])).astype(np.float32)
    _, hiddens = chain_apply(params, x, "tanh")
    got = output_importance(hiddens, output_jacobians(params, x, "tanh"))
    p64 = np_params(params)
    _, ref_hiddens = np_forward_probed(p64, x)
    ref_jacs = np_output_jacobians(p64, x)
    for l, n in enumerate(sizes[1:-1]):
        chex.assert_shape(got[l], (n,))
        ref = [np.mean([np.linalg.norm(ref_hiddens[l][b, j] * ref_jacs[l][b, :, j]) for b in range(6)])
               for j in range(n)]
        np.testing.assert_allclose(got[l], ref, rtol=1e-4, atol=1e-6)


def test_output_importance_from_given_jacobians():
    rng = np.random.default_rng(2)
    h = rng.normal(size=(5, 4)).astype(np.float32)
    jac = rng.normal(size=(5, 3, 4)).astype(np.float32)
    (got,) = output_importance((h,), (jac,))
    ref = [np.mean([np.linalg.norm(h[b, j] * jac[b, :, j]) for b in range(5)]) for j in range(4)]
    np.testing.assert_allclose(got, ref, rtol=1e-5)


@pytest.mark.parametrize("sizes", SIZES)
def test_taylor_importance_of_mlp_matches_numpy(sizes, make_mlp, np_params):
    """h and ∂L/∂h from one backward pass through the zero probes; L = mean_b ½||f(x_b) − y_b||²."""
    rng = np.random.default_rng(3)
    params = make_mlp(rng, sizes)
    batch = 8
    x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    y = rng.normal(size=(batch, sizes[-1])).astype(np.float32)

    def loss(probes):
        out, hiddens = chain_apply(params, x, "tanh", probes)
        return 0.5 * jnp.mean(jnp.sum((out - y) ** 2, -1)), hiddens

    hidden_grads, hiddens = jax.grad(loss, has_aux=True)(zero_probes(params, (batch,)))
    got = taylor_importance(hiddens, hidden_grads)

    p64 = np_params(params)
    out, ref_hiddens = np_forward_probed(p64, x)
    d_out = (out - y) / batch
    for l, jac in enumerate(np_output_jacobians(p64, x)):
        d_h = np.einsum("bo,boj->bj", d_out, jac)
        ref = [np.mean([abs(ref_hiddens[l][b, j] * d_h[b, j]) for b in range(batch)])
               for j in range(sizes[l + 1])]
        chex.assert_shape(got[l], (sizes[l + 1],))
        np.testing.assert_allclose(got[l], ref, rtol=1e-4, atol=1e-7)


def test_taylor_importance_from_given_arrays():
    rng = np.random.default_rng(4)
    hs = [rng.normal(size=(7, n)).astype(np.float32) for n in (3, 5)]
    gs = [rng.normal(size=(7, n)).astype(np.float32) for n in (3, 5)]
    got = taylor_importance(hs, gs)
    for h, g, out in zip(hs, gs, got):
        ref = [np.mean(np.abs(h[:, j] * g[:, j])) for j in range(h.shape[1])]
        np.testing.assert_allclose(out, ref, rtol=1e-6)


@pytest.mark.parametrize("sizes", SIZES)
def test_activation_importance_matches_numpy(sizes, make_mlp):
    rng = np.random.default_rng(5)
    params = make_mlp(rng, sizes)
    hiddens = [rng.normal(size=(4, n)).astype(np.float32) for n in sizes[1:-1]]
    got = activation_importance(params, hiddens)
    for l, h in enumerate(hiddens):
        w_next = np.asarray(params[l + 1]["kernel"], np.float64)
        ref = [np.mean(np.abs(h[:, j])) * np.sqrt(np.sum(w_next[j, :] ** 2)) for j in range(h.shape[1])]
        np.testing.assert_allclose(got[l], ref, rtol=1e-5)


@pytest.mark.parametrize("sizes", SIZES)
def test_magnitude_importance_matches_numpy(sizes, make_mlp, np_params):
    params = make_mlp(np.random.default_rng(6), sizes)
    p = np_params(params)
    got = magnitude_importance(params)
    for l in range(len(sizes) - 2):
        ref = []
        for j in range(sizes[l + 1]):
            g = np.concatenate([p[l]["kernel"][:, j], [p[l]["bias"][j]], p[l + 1]["kernel"][j, :]])
            ref.append(np.linalg.norm(g) / np.sqrt(g.size))
        np.testing.assert_allclose(got[l], ref, rtol=1e-5)


@pytest.mark.parametrize("kind", range(len(IMPORTANCE_NAMES)))
def test_batch_importance_dispatches_on_the_integer_code(kind, make_mlp):
    rng = np.random.default_rng(7)
    sizes = (3, 5, 4, 2)
    params = make_mlp(rng, sizes)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    _, hiddens = chain_apply(params, x, "tanh")
    grads = tuple(jnp.asarray(rng.normal(size=h.shape).astype(np.float32)) for h in hiddens)
    jacs = output_jacobians(params, x, "tanh")
    previous = tuple(jnp.asarray(rng.random(n).astype(np.float32)) for n in sizes[1:-1])
    expected = {TAYLOR: taylor_importance(hiddens, grads),
                OUTPUT: output_importance(hiddens, jacs),
                ACTIVATION: activation_importance(params, hiddens),
                MAGNITUDE: magnitude_importance(params),
                NONE: magnitude_importance(params),
                RANDOM: previous}[kind]
    fn = jax.jit(lambda k: batch_importance(k, params, hiddens, grads, lambda: jacs, previous))
    chex.assert_trees_all_close(fn(jnp.int32(kind)), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", [TAYLOR, OUTPUT, ACTIVATION, MAGNITUDE])
def test_batch_importance_is_under_stop_gradient(kind, make_mlp):
    """Importance is a constant of the step: no gradient flows into params, hiddens or grads."""
    rng = np.random.default_rng(8)
    params = make_mlp(rng, (3, 4, 2))
    x = rng.normal(size=(5, 3)).astype(np.float32)

    def total(p, probes):
        _, hiddens = chain_apply(p, x, "tanh", probes)
        grads = tuple(2.0 * h for h in hiddens)
        imp = batch_importance(jnp.int32(kind), p, hiddens, grads,
                               lambda: output_jacobians(p, x, "tanh"), (jnp.ones(4),))
        return jnp.sum(imp[0])

    assert float(total(params, zero_probes(params, (5,)))) > 0.0
    grads = jax.grad(total, argnums=(0, 1))(params, zero_probes(params, (5,)))
    for leaf in jax.tree.leaves(grads):
        np.testing.assert_array_equal(leaf, 0.0)


def test_init_importance_ones_or_fixed_uniform_random():
    key = jax.random.PRNGKey(0)
    sizes = (5, 3, 7)
    for kind in (TAYLOR, OUTPUT, ACTIVATION, MAGNITUDE, NONE):
        imp = init_importance(key, jnp.int32(kind), sizes)
        chex.assert_shape(list(imp), [(n,) for n in sizes])
        for i in imp:
            np.testing.assert_array_equal(i, 1.0)
    rand = init_importance(key, jnp.int32(RANDOM), sizes)
    chex.assert_shape(list(rand), [(n,) for n in sizes])
    values = np.concatenate([np.asarray(r) for r in rand])
    assert np.all((values >= 0.0) & (values < 1.0))
    assert len(np.unique(values)) == values.size  # genuinely random, not constant
    chex.assert_trees_all_close(rand, init_importance(key, jnp.int32(RANDOM), sizes))  # keyed


@pytest.mark.parametrize("kind", [TAYLOR, MAGNITUDE, NONE, RANDOM])
def test_ema_importance(kind):
    rng = np.random.default_rng(9)
    prev = [rng.random(4).astype(np.float32), rng.random(6).astype(np.float32)]
    batch = [rng.random(4).astype(np.float32), rng.random(6).astype(np.float32)]
    beta = 0.3
    got = ema_importance(prev, batch, jnp.float32(beta), jnp.int32(kind))
    for p, b, g in zip(prev, batch, got):
        ref = p if kind == RANDOM else (1 - beta) * p + beta * b
        np.testing.assert_allclose(g, ref, rtol=1e-6)


def reference_scores(importance, masks):
    out = []
    for imp, m in zip(importance, masks):
        top = max(float(imp[j]) for j in range(len(imp)) if m[j]) if m.any() else 0.0
        out.append(np.array([imp[j] / (top + EPS) if m[j] else 0.0 for j in range(len(imp))]))
    return out


@settings(max_examples=30, deadline=None)
@given(widths=st.lists(st.sampled_from([1, 2, 5, 8]), min_size=1, max_size=3), seed=st.integers(0, 2 ** 16),
       scale=st.sampled_from([1e-3, 1.0, 50.0]))
def test_normalised_scores_over_alive_neurons(widths, seed, scale, make_masks):
    rng = np.random.default_rng(seed)
    importance = [(rng.random(n) * scale).astype(np.float32) for n in widths]
    masks = make_masks(rng, widths, 0.5)
    got = normalised_scores(tuple(map(jnp.asarray, importance)), tuple(map(jnp.asarray, masks)))
    for s, ref, m, imp in zip(got, reference_scores(importance, masks), masks, importance):
        np.testing.assert_allclose(s, ref, rtol=1e-5, atol=1e-7)
        assert np.all((np.asarray(s) >= 0) & (np.asarray(s) <= 1))
        np.testing.assert_array_equal(np.asarray(s)[~m], 0.0)
        # a dead neuron with a huge importance must not set the scale
        np.testing.assert_allclose(np.max(np.asarray(s)[m]), np.max(imp[m]) / (np.max(imp[m]) + EPS),
                                   rtol=1e-5)


def test_normalised_scores_ignore_a_large_pruned_importance():
    imp = (jnp.array([10.0, 1.0, 2.0, 4.0]),)
    mask = (jnp.array([False, True, True, True]),)
    (s,) = normalised_scores(imp, mask)
    np.testing.assert_allclose(s, [0.0, 0.25, 0.5, 1.0], rtol=1e-6)
