"""Compaction and compression figures (METHOD.md §5, §6).

The key property: the compact network computes what the masked network computes, on any input, to
float32 rounding: both sum the same nonzero products and differ only in summation order and blocking.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dspjax.pruning.chain import chain_apply
from dspjax.pruning.compact import compact, compression_stats, dense_param_count
from dspjax.pruning.groups import param_masks
from dspjax.pruning.mask import apply_param_mask

compression_stats_jit = jax.jit(compression_stats)

# A few widths, so that JAX's compiled programs are reused across examples (compiling dominates).
WIDTH, N_IN, N_OUT = st.sampled_from([1, 2, 5, 8]), st.sampled_from([1, 3]), st.sampled_from([1, 2])
architectures = st.tuples(N_IN, st.lists(WIDTH, min_size=1, max_size=3), N_OUT)


def masked_network(params, neuron_masks):
    return apply_param_mask(params, param_masks(params, tuple(map(jnp.asarray, neuron_masks))))


def rounding_bounds(small, x, activation):
    """Per-layer bounds on |compact - masked| in float32, from first-order rounding analysis (float64).

    A dot product of length n computed in any order is within ``γ_n · Σ|w_i x_i|`` of the exact value
    (``γ_n ≈ n u``, u = 2⁻²⁴, Higham §3.1); two orders differ by at most twice that. tanh and relu are
    1-Lipschitz, so an input difference passes on undamped; the next layer's ``|W|ᵀ`` carries it
    forward. One rounding of the activation's output (``u |h|`` per side) is added for safety. The
    bound scales with the activations' magnitude, so it holds on any CPU and any summation order.
    """
    u = 2.0 ** -24
    h = np.abs(np.asarray(x, np.float64))
    error, bounds = np.zeros_like(h), []
    for layer in small:
        w, b = np.abs(np.asarray(layer["kernel"], np.float64)), np.abs(np.asarray(layer["bias"], np.float64))
        magnitude = h @ w + b
        error = error @ w + 2 * (w.shape[0] + 1) * u * magnitude
        h = np.minimum(magnitude, 1.0) if activation == "tanh" else magnitude  # |activation(z)| ≤ |z|
        bounds.append(error + 2 * u * h)
    return bounds


def count_params(params):
    return sum(np.asarray(layer["kernel"]).size + np.asarray(layer["bias"]).size for layer in params)


def test_compact_small_example():
    params = ({"kernel": np.arange(6.0).reshape(2, 3), "bias": np.array([10.0, 11.0, 12.0])},
              {"kernel": np.arange(6.0).reshape(3, 2) + 100, "bias": np.array([-1.0, -2.0])})
    (first, second) = compact(params, (np.array([True, False, True]),))
    np.testing.assert_array_equal(first["kernel"], [[0.0, 2.0], [3.0, 5.0]])
    np.testing.assert_array_equal(first["bias"], [10.0, 12.0])
    np.testing.assert_array_equal(second["kernel"], [[100.0, 101.0], [104.0, 105.0]])
    np.testing.assert_array_equal(second["bias"], [-1.0, -2.0])


@settings(max_examples=25, deadline=None)
@given(arch=architectures, seed=st.integers(0, 2 ** 16), activation=st.sampled_from(["tanh", "relu"]))
def test_compact_equals_masked_network(arch, seed, activation, make_mlp, make_masks):
    n_in, hidden, n_out = arch
    rng = np.random.default_rng(seed)
    params = make_mlp(rng, (n_in, *hidden, n_out))
    masks = make_masks(rng, hidden, rng.uniform(0.1, 0.9))
    small = compact(params, masks)
    alive = [int(m.sum()) for m in masks]
    expected_sizes = [n_in, *alive, n_out]
    for l, layer in enumerate(small):
        chex.assert_shape(layer["kernel"], (expected_sizes[l], expected_sizes[l + 1]))
        chex.assert_shape(layer["bias"], (expected_sizes[l + 1],))
    x = rng.normal(size=(16, n_in)).astype(np.float32) * 2.0
    out_masked, hiddens_masked = chain_apply(masked_network(params, masks), x, activation)
    out_small, hiddens_small = chain_apply(small, x, activation)
    chex.assert_shape(out_small, (16, n_out))
    bounds = rounding_bounds(small, x, activation)
    assert np.all(np.abs(np.asarray(out_small) - np.asarray(out_masked)) <= bounds[-1])
    # and the alive hidden activations are the masked network's, in order
    for h_small, h_masked, m, bound in zip(hiddens_small, hiddens_masked, masks, bounds):
        assert np.all(np.abs(np.asarray(h_small) - np.asarray(h_masked)[:, m]) <= bound)
        np.testing.assert_array_equal(np.asarray(h_masked)[:, ~m], 0.0)  # pruned neurons output 0


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_compact_equals_masked_network_at_realistic_width(activation, make_mlp, make_masks):
    """Float32 matmuls of different lengths still agree to rounding on wide layers."""
    rng = np.random.default_rng(0)
    sizes = (17, 256, 128, 64, 6)
    params = make_mlp(rng, sizes)
    masks = make_masks(rng, sizes[1:-1], 0.3)
    x = rng.normal(size=(128, 17)).astype(np.float32) * 2.0
    out_masked, _ = chain_apply(masked_network(params, masks), x, activation)
    small = compact(params, masks)
    out_small, _ = chain_apply(small, x, activation)
    bound = rounding_bounds(small, x, activation)[-1]
    assert np.all(np.abs(np.asarray(out_small) - np.asarray(out_masked)) <= bound)
    # the bound is tight enough to catch one neuron too few
    one_fewer = [m.copy() for m in masks]
    one_fewer[-1][np.flatnonzero(one_fewer[-1])[0]] = False
    out_one_fewer, _ = chain_apply(masked_network(params, one_fewer), x, activation)
    assert np.any(np.abs(np.asarray(out_one_fewer) - np.asarray(out_masked)) > bound)


@settings(max_examples=20, deadline=None)
@given(arch=architectures, seed=st.integers(0, 2 ** 16))
def test_compact_matches_numpy_indexing(arch, seed, make_mlp, make_masks):
    n_in, hidden, n_out = arch
    rng = np.random.default_rng(seed)
    params = make_mlp(rng, (n_in, *hidden, n_out), as_jax=False)
    masks = make_masks(rng, hidden)
    small = compact(params, tuple(map(jnp.asarray, masks)))
    keep = [np.arange(n_in)] + [np.flatnonzero(m) for m in masks] + [np.arange(n_out)]
    for l, layer in enumerate(params):
        ref_k = np.array([[layer["kernel"][i, j] for j in keep[l + 1]] for i in keep[l]])
        ref_b = np.array([layer["bias"][j] for j in keep[l + 1]])
        np.testing.assert_array_equal(small[l]["kernel"].reshape(ref_k.shape), ref_k)
        np.testing.assert_array_equal(small[l]["bias"], ref_b)


def test_dense_param_count(make_mlp):
    params = make_mlp(np.random.default_rng(0), (4, 64, 32, 2))
    assert dense_param_count(params) == 4 * 64 + 64 + 64 * 32 + 32 + 32 * 2 + 2


def reference_stats(sizes, masks, weight_masks=None):
    """Counts by a loop over every kernel entry and bias of the dense network."""
    alive = [np.ones(sizes[0], bool), *masks, np.ones(sizes[-1], bool)]
    kernels = biases = 0
    for l in range(len(sizes) - 1):
        for j in range(sizes[l + 1]):
            if not alive[l + 1][j]:
                continue
            biases += 1
            for i in range(sizes[l]):
                if alive[l][i] and (weight_masks is None or weight_masks[l][i, j]):
                    kernels += 1
    dense = sum(sizes[l] * sizes[l + 1] + sizes[l + 1] for l in range(len(sizes) - 1))
    n_alive = sum(int(m.sum()) for m in masks)
    n_hidden = sum(sizes[1:-1])
    return {"alive_neurons": n_alive, "neurons_removed": 1 - n_alive / n_hidden,
            "weights_removed": 1 - (kernels + biases) / dense, "flops": 2 * kernels + biases,
            "bytes": 4 * (kernels + biases)}


@settings(max_examples=20, deadline=None)
@given(arch=architectures, seed=st.integers(0, 2 ** 16), with_weights=st.booleans())
def test_compression_stats_match_numpy_count(arch, seed, with_weights, make_mlp, make_masks):
    n_in, hidden, n_out = arch
    sizes = (n_in, *hidden, n_out)
    rng = np.random.default_rng(seed)
    params = make_mlp(rng, sizes)
    masks = make_masks(rng, hidden, rng.uniform(0.1, 0.9))
    weight_masks = (tuple(rng.random((a, b)) < 0.6 for a, b in zip(sizes[:-1], sizes[1:]))
                    if with_weights else None)
    stats = compression_stats_jit(params, tuple(map(jnp.asarray, masks)),
                                  None if weight_masks is None else tuple(map(jnp.asarray, weight_masks)))
    ref = reference_stats(sizes, masks, weight_masks)
    assert set(stats) == set(ref)
    for name, value in ref.items():
        np.testing.assert_allclose(stats[name], value, rtol=1e-6, atol=1e-7, err_msg=name)
    if not with_weights:
        # structured: the kept parameters are exactly the compact network's
        small = compact(params, masks)
        kept = count_params(small)
        np.testing.assert_allclose(stats["weights_removed"], 1 - kept / dense_param_count(params), rtol=1e-6,
                                   atol=1e-7)
        np.testing.assert_allclose(stats["bytes"], 4 * kept)
        np.testing.assert_allclose(stats["bytes"], sum(a.nbytes for a in jax.tree.leaves(small)))
        flops = sum(2 * layer["kernel"].size + layer["bias"].size for layer in small)
        np.testing.assert_allclose(stats["flops"], flops)


def test_compression_stats_of_the_dense_network(make_mlp):
    sizes = (8, 64, 64, 4)
    params = make_mlp(np.random.default_rng(0), sizes)
    stats = compression_stats(params, tuple(jnp.ones(n, bool) for n in sizes[1:-1]))
    assert int(stats["alive_neurons"]) == 128
    assert float(stats["neurons_removed"]) == 0.0
    assert float(stats["weights_removed"]) == 0.0
    assert float(stats["bytes"]) == 4 * dense_param_count(params)
