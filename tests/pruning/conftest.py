"""Shared helpers for the tests of ``dspjax.pruning``: random MLP parameters, random masks and a
NumPy forward pass, all independent of the code under test.

They are exposed as session-scoped fixtures returning plain functions, so ``hypothesis`` tests
can use them (hypothesis refuses function-scoped fixtures).
"""

import jax.numpy as jnp
import numpy as np
import pytest


def random_mlp(rng: np.random.Generator, sizes, scale: float = 1.0, as_jax: bool = True):
    """MLP params ``({"kernel": (n_in, n_out), "bias": (n_out,)}, ...)`` with N(0, scale²/n_in)
    kernels and N(0, 0.1²) biases, float32; ``sizes = (n_in, n_1, ..., n_L, n_out)``."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        kernel = (rng.normal(size=(n_in, n_out)) * scale / np.sqrt(n_in)).astype(np.float32)
        bias = (rng.normal(size=(n_out,)) * 0.1).astype(np.float32)
        if as_jax:
            kernel, bias = jnp.asarray(kernel), jnp.asarray(bias)
        layers.append({"kernel": kernel, "bias": bias})
    return tuple(layers)


def random_neuron_masks(rng: np.random.Generator, hidden, p_alive: float = 0.6):
    """One bool mask per hidden layer with at least one alive neuron in each."""
    masks = []
    for n in hidden:
        m = rng.random(n) < p_alive
        m[rng.integers(n)] = True
        masks.append(m)
    return tuple(masks)


def numpy_forward(params, x, activation=np.tanh):
    """Float64 forward pass of the MLP: ``(output, [h_1, ..., h_L])``."""
    h = np.asarray(x, np.float64)
    hiddens = []
    for layer in params[:-1]:
        h = activation(h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64))
        hiddens.append(h)
    out = h @ np.asarray(params[-1]["kernel"], np.float64) + np.asarray(params[-1]["bias"], np.float64)
    return out, hiddens


def to_numpy(params):
    """Float64 NumPy copy of a params tuple."""
    return tuple({k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in params)


@pytest.fixture(scope="session")
def make_mlp():
    return random_mlp


@pytest.fixture(scope="session")
def make_masks():
    return random_neuron_masks


@pytest.fixture(scope="session")
def np_forward():
    return numpy_forward


@pytest.fixture(scope="session")
def np_params():
    return to_numpy
