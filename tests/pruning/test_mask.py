"""The binary neuron mask, the unstructured weight mask and applying masks (METHOD.md §4, §7)."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from hypothesis import given, settings
from hypothesis import strategies as st

from dspjax.pruning.groups import param_masks
from dspjax.pruning.mask import apply_param_mask, descending_rank, mask_optimizer_state, update_mask, update_weight_mask

update_mask_jit = jax.jit(update_mask)
update_weight_mask_jit = jax.jit(update_weight_mask)


def reference_update_mask(mask, values, tau, min_alive):
    """Alive neurons with value >= τ, plus the ``min_alive`` highest alive values."""
    alive = [j for j in range(len(mask)) if mask[j]]
    top = sorted(alive, key=lambda j: -values[j])[:min_alive]
    return np.array([bool(mask[j] and (values[j] >= tau or j in top)) for j in range(len(mask))])


def test_descending_rank():
    v = jnp.array([0.3, 0.9, 0.1, 0.5])
    m = jnp.array([True, False, True, True])
    np.testing.assert_array_equal(descending_rank(v, m), [1, 3, 2, 0])


def test_update_mask_small_example():
    mask = jnp.array([True, True, False, True, True, True])
    values = jnp.array([0.9, 0.1, 1.0, 0.5, 0.05, 0.3])
    # τ = 0.4 keeps 0 and 3; min_alive = 3 also protects 5 (third highest alive); 2 stays dead
    np.testing.assert_array_equal(update_mask(mask, values, 0.4, 3), [1, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(update_mask(mask, values, 0.4, 1), [1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(update_mask(mask, values, 2.0, 1), [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(update_mask(mask, values, 0.0, 1), [1, 1, 0, 1, 1, 1])


@settings(max_examples=30, deadline=None)
@given(n=st.sampled_from([1, 2, 3, 5, 8, 13]), seed=st.integers(0, 2 ** 16), tau=st.floats(0.0, 1.2),
       min_alive=st.integers(1, 8), p_alive=st.floats(0.0, 1.0))
def test_update_mask_properties_and_reference(n, seed, tau, min_alive, p_alive):
    rng = np.random.default_rng(seed)
    values = rng.permutation(n).astype(np.float32) / n  # distinct, so "highest" is unambiguous
    mask = rng.random(n) < p_alive
    new = np.asarray(update_mask_jit(jnp.asarray(mask), jnp.asarray(values), jnp.float32(tau),
                                     jnp.int32(min_alive)))
    chex.assert_shape(new, (n,))
    assert new.dtype == bool
    assert not np.any(new & ~mask), "a pruned neuron came back"
    assert new.sum() >= min(min_alive, mask.sum())
    np.testing.assert_array_equal(new, reference_update_mask(mask, values, np.float32(tau), min_alive))


@settings(max_examples=20, deadline=None)
@given(n=st.sampled_from([2, 5, 8, 13]), seed=st.integers(0, 2 ** 16), min_alive=st.integers(1, 4))
def test_update_mask_repeated_is_monotone(n, seed, min_alive):
    rng = np.random.default_rng(seed)
    mask = jnp.ones(n, bool)
    history = [np.asarray(mask)]
    for _ in range(5):
        values = jnp.asarray(rng.random(n).astype(np.float32))  # importance keeps changing
        mask = update_mask_jit(mask, values, jnp.float32(rng.random()), jnp.int32(min_alive))
        history.append(np.asarray(mask))
    for before, after in zip(history, history[1:]):
        assert not np.any(after & ~before)
        assert after.sum() >= min(min_alive, before.sum())


def reference_weight_mask(mask, kernel, sparsity):
    flat_w, flat_m = np.abs(kernel).ravel(), mask.ravel()
    keep = max(math.ceil((1.0 - sparsity) * flat_w.size - 1e-6), 1)
    alive = np.flatnonzero(flat_m)
    kept = alive[np.argsort(-flat_w[alive])][:keep]
    out = np.zeros_like(flat_m)
    out[kept] = True
    return out.reshape(mask.shape)


@settings(max_examples=30, deadline=None)
@given(n_in=st.sampled_from([1, 3, 6]), n_out=st.sampled_from([1, 2, 5]), seed=st.integers(0, 2 ** 16),
       sparsity=st.floats(0.0, 0.99), p_alive=st.floats(0.2, 1.0))
def test_update_weight_mask_keeps_the_largest_alive_weights(n_in, n_out, seed, sparsity, p_alive):
    rng = np.random.default_rng(seed)
    kernel = (rng.permutation(n_in * n_out).reshape(n_in, n_out) + 1.0).astype(np.float32)
    kernel *= rng.choice([-1.0, 1.0], size=kernel.shape).astype(np.float32)  # distinct |w|, both signs
    mask = rng.random(kernel.shape) < p_alive
    new = np.asarray(update_weight_mask_jit(jnp.asarray(mask), jnp.asarray(kernel), jnp.float32(sparsity)))
    chex.assert_shape(new, kernel.shape)
    assert not np.any(new & ~mask)
    np.testing.assert_array_equal(new, reference_weight_mask(mask, kernel, float(np.float32(sparsity))))


def test_update_weight_mask_counts():
    kernel = jnp.arange(1.0, 21.0).reshape(4, 5)
    full = jnp.ones((4, 5), bool)
    assert int(update_weight_mask(full, kernel, 0.0).sum()) == 20
    assert int(update_weight_mask(full, kernel, 0.5).sum()) == 10
    assert int(update_weight_mask(full, kernel, 0.96).sum()) == 1  # ceil(0.8) = 1
    half = update_weight_mask(full, kernel, 0.5)
    np.testing.assert_array_equal(np.asarray(half).ravel(), np.arange(20) >= 10)


def test_apply_param_mask(make_mlp):
    params = make_mlp(np.random.default_rng(0), (3, 4, 2))
    neuron_masks = (jnp.array([True, False, True, False]),)
    masked = apply_param_mask(params, param_masks(params, neuron_masks))
    p, out = [jax.tree.map(np.asarray, t) for t in (params, masked)]
    dead, alive = [1, 3], [0, 2]
    np.testing.assert_array_equal(out[0]["kernel"][:, dead], 0.0)
    np.testing.assert_array_equal(out[0]["bias"][dead], 0.0)
    np.testing.assert_array_equal(out[1]["kernel"][dead, :], 0.0)
    np.testing.assert_array_equal(out[0]["kernel"][:, alive], p[0]["kernel"][:, alive])
    np.testing.assert_array_equal(out[0]["bias"][alive], p[0]["bias"][alive])
    np.testing.assert_array_equal(out[1]["kernel"][alive, :], p[1]["kernel"][alive, :])
    np.testing.assert_array_equal(out[1]["bias"], p[1]["bias"])


def test_mask_optimizer_state_zeroes_moments_only(make_mlp):
    rng = np.random.default_rng(1)
    params = {"actor": make_mlp(rng, (3, 5, 2)), "critic": make_mlp(rng, (3, 4, 1))}
    opt = optax.adam(1e-3)
    state = opt.init(params)
    grads = jax.tree.map(lambda p: jnp.ones_like(p), params)
    _, state = opt.update(grads, state, params)
    pmask = {"actor": param_masks(params["actor"], (jnp.array([True, False, True, True, False]),)),
             "critic": param_masks(params["critic"], (jnp.array([False, True, True, True]),))}
    masked = mask_optimizer_state(state, pmask)
    adam, masked_adam = state[0], masked[0]
    assert int(masked_adam.count) == int(adam.count) == 1
    for moment, masked_moment in [(adam.mu, masked_adam.mu), (adam.nu, masked_adam.nu)]:
        for leaf, m, out in zip(jax.tree.leaves(moment), jax.tree.leaves(pmask), jax.tree.leaves(masked_moment)):
            assert np.all(np.asarray(leaf) != 0)  # all moments were non-zero before
            np.testing.assert_array_equal(out, np.where(np.asarray(m) > 0, leaf, 0.0))
