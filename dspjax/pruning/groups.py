"""Neuron groups with cross-layer coupling (METHOD.md §1).

An MLP's parameters are a tuple of dense layers ``({"kernel": W_1, "bias": b_1}, ...,
{"kernel": W_{L+1}, "bias": b_{L+1}})``; hidden layer ``l`` (0-based here) is the output of dense
layer ``l`` and the input of dense layer ``l + 1``. The group of hidden neuron ``(l, j)`` is every
parameter that dies with it::

    g_{l,j} = ( W_l[:, j], b_l[j], W_{l+1}[j, :] )        |g_{l,j}| = n_{l-1} + 1 + n_{l+1}

Output neurons are never grouped.
"""

from __future__ import annotations

import jax.numpy as jnp

Params = tuple  # tuple of {"kernel": (n_in, n_out), "bias": (n_out,)} dicts


def hidden_sizes(params: Params) -> tuple[int, ...]:
    """Widths ``(n_1, ..., n_L)`` of the hidden layers."""
    return tuple(int(layer["bias"].shape[-1]) for layer in params[:-1])


def group_sizes(params: Params) -> tuple[int, ...]:
    """``|g_{l,j}| = n_{l-1} + 1 + n_{l+1}`` for each hidden layer (same for every neuron of it)."""
    return tuple(int(params[l]["kernel"].shape[-2]) + 1 + int(params[l + 1]["kernel"].shape[-1])
                 for l in range(len(params) - 1))


def group_sq_norms(params: Params) -> tuple[jnp.ndarray, ...]:
    """``||g_{l,j}||²`` for every hidden neuron, one ``(n_l,)`` array per hidden layer."""
    return tuple(jnp.sum(params[l]["kernel"] ** 2, axis=-2) + params[l]["bias"] ** 2
                 + jnp.sum(params[l + 1]["kernel"] ** 2, axis=-1)
                 for l in range(len(params) - 1))


def safe_sqrt(x: jnp.ndarray) -> jnp.ndarray:
    """``sqrt(x)`` with gradient 0 (not NaN) where ``x == 0``: a pruned group's norm is exactly 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def group_norms(params: Params) -> tuple[jnp.ndarray, ...]:
    """``||g_{l,j}||_2`` for every hidden neuron (differentiable, 0-gradient at 0)."""
    return tuple(safe_sqrt(sq) for sq in group_sq_norms(params))


def param_masks(params: Params, neuron_masks, weight_masks=None) -> Params:
    """Float 0/1 masks shaped like ``params``: a parameter is alive when every neuron it connects
    is alive (inputs and outputs always are) and, for kernels, its weight mask is on (§4, §7)."""
    n = len(params)
    out = []
    for l in range(n):
        in_mask = None if l == 0 else neuron_masks[l - 1].astype(jnp.float32)
        out_mask = None if l == n - 1 else neuron_masks[l].astype(jnp.float32)
        kernel = jnp.ones(params[l]["kernel"].shape, jnp.float32)
        bias = jnp.ones(params[l]["bias"].shape, jnp.float32)
        if in_mask is not None:
            kernel = kernel * in_mask[..., :, None]
        if out_mask is not None:
            kernel = kernel * out_mask[..., None, :]
            bias = bias * out_mask
        if weight_masks is not None:
            kernel = kernel * weight_masks[l].astype(jnp.float32)
        out.append({"kernel": kernel, "bias": bias})
    return tuple(out)
