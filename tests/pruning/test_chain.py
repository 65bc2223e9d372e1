"""Where DSP finds a network in a parameter tree (``DenseChain``) and the chain's forward pass,
hidden probes and output Jacobians, against NumPy and finite differences."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dspjax.pruning.chain import (
    DenseChain,
    chain_apply,
    chain_layers,
    dense_chain,
    output_jacobians,
    with_chain_layers,
)


def zero_probes(layers, batch):
    return tuple(jnp.zeros((batch, layer["bias"].shape[0])) for layer in layers[:-1])


@pytest.mark.parametrize("activation,act", [("tanh", np.tanh), ("relu", lambda z: np.maximum(z, 0))])
@pytest.mark.parametrize("sizes", [(3, 5, 2), (4, 8, 6, 3), (2, 3, 4, 5, 1)])
def test_forward_matches_numpy(sizes, activation, act, make_mlp, np_forward):
    layers = make_mlp(np.random.default_rng(0), sizes)
    x = np.random.default_rng(1).normal(size=(7, sizes[0])).astype(np.float32)
    out, hiddens = chain_apply(layers, x, activation)
    ref_out, ref_hiddens = np_forward(layers, x, act)
    chex.assert_shape(out, (7, sizes[-1]))
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    for h, r in zip(hiddens, ref_hiddens):
        np.testing.assert_allclose(h, r, rtol=1e-5, atol=1e-5)


def test_probe_gradients_are_loss_gradients_wrt_hiddens(make_mlp):
    """∂L/∂probe equals ∂L/∂h, checked by finite differences on one hidden unit."""
    layers = make_mlp(np.random.default_rng(2), (3, 6, 5, 2))
    x = jax.random.normal(jax.random.PRNGKey(3), (4, 3))

    def loss(probes):
        return jnp.sum(chain_apply(layers, x, "tanh", probes)[0] ** 2)

    probes = zero_probes(layers, 4)
    grads = jax.grad(loss)(probes)
    chex.assert_trees_all_equal_shapes(grads, probes)
    eps = 1e-3
    for l in range(2):
        bump = [jnp.zeros_like(p) for p in probes]
        bump[l] = bump[l].at[1, 2].set(eps)
        up = loss(tuple(p + b for p, b in zip(probes, bump)))
        down = loss(tuple(p - b for p, b in zip(probes, bump)))
        np.testing.assert_allclose(grads[l][1, 2], (up - down) / (2 * eps), rtol=2e-2, atol=1e-3)


def test_output_jacobians_match_finite_differences(make_mlp):
    layers = make_mlp(np.random.default_rng(4), (3, 5, 4, 2))
    x = jax.random.normal(jax.random.PRNGKey(5), (2, 3))
    jacs = output_jacobians(layers, x, "tanh")
    chex.assert_shape(jacs[0], (2, 2, 5))
    chex.assert_shape(jacs[1], (2, 2, 4))
    eps = 1e-3
    for l, width in enumerate((5, 4)):
        for j in range(width):
            up = list(zero_probes(layers, 2))
            down = list(zero_probes(layers, 2))
            up[l] = up[l].at[:, j].set(eps)
            down[l] = down[l].at[:, j].set(-eps)
            fd = (chain_apply(layers, x, "tanh", tuple(up))[0]
                  - chain_apply(layers, x, "tanh", tuple(down))[0]) / (2 * eps)
            np.testing.assert_allclose(jacs[l][:, :, j], fd, rtol=2e-2, atol=1e-3)


def test_chain_layers_reads_and_with_chain_layers_writes_only_the_declared_layers(make_mlp):
    rng = np.random.default_rng(6)
    actor, critic = make_mlp(rng, (3, 4, 2)), make_mlp(rng, (3, 4, 1))
    tree = {"params": {f"Dense_{i}": dict(layer) for i, layer in enumerate(actor + critic)},
            "batch_stats": {"mean": jnp.ones(3)}}
    chain = dense_chain(("params",), 2, name="Dense_{}")
    critic_chain = DenseChain((("params", "Dense_2"), ("params", "Dense_3")))
    for got, want in zip(chain_layers(tree, chain), actor):
        np.testing.assert_array_equal(got["kernel"], want["kernel"])
    for got, want in zip(chain_layers(tree, critic_chain), critic):
        np.testing.assert_array_equal(got["bias"], want["bias"])
    zeros = tuple(jax.tree.map(jnp.zeros_like, layer) for layer in actor)
    new = with_chain_layers(tree, chain, zeros)
    assert all(np.all(np.asarray(layer["kernel"]) == 0) for layer in chain_layers(new, chain))
    np.testing.assert_array_equal(new["params"]["Dense_2"]["kernel"], critic[0]["kernel"])
    np.testing.assert_array_equal(tree["params"]["Dense_0"]["kernel"], actor[0]["kernel"])  # not mutated
    assert new["batch_stats"] is tree["batch_stats"]


def test_a_chain_needs_a_hidden_layer_and_a_known_activation():
    with pytest.raises(ValueError, match="at least 2"):
        DenseChain((("params", "Dense_0"),))
    with pytest.raises(ValueError, match="activation='gelu'"):
        DenseChain((("a",), ("b",)), activation="gelu")


def test_dense_chain_numbers_flax_layers_from_first():
    assert dense_chain(("params",), 3, first=3).layers == (("params", "Dense_3"), ("params", "Dense_4"),
                                                          ("params", "Dense_5"))
