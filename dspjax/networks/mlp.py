"""The MLP that dspjax's agents train, as a Flax module, and the pruning declaration of it.

``MLP`` is a plain chain of ``nn.Dense`` layers with one elementwise activation between them, so
DSP prunes it through ``MLP.chain`` (METHOD.md §1) like any user's Flax network. Its kernels start
orthogonal (``orthogonal_kernel``, the initializer of PPO implementations), biases at zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dspjax.pruning.chain import ACTIVATIONS, DenseChain, chain_layers, dense_chain


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


def orthogonal(gain: float = 1.0):
    """``orthogonal_kernel`` as a Flax kernel initializer ``init(key, (n_in, n_out), dtype)``."""
    def init(key, shape, dtype=jnp.float32):
        return orthogonal_kernel(key, shape[0], shape[1], gain).astype(dtype)
    return init


class MLP(nn.Module):
    """``x -> Dense(n_1) -> act -> ... -> Dense(n_L) -> act -> Dense(out_size)``."""
    hidden_sizes: Sequence[int]
    out_size: int
    activation: str = "tanh"
    hidden_scale: float = 2 ** 0.5
    output_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for width in self.hidden_sizes:
            x = act(nn.Dense(width, kernel_init=orthogonal(self.hidden_scale))(x))
        return nn.Dense(self.out_size, kernel_init=orthogonal(self.output_scale))(x)

    def chain(self, prefix: Sequence = ("params",), mask_of: str | None = None) -> DenseChain:
        """This network's pruning declaration, its variables found under ``prefix`` of the tree
        DSP sees (``("params",)`` for its own variables; ``("actor", "params")`` inside a dict of
        networks)."""
        return dense_chain(tuple(prefix), len(self.hidden_sizes) + 1, self.activation, mask_of)


def init_layers(key, sizes: Sequence[int], activation: str = "tanh") -> tuple:
    """The layers ``({"kernel", "bias"}, ...)`` of a freshly initialised ``MLP`` with
    ``sizes = (n_in, n_1, ..., n_L, n_out)`` (for a network of a given size outside an agent)."""
    model = MLP(tuple(sizes[1:-1]), sizes[-1], activation)
    return chain_layers(model.init(key, jnp.zeros((1, sizes[0]), jnp.float32)), model.chain())
