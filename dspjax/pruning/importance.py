"""Neuron importance (METHOD.md §2).

A score ``I_{l,j} >= 0`` per hidden neuron, computed under ``stop_gradient`` from quantities the
training step already has, smoothed by an EMA with rate ``β``. Per layer the scores are normalised
over alive neurons, ``s = I / (max_alive I + ε)``; pruned neurons have ``s = 0``.

The measure is an integer leaf (``IMPORTANCE_NAMES``) dispatched with ``lax.switch``, so a
population can mix measures in one compiled program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dspjax.pruning.groups import group_norms, group_sizes

IMPORTANCE_NAMES = ("taylor", "output", "activation", "magnitude", "none", "random")
TAYLOR, OUTPUT, ACTIVATION, MAGNITUDE, NONE, RANDOM = range(len(IMPORTANCE_NAMES))
EPS = 1e-8


def taylor_importance(hiddens, hidden_grads):
    """``E_batch |h · ∂L_RL/∂h|``: first-order change of the RL loss when the neuron is zeroed."""
    return tuple(jnp.mean(jnp.abs(h * g), axis=0) for h, g in zip(hiddens, hidden_grads))


def output_importance(hiddens, output_jacobians):
    """``E_batch ||h · ∂f(x)/∂h||_2``; ``output_jacobians[l]`` has shape (batch, n_out, n_l)."""
    return tuple(jnp.mean(jnp.abs(h) * jnp.sqrt(jnp.sum(jac ** 2, axis=-2)), axis=0)
                 for h, jac in zip(hiddens, output_jacobians))


def activation_importance(params, hiddens):
    """``E_batch |h| · ||W_{l+1}[j, :]||_2``."""
    return tuple(jnp.mean(jnp.abs(h), axis=0) * jnp.sqrt(jnp.sum(params[l + 1]["kernel"] ** 2, -1))
                 for l, h in enumerate(hiddens))


def magnitude_importance(params):
    """``||g_{l,j}||_2 / sqrt(|g_{l,j}|)`` (also the score behind ``none``, plain group lasso)."""
    return tuple(n / jnp.sqrt(size) for n, size in zip(group_norms(params), group_sizes(params)))


def batch_importance(kind, params, hiddens, hidden_grads, output_jacobians_fn, previous):
    """One batch's importance for measure ``kind`` (an int leaf), under ``stop_gradient``.

    ``output_jacobians_fn()`` is only evaluated by the ``output`` branch. ``random`` keeps the
    fixed random scores drawn at initialisation (``previous``), giving random structured pruning.
    """
    params, hiddens, hidden_grads = jax.lax.stop_gradient((params, hiddens, hidden_grads))
    branches = [
        lambda: taylor_importance(hiddens, hidden_grads),
        lambda: output_importance(hiddens, jax.lax.stop_gradient(output_jacobians_fn())),
        lambda: activation_importance(params, hiddens),
        lambda: magnitude_importance(params),
        lambda: magnitude_importance(params),
        lambda: tuple(previous),
    ]
    return jax.lax.switch(kind, branches)


def init_importance(key, kind, sizes):
    """EMA start: ones (all equal), or uniform random scores for the ``random`` baseline."""
    keys = jax.random.split(key, len(sizes))
    return tuple(jnp.where(kind == RANDOM, jax.random.uniform(k, (n,)), jnp.ones((n,)))
                 for k, n in zip(keys, sizes))


def ema_importance(previous, batch, beta, kind):
    """``I ← (1 − β) I + β I_batch`` (``random`` scores stay fixed)."""
    return tuple(jnp.where(kind == RANDOM, p, (1.0 - beta) * p + beta * b)
                 for p, b in zip(previous, batch))


def normalised_scores(importance, neuron_masks):
    """``s_{l,j} = I_{l,j} / (max_alive I_{l,·} + ε)`` in [0, 1]; 0 for pruned neurons."""
    out = []
    for imp, m in zip(importance, neuron_masks):
        alive_imp = jnp.where(m, imp, 0.0)
        out.append(alive_imp / (jnp.max(alive_imp) + EPS))
    return tuple(out)
