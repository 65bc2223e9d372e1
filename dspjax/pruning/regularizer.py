"""Neuron-importance group-sparse regularizer (METHOD.md §3)::

    R(θ) = λ_t Σ_l Σ_{j alive} α_{l,j} · sqrt(|g_{l,j}|) · ||g_{l,j}||_2,   α = 1 − s + δ

``α`` is a constant each step (stop-gradient). ``importance = none`` gives ``α = 1`` (plain group
lasso). ``λ_t`` ramps linearly from 0 to ``λ`` over the first ``reg_warmup`` of training. The
penalty is either a loss term or (``proximal``) a group soft-threshold after each optimiser step.

Our option beyond §3: ``reg_end`` < 1 turns the penalty off (``λ_t = 0``) from that fraction of
training on. Set to ``prune_end``, it stops shrinking the surviving neurons once the mask is final:
after the last pruning step the penalty can no longer remove a neuron, only damp the network.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dspjax.pruning.groups import group_norms, group_sizes
from dspjax.pruning.importance import NONE

PENALTY_FORMS = ("loss", "proximal")
LOSS, PROXIMAL = range(len(PENALTY_FORMS))


def penalty_on(progress, reg_end):
    """Whether the penalty is on at training fraction ``progress``: before ``reg_end``, or always
    for ``reg_end = 1``."""
    return (progress < reg_end) | (reg_end >= 1.0)


def regularization_strength(lam, progress, reg_warmup, reg_end=1.0):
    """``λ_t``: linear ramp from 0 at progress 0 to ``λ`` at progress ``reg_warmup``, and 0 from
    progress ``reg_end`` on (``reg_end = 1``: never switched off)."""
    ramp = jnp.where(reg_warmup > 0, progress / jnp.maximum(reg_warmup, 1e-12), 1.0)
    return jnp.where(penalty_on(progress, reg_end), lam * jnp.clip(ramp, 0.0, 1.0), 0.0)


def penalty_weights(scores, neuron_masks, delta, importance_kind):
    """``α_{l,j} = 1 − s_{l,j} + δ`` on alive neurons (``1`` for ``none``), 0 on pruned ones."""
    return tuple(jax.lax.stop_gradient(
        jnp.where(m, jnp.where(importance_kind == NONE, 1.0, 1.0 - s + delta), 0.0))
        for s, m in zip(scores, neuron_masks))


def group_sparse_penalty(params, alphas, lam_t):
    """``R(θ)`` for the given per-neuron weights ``α`` (already zero on pruned neurons)."""
    total = 0.0
    for a, norm, size in zip(alphas, group_norms(params), group_sizes(params)):
        total = total + jnp.sqrt(float(size)) * jnp.sum(a * norm)
    return lam_t * total


def proximal_factors(params, alphas, lam_t, step_size):
    """The group soft-threshold's factor ``max(0, 1 − η λ α sqrt(|g|) / ||g||)`` of every hidden
    neuron's group (0 for a group already at 0), one ``(n_l,)`` array per hidden layer."""
    factors = []
    for a, norm, size in zip(alphas, group_norms(params), group_sizes(params)):
        shrink = step_size * lam_t * a * jnp.sqrt(float(size)) / jnp.where(norm > 0, norm, 1.0)
        factors.append(jnp.where(norm > 0, jnp.maximum(0.0, 1.0 - shrink), 0.0))
    return tuple(factors)


def proximal_group_shrink(params, alphas, lam_t, step_size):
    """Group soft-threshold ``g ← g · max(0, 1 − η λ α sqrt(|g|) / ||g||)`` for every group.

    Groups of consecutive layers overlap (``W_{l+1}`` belongs to layer ``l``'s groups by rows and
    to layer ``l+1``'s by columns); each parameter is scaled by the factor of every group it is in.
    """
    factors = proximal_factors(params, alphas, lam_t, step_size)
    out = []
    for l, layer in enumerate(params):
        kernel, bias = layer["kernel"], layer["bias"]
        if l > 0:
            kernel = kernel * factors[l - 1][:, None]
        if l < len(factors):
            kernel = kernel * factors[l][None, :]
            bias = bias * factors[l]
        out.append({"kernel": kernel, "bias": bias})
    return tuple(out)
