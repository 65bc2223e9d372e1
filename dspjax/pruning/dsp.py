"""DSP for one network, put together (METHOD.md §1–§4, §7).

``DSPHParams`` holds every sweepable hyperparameter as an array leaf (the discrete choices as
integer codes), ``PrunerState`` the masks and importance EMA of one network. The functions here
work on one network's layers (``chain.chain_layers``); ``pruner.DSP`` calls them in order, once per
optimiser step, for every network an agent declares.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from dspjax.hparams import ConfigError, hparam, validate_fields
from dspjax.pruning.groups import hidden_sizes, param_masks
from dspjax.pruning.importance import (
    IMPORTANCE_NAMES,
    ema_importance,
    init_importance,
    magnitude_importance,
    normalised_scores,
)
from dspjax.pruning.mask import apply_param_mask, update_mask, update_weight_mask
from dspjax.pruning.regularizer import (
    LOSS,
    PENALTY_FORMS,
    PROXIMAL,
    group_sparse_penalty,
    penalty_on,
    penalty_weights,
    proximal_factors,
    proximal_group_shrink,
    regularization_strength,
)
from dspjax.pruning.threshold import THRESHOLD_NAMES, cubic_ramp, dynamic_threshold, window_progress

PRUNING_NAMES = ("none", "structured", "unstructured")
NO_PRUNING, STRUCTURED, UNSTRUCTURED = range(len(PRUNING_NAMES))


@struct.dataclass
class DSPHParams:
    """Sweepable DSP hyperparameters (each an array leaf; vmap over a population of them)."""
    lam: float = hparam(3.2e-3, low=0.0,
                        help="λ, strength of the group-sparse regularizer per training iteration: each of "
                             "its U optimiser steps applies λ/U (§3)")
    delta: float = hparam(0.1, low=0.0, low_open=True, help="δ in α = 1 − s + δ (§3)")
    beta: float = hparam(0.1, low=0.0, high=1.0, low_open=True, help="EMA rate β of importance (§2)")
    reg_warmup: float = hparam(0.1, low=0.0, high=1.0, help="fraction of training over which λ_t ramps up (§3)")
    reg_end: float = hparam(0.4, low=0.0, high=1.0, low_open=True,
                            help="fraction of training from which λ_t = 0 (default prune_end's 0.4: no "
                                 "shrinking once the mask is final; 1: never; our option beyond §3)")
    importance: int = hparam(0, choices=IMPORTANCE_NAMES, help="importance measure (§2); none = plain group lasso, random = random structured baseline")
    penalty_form: int = hparam(LOSS, choices=PENALTY_FORMS, help="regularizer as a loss term or a proximal step (§3)")
    pruning: int = hparam(STRUCTURED, choices=PRUNING_NAMES, help="what is pruned: none (dense), neurons (structured), single weights (unstructured GMP, §7)")
    threshold_rule: int = hparam(THRESHOLD_NAMES.index("relative"), choices=THRESHOLD_NAMES,
                                 help="dynamic threshold rule (§4); relative stops on its own, adaptive "
                                      "ratchets to min_alive")
    c_final: float = hparam(0.9, low=0.0, high=1.0, help="final c of the adaptive threshold τ = c_t · mean(s) (§4)")
    k_final: float = hparam(0.05, low=0.0, high=1.0, low_open=True, help="final alive fraction of the schedule threshold (§4)")
    tau_final: float = hparam(0.05, low=0.0, help="final τ of the norm threshold (§4)")
    c_relative: float = hparam(0.05, low=0.0, high=1.0,
                               help="final τ of the relative thresholds: prune s < τ_t (relative), "
                                    "or group norm < τ_t · the layer's largest (relative_norm) (§4)")
    gmp_sparsity: float = hparam(0.96, low=0.0, high=1.0, high_open=True, help="final weight sparsity of unstructured GMP (§7)")
    prune_start: float = hparam(0.1, low=0.0, high=1.0, high_open=True, help="fraction of training where pruning starts (§4)")
    prune_end: float = hparam(0.4, low=0.0, high=1.0, low_open=True, help="fraction of training where pruning ends (§4)")
    prune_every: int = hparam(5, low=1, integer=True, help="iterations between pruning steps (§4)")
    min_alive: int = hparam(4, low=1, integer=True, help="neurons per layer that always stay (§4)")

    def validate(self) -> None:
        """Checks ranges and cross-field rules of one (unbatched) member; raises ConfigError."""
        validate_fields(self)
        if self.prune_start >= self.prune_end:
            raise ConfigError(f"prune_start={self.prune_start:g} must be < prune_end={self.prune_end:g}")


# The method and the baselines of §7 as settings of the leaves above: one name per comparison row.
METHOD_PRESETS = {
    "dsp": {},
    "dense": {"pruning": NO_PRUNING, "lam": 0.0},
    "group_lasso": {"importance": IMPORTANCE_NAMES.index("none")},
    "gmp": {"pruning": UNSTRUCTURED, "lam": 0.0},
    "random": {"importance": IMPORTANCE_NAMES.index("random"), "lam": 0.0,
               "threshold_rule": THRESHOLD_NAMES.index("schedule")},
}


@struct.dataclass
class PrunerState:
    """Masks and smoothed importance of one network. Masks are bool, one per hidden layer
    (``neuron_masks``) and one per kernel (``weight_masks``, used only by unstructured GMP).
    ``floored[l]`` (a bool) is True once the ``min_alive`` floor kept a neuron of layer ``l`` that
    the threshold rule would have removed: that layer's size is the floor's, not the rule's."""
    neuron_masks: tuple
    weight_masks: tuple
    importance: tuple
    floored: tuple


