"""The DSP part of an agent's training step, shared by every agent (METHOD.md §2–§5).

An agent computes its loss (RL loss + ``regularizer_loss``) with zero probes on the hidden
activations, takes one ``value_and_grad``, and hands the result to ``dsp_gradient_step``; it calls
``prune_networks`` on pruning iterations and logs ``compression_metrics``. ``params`` and
``pruners`` are dicts keyed by network name (``actor``, ``critic``, ``q``), each network pruned
with its own mask. ``dsp_hp`` is one ``DSPHParams`` for every network, or a dict of them by network
name (their pruning windows must agree: pruning iterations are shared).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from dspjax.networks import output_jacobians
from dspjax.pruning import (
    apply_masks,
    batch_importance,
    compression_stats,
    is_pruning_iteration,
    mask_gradients,
    observe_importance,
    proximal_step,
    prune_step,
)


def network_hparams(dsp_hp, name: str):
    """The DSP hyperparameters of network ``name`` (``dsp_hp`` shared, or a dict by network)."""
    return dsp_hp[name] if isinstance(dsp_hp, dict) else dsp_hp


def dsp_gradient_step(optimizer, step_size_fn, params, opt_state, pruners, grads, hiddens,
                      probe_grads, obs, dsp_hp, progress, activation):
    """Importance EMA update (§2), gradient masking, the optimiser step, the proximal shrink (§3,
    proximal form) and exact masking of parameters and optimiser moments (§4).

    ``step_size_fn(opt_state)`` is the learning rate of the step just taken (for the proximal
    form); ``obs`` is the batch the gradients came from (for the ``output`` importance).
    """
    for n in params:
        hp = network_hparams(dsp_hp, n)
        scores = batch_importance(hp.importance, params[n], hiddens[n], probe_grads[n],
                                  lambda n=n: output_jacobians(params[n], obs, activation),
                                  pruners[n].importance)
        pruners = {**pruners, n: observe_importance(pruners[n], hp, scores)}
    grads = {n: mask_gradients(grads[n], params[n], pruners[n]) for n in params}
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    step_size = step_size_fn(opt_state)
    params = {n: proximal_step(params[n], pruners[n], network_hparams(dsp_hp, n), progress, step_size)
              for n in params}
    params, opt_state = apply_masks(params, opt_state, pruners)
    return params, opt_state, pruners


def prune_networks(params, pruners, dsp_hp, iteration, num_iterations):
    """A mask update of every network on pruning iterations (§4); the pruners unchanged otherwise."""
    progress = iteration / num_iterations

    def prune(pruners):
        return {n: prune_step(params[n], pruners[n], network_hparams(dsp_hp, n), progress)
                for n in params}
    window = network_hparams(dsp_hp, next(iter(params)))
    return jax.lax.cond(is_pruning_iteration(iteration, num_iterations, window), prune,
                        lambda p: p, pruners)


def all_finite(loss, params):
    """False when the loss or any parameter is NaN or infinite (the member has diverged)."""
    return jnp.isfinite(loss) & jax.tree.reduce(lambda a, x: a & jnp.all(jnp.isfinite(x)),
                                                params, jnp.array(True))


def keep_unless_diverged(diverged, old_state, new_state):
    """``old_state`` where the member has diverged (it keeps its last finite networks)."""
    return jax.tree.map(lambda old, new: jnp.where(diverged, old, new), old_state, new_state)


def compression_metrics(params, pruners) -> dict:
    """§5 figures and alive neurons per layer of every network, named ``<net>_<figure>``."""
    metrics = {}
    for n in params:
        stats = compression_stats(params[n], pruners[n].neuron_masks, pruners[n].weight_masks)
        metrics.update({f"{n}_{k}": v for k, v in stats.items()})
        for l, m in enumerate(pruners[n].neuron_masks):
            metrics[f"{n}_alive_layer{l}"] = jnp.sum(m)
    return metrics
