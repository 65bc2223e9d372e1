"""Dynamic pruning thresholds (METHOD.md §4).

Progress ``p`` runs from 0 to 1 through the window ``[prune_start, prune_end]`` of training and
drives a cubic ramp ``1 − (1 − p)^3``. Each rule returns, per hidden layer, the values that are
compared and the threshold ``τ_t`` they must reach to stay alive:

- ``adaptive``: values ``s``, ``τ_t = c_t · mean_alive(s)``, ``c_t = c_final · ramp``.
- ``schedule``: values ``s``; ``τ_t`` keeps the top ``ceil(k_t · n_l)`` scores, with the alive
  fraction following ``k_t = 1 − (1 − k_final) · ramp`` (the quantile of alive scores that leaves
  that fraction of the layer alive).
- ``norm``: values ``||g|| / sqrt(|g|)``, ``τ_t = τ_final · ramp``.
- ``relative`` (default): values ``s``, ``τ_t = c_relative · ramp``. ``s`` is already relative to the layer's
  most important alive neuron, so cutting the tail does not move the threshold (unlike
  ``adaptive``, whose alive mean rises with every cut): with fixed importances pruning stops once
  every alive neuron has at least ``c_relative`` of the top one's importance (§4's fixed point).
  Measured (``experiments/found_size/rule_study``): it never reaches ``min_alive`` on PPO
  CartPole or Acrobot, but the regularizer keeps shrinking the weakest alive neurons, so the
  size found is set mostly by λ, the window and the width, little by ``c_relative``.
- ``relative_norm``: values ``||g|| / max_alive ||g||`` (group norms relative to the layer's
  largest alive one), ``τ_t = c_relative · ramp``: removes only the groups the regularizer has
  driven to near 0 next to the layer's largest, with the same fixed point.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

THRESHOLD_NAMES = ("adaptive", "schedule", "norm", "relative", "relative_norm")
ADAPTIVE, SCHEDULE, NORM, RELATIVE, RELATIVE_NORM = range(len(THRESHOLD_NAMES))


def cubic_ramp(p):
    """``1 − (1 − p)^3`` for progress ``p`` in [0, 1] (Zhu & Gupta's cubic schedule)."""
    return 1.0 - (1.0 - p) ** 3


def window_progress(t, start, end):
    """Progress through the pruning window for training fraction ``t``, clipped to [0, 1]."""
    return jnp.clip((t - start) / jnp.maximum(end - start, 1e-12), 0.0, 1.0)


def top_k_threshold(values, mask, k):
    """The ``k``-th largest alive value (``k >= 1``): keeping ``values >= τ`` keeps ``k`` of them
    (more only on ties). ``-inf`` when fewer than ``k`` are alive."""
    ordered = jnp.sort(jnp.where(mask, values, -jnp.inf))[::-1]
    k = jnp.clip(k, 1, values.shape[-1])
    return ordered[k - 1]


def adaptive_threshold(scores, mask, c_t):
    """``τ_t = c_t · mean_{alive}(s)``."""
    alive = jnp.maximum(jnp.sum(mask), 1)
    return c_t * jnp.sum(jnp.where(mask, scores, 0.0)) / alive


def schedule_threshold(scores, mask, k_t):
    """``τ_t`` that leaves ``ceil(k_t · n_l)`` neurons of the layer alive."""
    keep = jnp.ceil(k_t * scores.shape[-1] - 1e-6).astype(jnp.int32)
    return top_k_threshold(scores, mask, keep)


def relative_to_max(values, mask, eps=1e-12):
    """``values / max_{alive}(values)``; pruned entries (and an all-pruned layer) give 0."""
    top = jnp.max(jnp.where(mask, values, 0.0))
    return jnp.where(mask, values / (top + eps), 0.0)


def dynamic_threshold(rule, scores, magnitudes, masks, p, c_final, k_final, tau_final, c_relative=0.0):
    """Per hidden layer ``(values, τ_t)`` for rule ``rule`` (an int leaf) at window progress ``p``.

    ``scores`` are normalised importances ``s``; ``magnitudes`` are ``||g|| / sqrt(|g|)``.
    """
    ramp = cubic_ramp(p)
    out = []
    for s, mag, m in zip(scores, magnitudes, masks):
        branches = [
            lambda: (s, adaptive_threshold(s, m, c_final * ramp)),
            lambda: (s, schedule_threshold(s, m, 1.0 - (1.0 - k_final) * ramp)),
            lambda: (mag, tau_final * ramp),
            lambda: (s, c_relative * ramp),
            lambda: (relative_to_max(mag, m), c_relative * ramp),
        ]
        out.append(jax.lax.switch(rule, branches))
    return tuple(out)