def init_pruner(key, params, hp: DSPHParams) -> PrunerState:
    """All-ones masks; importance EMA started at ones (random scores for ``importance=random``)."""
    sizes = hidden_sizes(params)
    return PrunerState(
        neuron_masks=tuple(jnp.ones((n,), bool) for n in sizes),
        weight_masks=tuple(jnp.ones(layer["kernel"].shape, bool) for layer in params),
        importance=init_importance(key, hp.importance, sizes),
        floored=tuple(jnp.array(False) for _ in sizes),
    )


def pruner_param_mask(params, state: PrunerState):
    """Params-shaped float 0/1 mask of everything that is alive."""
    return param_masks(params, state.neuron_masks, state.weight_masks)


def _alphas(state: PrunerState, hp: DSPHParams):
    scores = normalised_scores(state.importance, state.neuron_masks)
    return penalty_weights(scores, state.neuron_masks, hp.delta, hp.importance)


def regularizer_loss(params, state: PrunerState, hp: DSPHParams, progress):
    """``R(θ)`` as a loss term at training fraction ``progress`` (0 in proximal form)."""
    lam_t = regularization_strength(hp.lam, progress, hp.reg_warmup, hp.reg_end)
    lam_t = jnp.where(hp.penalty_form == LOSS, lam_t, 0.0)
    return group_sparse_penalty(params, _alphas(state, hp), lam_t)


def observe_importance(state: PrunerState, hp: DSPHParams, batch_importance) -> PrunerState:
    """EMA update of the importance with one batch's scores (§2)."""
    return state.replace(importance=ema_importance(state.importance, batch_importance,
                                                   hp.beta, hp.importance))


def mask_gradients(grads, params, state: PrunerState):
    """Zeroes the gradients of pruned parameters before the optimiser sees them (§4)."""
    return apply_param_mask(grads, pruner_param_mask(params, state))


def _proximal_lam(hp: DSPHParams, progress):
    lam_t = regularization_strength(hp.lam, progress, hp.reg_warmup, hp.reg_end)
    return jnp.where(hp.penalty_form == PROXIMAL, lam_t, 0.0)


