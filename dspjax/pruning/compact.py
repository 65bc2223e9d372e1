"""Compaction and compression figures (METHOD.md §5, §6).

``compact`` physically removes pruned neurons: ``W'_l = W_l[alive_{l-1}][:, alive_l]``,
``b'_l = b_l[alive_l]``. Its outputs equal the masked network's to float32 rounding (the same
nonzero products, summed in another order).
``compression_stats`` is jittable, so the figures can be logged over training.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dspjax.pruning.groups import param_masks


def compact(params, neuron_masks):
    """A smaller MLP with the pruned hidden neurons removed (NumPy arrays, outside ``jit``)."""
    alive = [np.asarray(m).astype(bool) for m in neuron_masks]
    n = len(params)
    out = []
    for l, layer in enumerate(params):
        kernel, bias = np.asarray(layer["kernel"]), np.asarray(layer["bias"])
        if l > 0:
            kernel = kernel[alive[l - 1], :]
        if l < n - 1:
            kernel, bias = kernel[:, alive[l]], bias[alive[l]]
        out.append({"kernel": kernel, "bias": bias})
    return tuple(out)


def dense_param_count(params) -> int:
    """Parameters of the dense network: all kernels and biases, input and output layers included."""
    return sum(int(np.prod(layer["kernel"].shape[-2:])) + int(layer["bias"].shape[-1])
               for layer in params)


def compression_stats(params, neuron_masks, weight_masks=None):
    """Figures of §5 for one network (jittable):

    - ``neurons_removed`` = 1 − alive hidden / all hidden
    - ``weights_removed`` = 1 − parameters kept / parameters of the dense network (kept = those of
      the compact network; for unstructured pruning, also only the weights left on)
    - ``flops``: multiply-adds ×2 plus bias adds of one forward pass of the kept network
    - ``bytes``: float32 bytes of the kept parameters
    """
    masks = param_masks(params, neuron_masks, weight_masks)
    alive = sum(jnp.sum(m) for m in neuron_masks)
    total = sum(m.shape[-1] for m in neuron_masks)
    kernels = sum(jnp.sum(m["kernel"]) for m in masks)
    biases = sum(jnp.sum(m["bias"]) for m in masks)
    kept = kernels + biases
    return {
        "alive_neurons": alive,
        # (all - kept) / all, not 1 - kept / all: XLA may turn the division into a multiplication
        # by the reciprocal, and then a network with nothing removed would not read exactly 0.
        "neurons_removed": (total - alive) / total,
        "weights_removed": (dense_param_count(params) - kept) / dense_param_count(params),
        "flops": 2.0 * kernels + biases,
        "bytes": 4.0 * kept,
    }
