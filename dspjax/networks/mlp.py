"""The MLP that DSP prunes, as pure functions on an explicit parameter pytree.

Parameters are a tuple of dense layers ``{"kernel": (n_in, n_out), "bias": (n_out,)}`` — the layout
``dspjax.pruning`` reads its neuron groups from (METHOD.md §1). ``mlp_apply`` also returns the
hidden activations and accepts zero-valued ``probes`` added to them, so one backward pass gives
``∂L/∂h`` for the Taylor importance (§2) next to the parameter gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


def orthogonal_kernel(key, n_in: int, n_out: int, gain: float = 1.0):
    """The ``(n_in, n_out)`` kernel of ``jax.nn.initializers.orthogonal(gain)`` for the same key.

    The orthonormal factor of a Gaussian matrix is computed by Gram–Schmidt (applied twice, which
    makes it as orthogonal as Householder QR) in plain ``jnp`` rather than by LAPACK's QR: under
    ``vmap`` a population would batch that QR, and jaxlib's CPU runtime can deadlock running
    batched LAPACK kernels on a small (e.g. 2-core) thread pool.
    """
    transpose = n_in < n_out
    rows, cols = (n_out, n_in) if transpose else (n_in, n_out)
    a = jax.random.normal(key, (rows, cols), jnp.float32)

    def add_column(q, j_and_column):
        j, column = j_and_column
        for _ in range(2):  # "twice is enough": the second pass removes the first's rounding
            column = column - q @ (q.T @ column)
        return q.at[:, j].set(column / jnp.linalg.norm(column)), None

    q, _ = jax.lax.scan(add_column, jnp.zeros((rows, cols), jnp.float32), (jnp.arange(cols), a.T))
    return gain * (q.T if transpose else q)


def init_mlp(key, sizes: Sequence[int], hidden_scale: float = 2 ** 0.5, output_scale: float = 1.0):
    """Orthogonal kernels (gain ``hidden_scale``, ``output_scale`` for the last layer), zero biases.

    ``sizes = (n_in, n_1, ..., n_L, n_out)``.
    """
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        gain = output_scale if i == len(sizes) - 2 else hidden_scale
        kernel = orthogonal_kernel(k, n_in, n_out, gain)
        layers.append({"kernel": kernel, "bias": jnp.zeros((n_out,), jnp.float32)})
    return tuple(layers)


def zero_probes(params, batch_shape=()):
    """Zero perturbations of every hidden activation, for ``mlp_apply(..., probes=...)``."""
    return tuple(jnp.zeros(batch_shape + (layer["bias"].shape[-1],)) for layer in params[:-1])


def mlp_apply(params, x, activation: str = "tanh", probes=None):
    """Forward pass. Returns ``(output, hiddens)``, hiddens being the post-activation outputs of
    every hidden layer (plus ``probes`` when given, which are zeros and only carry gradients)."""
    act = ACTIVATIONS[activation]
    hiddens = []
    h = x
    for i, layer in enumerate(params[:-1]):
        h = act(h @ layer["kernel"] + layer["bias"])
        if probes is not None:
            h = h + probes[i]
        hiddens.append(h)
    out = h @ params[-1]["kernel"] + params[-1]["bias"]
    return out, tuple(hiddens)


def output_jacobians(params, x, activation: str = "tanh"):
    """Per-sample ``∂f(x)/∂h_l`` for every hidden layer, each of shape (batch, n_out, n_l)."""
    def single(xi):
        probes = zero_probes(params)
        return jax.jacrev(lambda p: mlp_apply(params, xi, activation, p)[0])(probes)
    return jax.vmap(single)(x)
