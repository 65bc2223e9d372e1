"""The binary neuron mask and how it is applied (METHOD.md §4, §7).

``update_mask`` is monotone (a pruned neuron never returns) and keeps the ``min_alive`` highest
values of each layer. Applying the mask after every optimiser step sets each pruned group, its
gradients and its optimiser moments to exactly 0, so the network computes exactly what its compact
version (§6) computes. ``update_weight_mask`` is the unstructured baseline of §7 (Zhu & Gupta
gradual magnitude pruning of single weights).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dspjax.pruning.threshold import top_k_threshold


def descending_rank(values, mask):
    """Rank of each alive value from the top (0 = highest); pruned entries rank last."""
    order = jnp.argsort(-jnp.where(mask, values, -jnp.inf))
    return jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[-1]))


def update_mask(mask, values, threshold, min_alive):
    """``m ← m ⊙ 1[value ≥ τ]``, but the ``min_alive`` highest alive values of the layer stay."""
    keep = mask & (values >= threshold)
    protected = mask & (descending_rank(values, mask) < min_alive)
    return keep | protected


def update_weight_mask(weight_mask, kernel, sparsity):
    """Unstructured magnitude pruning: keep the ``ceil((1 − sparsity) · size)`` largest ``|w|``
    of the kernel among those still alive (monotone)."""
    flat_w = jnp.abs(kernel).reshape(-1)
    flat_m = weight_mask.reshape(-1)
    keep = jnp.ceil((1.0 - sparsity) * flat_w.shape[0] - 1e-6).astype(jnp.int32)
    tau = top_k_threshold(flat_w, flat_m, jnp.maximum(keep, 1))
    return (flat_m & (flat_w >= tau)).reshape(weight_mask.shape)


def apply_param_mask(tree, param_mask):
    """Multiplies every leaf of a params-shaped tree by the params-shaped 0/1 mask."""
    return jax.tree.map(lambda x, m: x * m.astype(x.dtype), tree, param_mask)


def mask_optimizer_state(opt_state, param_mask):
    """Zeroes the entries of every params-shaped subtree of an optax state (Adam's ``mu``, ``nu``,
    ...) that belong to pruned parameters. Other leaves (step counts) pass through."""
    target = jax.tree.structure(param_mask)

    def is_params_like(node):
        try:
            return jax.tree.structure(node) == target
        except Exception:  # noqa: BLE001 - unflattenable nodes are simply not params-like
            return False

    return jax.tree.map(lambda node: apply_param_mask(node, param_mask) if is_params_like(node)
                        else node, opt_state, is_leaf=is_params_like)