def proximal_step(params, state: PrunerState, hp: DSPHParams, progress, step_size):
    """Group soft-threshold after an optimiser step with step size ``η`` (proximal form only)."""
    return proximal_group_shrink(params, _alphas(state, hp), _proximal_lam(hp, progress), step_size)


def proximal_step_factors(params, state: PrunerState, hp: DSPHParams, progress, step_size):
    """``proximal_step``'s per-neuron factors (``regularizer.proximal_factors``): the step is
    every parameter times the factors of the groups it is in."""
    return proximal_factors(params, _alphas(state, hp), _proximal_lam(hp, progress), step_size)


# Training progress is float32; under jit XLA computes ``iteration / num_iterations`` as
# ``iteration * (1 / num_iterations)``, which can land an ulp below a window end on the iteration
# grid (e.g. 10 / 100 < 0.1): window ends are compared with this allowance for rounding.
WINDOW_TOL = 1e-6


def is_pruning_iteration(iteration, num_iterations, hp: DSPHParams):
    """True every ``prune_every`` iterations while training progress is in the window (§4).

    It reads only the window and the period, never ``pruning``: the trainer branches on it with
    ``lax.cond``, and a population of dense members beside pruned ones batches ``pruning``, which
    would turn that branch into a select running a pruning step (GMP's sorts included) on every
    iteration, 13x slower. ``prune_step`` leaves a dense member's masks as they are."""
    t = iteration / num_iterations
    in_window = (t >= hp.prune_start - WINDOW_TOL) & (t <= hp.prune_end + WINDOW_TOL)
    return ((iteration % hp.prune_every) == 0) & in_window


def needs_scores(hp: DSPHParams, progress):
    """Whether a network needs its importance and the penalty's gradient at training fraction
    ``progress``: it prunes and the pruning window has not closed, or its penalty is on (λ > 0
    before ``reg_end``). Past both, the masks are final and ``λ_t`` is 0, so nothing reads the
    importance again and the penalty's gradient is 0 (§2–§4)."""
    prunes = (hp.pruning != NO_PRUNING) & (progress <= hp.prune_end + WINDOW_TOL)
    return prunes | ((hp.lam > 0) & penalty_on(progress, hp.reg_end))


def prune_step(params, state: PrunerState, hp: DSPHParams, progress) -> PrunerState:
    """One mask update at training fraction ``progress`` (§4; unstructured GMP for §7)."""
    p = window_progress(progress, hp.prune_start, hp.prune_end)
    scores = normalised_scores(state.importance, state.neuron_masks)
    thresholds = dynamic_threshold(hp.threshold_rule, scores, magnitude_importance(params),
                                   state.neuron_masks, p, hp.c_final, hp.k_final, hp.tau_final,
                                   hp.c_relative)
    new_neurons = tuple(update_mask(m, values, tau, hp.min_alive)
                        for m, (values, tau) in zip(state.neuron_masks, thresholds))
    # The floor bound where it kept a neuron that the rule alone would have removed.
    floored_now = tuple(jnp.any(new & ~(m & (values >= tau)))
                        for new, m, (values, tau) in zip(new_neurons, state.neuron_masks, thresholds))
    sparsity = hp.gmp_sparsity * cubic_ramp(p)
    structured = hp.pruning == STRUCTURED
    unstructured = hp.pruning == UNSTRUCTURED
    # GMP sorts every kernel's weights: a branch, so that structured pruning does not pay for it
    # (a population mixing both runs both, as a select).
    new_weights = jax.lax.cond(
        unstructured,
        lambda masks: tuple(update_weight_mask(m, layer["kernel"], sparsity)
                            for m, layer in zip(masks, params)),
        lambda masks: masks, state.weight_masks)
    return state.replace(
        neuron_masks=tuple(jnp.where(structured, n, o) for n, o in zip(new_neurons, state.neuron_masks)),
        weight_masks=new_weights,
        floored=tuple(f | (structured & now) for f, now in zip(state.floored, floored_now)),
    )


